// core/sampling.h Generate's parts, for engines outside core (runtime/decode_model.h Generate):
// the request checks, and the sampling loop on an already checked request.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "core/config.h"
#include "core/sampling.h"
#include "core/status.h"

namespace augur {

// What Generate refuses: invalid sampling, an empty prompt, max_new < 0, an id outside the
// vocabulary, prompt + max_new beyond max_position_embeddings.
absl::Status CheckGenerate(const ModelConfig& cfg, const std::vector<int64_t>& prompt, const GenerateOptions& opts);

// `prefill()` gives the logits after the prompt, `step(id)` those after feeding id (any shape
// with V elements); samples under opts, stops at EOS / a stop id / max_new, times the prefill
// and the decode steps.
GenerateResult GenerateLoop(const ModelConfig& cfg, const GenerateOptions& opts, const std::function<at::Tensor()>& prefill,
                            const std::function<at::Tensor(int64_t)>& step,
                            const std::function<void(int64_t)>& on_token);

}  // namespace augur
