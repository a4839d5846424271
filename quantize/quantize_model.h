// Quantizing a whole model: round-to-nearest per linear, or GPTQ with Hessians from
// calibration text. GPTQ runs layer by layer: the calibration batch goes through the model
// with layers < l already running quantized (their QuantLinearBackend installed), recorders on
// layer l's seven linears accumulate H = 2 XᵀX / N of their inputs, then those seven are
// quantized together and installed before layer l+1 (so later layers see the errors of earlier
// ones, as in the GPTQ paper). The head, when quantized, goes last the same way.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>

#include "core/model.h"
#include "quantize/gptq.h"
#include "runtime/qmodel.h"

namespace augur {

struct QuantizeModelOptions {
  QuantScheme scheme;
  std::string method = "rtn";  // rtn | gptq
  bool keep_head = true;       // embeddings always stay fp32; the head too unless false
  GptqOptions gptq;
  int64_t batch = 8;           // calibration sequences per forward
  bool progress = true;
};

// Calibration windows from a token store's train split: int64 [samples, seq_len], a pure
// function of (store, seed). Refuses a store whose tokenizer fingerprint is not
// `tokenizer_fingerprint` (the model's tokenizer) and a split shorter than one window.
absl::StatusOr<at::Tensor> LoadCalibration(const std::string& store_path, const std::string& tokenizer_fingerprint,
                                           int64_t samples, int64_t seq_len, uint64_t seed);

// Quantizes `model`'s linears (fp32 weights unchanged; quantized backends are installed for
// GPTQ as it goes and removed at the end). `calib` int64 [N, T] is needed for gptq only.
absl::StatusOr<QuantizedLinears> QuantizeModel(LlamaModel& model, const QuantizeModelOptions& opts,
                                               const at::Tensor& calib);

}  // namespace augur
