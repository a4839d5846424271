#include "eval/target.h"

#include <torch/torch.h>

#include <cstdio>

#include "core/tokenizer.h"
#include "runtime/llama_weights.h"
#include "runtime/native_llama.h"
#include "runtime/qmodel.h"
#include "runtime/scheme.h"

namespace augur {
namespace {

// The cache entries asked for (0: max_position_embeddings), within the model's positions.
absl::StatusOr<int64_t> Capacity(const TargetOptions& opts, const ModelConfig& cfg) {
  const int64_t capacity = opts.capacity > 0 ? opts.capacity : cfg.max_position_embeddings;
  if (capacity > cfg.max_position_embeddings)
    return absl::InvalidArgumentError(absl::StrCat(opts.dir, ": prompt + max_new + draft needs ", capacity,
                                                   " positions; max_position_embeddings is ",
                                                   cfg.max_position_embeddings));
  return capacity;
}

LoadedTarget Finish(LoadedTarget out, std::unique_ptr<DecodeModel> model, const char* engine) {
  out.model = std::move(model);
  out.engine = engine;
  out.precision = out.model->precision();
  return out;
}

}  // namespace

absl::StatusOr<LoadedTarget> LoadTarget(const TargetOptions& opts) {
  if (opts.engine != "auto" && opts.engine != "native" && opts.engine != "torch")
    return absl::InvalidArgumentError(
        absl::StrCat("--target-engine ", opts.engine, ": unknown (native, torch or auto)"));
  const bool cpu = opts.device.is_cpu();
  if (opts.engine == "native" && !cpu)
    return absl::InvalidArgumentError(absl::StrCat("--target-engine native: runs on the CPU only, not ",
                                                   opts.device.str(), " (use --target-engine torch)"));
  const bool quantize = !opts.quant.empty() && opts.quant != "none";
  QuantScheme scheme;
  if (quantize) {
    auto parsed = ParseScheme(opts.quant);
    if (!parsed.ok())
      return absl::InvalidArgumentError(absl::StrCat("--target-quant ", opts.quant, ": ", parsed.status().message()));
    scheme = *parsed;
  }
  auto already = [&](const std::string& q) {
    return absl::InvalidArgumentError(
        absl::StrCat("--target-quant ", opts.quant, ": ", opts.dir, " is already quantized (", q, ")"));
  };
  LoadedTarget out;
  out.dir = opts.dir;
  out.tokenizer_model = FindTokenizerFile(opts.dir);

  // The native engine reads the checkpoint's tensors itself: no LibTorch module, no copy.
  if (opts.engine == "native" || (opts.engine == "auto" && cpu)) {
    AUGUR_ASSIGN_OR_RETURN(LlamaWeights w, ReadLlamaWeights(opts.dir));
    if (quantize) {
      if (!w.meta.quantization.empty()) return already(w.meta.quantization);
      AUGUR_RETURN_IF_ERROR(QuantizeWeightsRtn(w, scheme, opts.quant_head));
    }
    out.config = w.config;
    out.meta = w.meta;
    AUGUR_ASSIGN_OR_RETURN(const int64_t capacity, Capacity(opts, out.config));
    auto native = NativeLlama::Create(std::move(w), capacity);
    if (native.ok()) return Finish(std::move(out), std::move(*native), "native");
    if (opts.engine == "native")
      return absl::Status(native.status().code(), absl::StrCat(opts.dir, ": ", native.status().message()));
    std::fprintf(stderr, "target %s: %s; running on LibTorch\n", opts.dir.c_str(),
                 std::string(native.status().message()).c_str());
  }

  AUGUR_ASSIGN_OR_RETURN(LoadedCheckpoint ckpt, LoadAnyCheckpoint(opts.dir, opts.device));
  if (quantize) {
    if (!ckpt.meta.quantization.empty()) return already(ckpt.meta.quantization);
    torch::NoGradGuard no_grad;
    QuantizedLinears linears;
    for (const LinearSlot& s : ModelLinears(ckpt.model, opts.quant_head))
      linears.emplace(s.name, QuantizeRtn(s.weight.detach().to(torch::kCPU, torch::kFloat32), scheme));
    InstallQuantized(ckpt.model, linears);
  }
  out.config = ckpt.model->config();
  out.meta = ckpt.meta;
  AUGUR_ASSIGN_OR_RETURN(const int64_t capacity, Capacity(opts, out.config));
  return Finish(std::move(out), std::make_unique<TorchDecodeModel>(ckpt.model, capacity), "torch");
}

}  // namespace augur
