#include "eval/target.h"

#include <torch/torch.h>

#include <cstdio>

#include "runtime/native_llama.h"
#include "runtime/qmodel.h"
#include "runtime/scheme.h"

namespace augur {

absl::StatusOr<LoadedTarget> LoadTarget(const TargetOptions& opts) {
  if (opts.engine != "auto" && opts.engine != "native" && opts.engine != "torch")
    return absl::InvalidArgumentError(
        absl::StrCat("--target-engine ", opts.engine, ": unknown (native, torch or auto)"));
  const bool cpu = opts.device.is_cpu();
  if (opts.engine == "native" && !cpu)
    return absl::InvalidArgumentError(absl::StrCat("--target-engine native: runs on the CPU only, not ",
                                                   opts.device.str(), " (use --target-engine torch)"));
  std::string engine = opts.engine == "auto" ? (cpu ? "native" : "torch") : opts.engine;
  AUGUR_ASSIGN_OR_RETURN(LoadedCheckpoint ckpt, LoadAnyCheckpoint(opts.dir, opts.device));
  if (!opts.quant.empty() && opts.quant != "none") {
    if (!ckpt.meta.quantization.empty())
      return absl::InvalidArgumentError(absl::StrCat("--target-quant ", opts.quant, ": ", opts.dir,
                                                     " is already quantized (", ckpt.meta.quantization, ")"));
    auto scheme = ParseScheme(opts.quant);
    if (!scheme.ok())
      return absl::InvalidArgumentError(absl::StrCat("--target-quant ", opts.quant, ": ", scheme.status().message()));
    torch::NoGradGuard no_grad;
    QuantizedLinears linears;
    for (const LinearSlot& s : ModelLinears(ckpt.model, opts.quant_head))
      linears.emplace(s.name, QuantizeRtn(s.weight.detach().to(torch::kCPU, torch::kFloat32), *scheme));
    InstallQuantized(ckpt.model, linears);
  }
  LoadedTarget out;
  out.config = ckpt.model->config();
  out.meta = ckpt.meta;
  out.dir = opts.dir;
  out.tokenizer_model = ckpt.tokenizer_model;
  const int64_t capacity = opts.capacity > 0 ? opts.capacity : out.config.max_position_embeddings;
  if (capacity > out.config.max_position_embeddings)
    return absl::InvalidArgumentError(absl::StrCat(opts.dir, ": prompt + max_new + draft needs ", capacity,
                                                   " positions; max_position_embeddings is ",
                                                   out.config.max_position_embeddings));
  if (engine == "native") {
    auto native = NativeLlama::Create(ckpt.model, capacity);
    if (native.ok()) {
      out.model = std::move(*native);
    } else if (opts.engine == "native") {
      return absl::Status(native.status().code(), absl::StrCat(opts.dir, ": ", native.status().message()));
    } else {
      std::fprintf(stderr, "target %s: %s; running on LibTorch\n", opts.dir.c_str(),
                   std::string(native.status().message()).c_str());
      engine = "torch";
    }
  }
  if (engine == "torch") out.model = std::make_unique<TorchDecodeModel>(ckpt.model, capacity);
  out.engine = engine;
  out.precision = out.model->precision();
  return out;
}

}  // namespace augur
