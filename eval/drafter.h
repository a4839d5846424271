// The drafter interface the speculative engine drives. A drafter guesses up to gamma next
// tokens of a context; the target verifies them in one forward.
//
// Shapes: G proposed tokens, V vocab.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/sampling.h"
#include "core/status.h"

namespace augur {

struct Draft {
  std::vector<int64_t> tokens;  // G <= gamma proposed ids (may be empty: no guess)
  // float32 [G,V]: the distribution each token was drawn from (q in the accept rule).
  // Undefined for deterministic drafters (retrieval): q is then one-hot at the token.
  at::Tensor probs;
};

class Drafter {
 public:
  virtual ~Drafter() = default;
  virtual std::string name() const = 0;
  // A new generation starts with `prompt` (drafters with caches reset here).
  virtual absl::Status Begin(const std::vector<int64_t>& prompt) = 0;
  // Proposes up to `gamma` tokens continuing `context` (the prompt plus every token kept so
  // far). Sampling drafters draw from their own distribution under `params` with `sampler`.
  virtual Draft Propose(const std::vector<int64_t>& context, int64_t gamma, const SamplingParams& params,
                        Sampler& sampler) = 0;
};

}  // namespace augur
