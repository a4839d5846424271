#include "quantize/fake_quant.h"

#include <ATen/ATen.h>
#include <torch/torch.h>

#include "runtime/qmodel.h"

namespace augur {

at::Tensor FakeQuantize(const at::Tensor& weight, const QuantScheme& scheme) {
  const at::Tensor w = weight.detach().to(at::kFloat);
  at::Tensor deq;
  if (scheme.bits == 8) {
    at::Tensor scale = w.abs().amax(1, /*keepdim=*/true) / 127.f;
    scale = at::where(scale > 0, scale, at::ones_like(scale));
    deq = at::clamp(at::round(w / scale), -127, 127) * scale;
  } else {
    // Groups over the input dim; the padded tail is zeros, which leave min(w,0)/max(w,0) alone.
    const int64_t out = w.size(0), in = w.size(1), g = scheme.group, ng = (in + g - 1) / g;
    const at::Tensor wg = at::constant_pad_nd(w, {0, ng * g - in}).view({out, ng, g});
    const at::Tensor lo = at::clamp_max(wg.amin(2, true), 0), hi = at::clamp_min(wg.amax(2, true), 0);
    const at::Tensor flat = hi == lo;
    const at::Tensor scale = at::where(flat, at::ones_like(lo), (hi - lo) / 15.f);
    const at::Tensor zero = at::where(flat, at::zeros_like(lo), at::clamp(at::round(-lo / scale), 0, 15));
    const at::Tensor q = at::clamp(at::round(wg / scale) + zero, 0, 15);
    deq = ((q - zero) * scale).view({out, ng * g}).narrow(1, 0, in);
  }
  // Straight-through: the value of deq exactly (w - w is exactly 0), the gradient of weight.
  return deq.to(weight.scalar_type()) + (weight - weight.detach());
}

at::Tensor FakeQuantBackend::forward(const at::Tensor& x) {
  return at::linear(x, FakeQuantize(weight_, scheme_), bias_.defined() ? std::optional<at::Tensor>(bias_) : std::nullopt);
}

absl::Status EnableFakeQuant(LlamaModel& model, const std::string& scheme_name, bool keep_head) {
  AUGUR_ASSIGN_OR_RETURN(QuantScheme scheme, ParseScheme(scheme_name));
  for (auto& slot : ModelLinears(model, !keep_head))
    *slot.backend = std::make_shared<FakeQuantBackend>(slot.weight, slot.bias, scheme);
  return absl::OkStatus();
}

void DisableFakeQuant(LlamaModel& model) {
  for (auto& slot : ModelLinears(model, /*with_head=*/true)) slot.backend->reset();
}

absl::Status ExportQuantized(LlamaModel& model, const AugurMeta& meta, const std::string& scheme_name,
                             const std::string& dir, const std::string& tokenizer_model, bool keep_head) {
  AUGUR_ASSIGN_OR_RETURN(QuantScheme scheme, ParseScheme(scheme_name));
  QuantizedLinears linears;
  for (auto& slot : ModelLinears(model, !keep_head)) linears[slot.name] = QuantizeRtn(slot.weight, scheme);
  QuantizationInfo info;
  info.method = "qat";
  info.head_quantized = !keep_head;
  // The export must not carry fake-quant backends into the saved parameters: it saves the
  // fp32 tensors of everything it does not quantize, which the backends never change.
  return SaveQuantizedCheckpoint(model, linears, scheme, info, meta, dir, tokenizer_model);
}

}  // namespace augur
