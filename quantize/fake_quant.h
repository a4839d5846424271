// Quantization-aware training pieces: a fake-quant linear (the forward uses the weights
// quantized and dequantized by exactly the rules of runtime/qweight.h, the backward passes the
// gradient straight through to the fp32 weights), switching a LlamaModel's linears to it, and
// exporting the real quantized checkpoint from the trained fp32 weights.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>

#include "core/checkpoint.h"
#include "core/model.h"
#include "runtime/scheme.h"

namespace augur {

// deq(q(w)) in the forward, identity in the backward (straight-through estimator):
// deq(q(w)).detach() + (w - w.detach()). Tensor ops on w's device; values equal Dequantize(QuantizeRtn(w)).
at::Tensor FakeQuantize(const at::Tensor& weight, const QuantScheme& scheme);

class FakeQuantBackend : public LinearBackend {
 public:
  FakeQuantBackend(at::Tensor weight, at::Tensor bias, QuantScheme scheme)
      : weight_(std::move(weight)), bias_(std::move(bias)), scheme_(scheme) {}
  at::Tensor forward(const at::Tensor& x) override;

 private:
  at::Tensor weight_, bias_;  // the Linear's own parameters (shared, so training updates them)
  QuantScheme scheme_;
};

// Installs FakeQuantBackend on every decoder linear (and the head unless keep_head) for a
// scheme name such as "int4-g32" or "int8".
absl::Status EnableFakeQuant(LlamaModel& model, const std::string& scheme, bool keep_head = true);
// Back to the plain fp32 linears (every backend slot cleared).
void DisableFakeQuant(LlamaModel& model);

// Writes the quantized checkpoint of the model's current fp32 weights (round to nearest: the
// same values the fake-quant forward used) with method "qat".
absl::Status ExportQuantized(LlamaModel& model, const AugurMeta& meta, const std::string& scheme,
                             const std::string& dir, const std::string& tokenizer_model, bool keep_head = true);

}  // namespace augur
