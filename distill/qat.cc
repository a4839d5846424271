#include "distill/qat.h"

#include <torch/torch.h>

#include "core/checkpoint.h"
#include "core/fs.h"
#include "quantize/fake_quant.h"
#include "runtime/scheme.h"

namespace augur::distill {

std::string QatExportDir(const std::string& out_dir) {
  return out_dir.empty() || out_dir.back() == '/' ? out_dir + "quantized" : out_dir + "/quantized";
}

absl::Status ValidateQatScheme(const std::string& scheme, const std::string& command) {
  if (scheme.empty()) return absl::OkStatus();
  auto parsed = ParseScheme(scheme);
  if (!parsed.ok()) return absl::InvalidArgumentError(absl::StrCat(command, ": --qat ", scheme, ": ", parsed.status().message()));
  return absl::OkStatus();
}

std::function<absl::Status(LlamaModel&)> QatPrepare(const std::string& scheme) {
  if (scheme.empty()) return nullptr;
  return [scheme](LlamaModel& model) { return EnableFakeQuant(model, scheme, /*keep_head=*/true); };
}

absl::StatusOr<QatExport> ExportQatDrafter(const std::string& out_dir, const std::string& scheme) {
  QatExport out;
  out.dir = QatExportDir(out_dir);
  const std::string best = out_dir + "/best";
  out.source = FileExists(best + "/augur.json") ? best : out_dir;
  AUGUR_ASSIGN_OR_RETURN(LoadedCheckpoint ckpt, LoadCheckpoint(out.source, torch::kCPU, torch::kFloat32));
  // The last checkpoint records train_step; best records the step it was selected at.
  out.step = ckpt.meta.extra.value("train_step", int64_t{-1});
  if (out.step < 0 && ckpt.meta.extra.contains("selected_by") && ckpt.meta.extra["selected_by"].is_object())
    out.step = ckpt.meta.extra["selected_by"].value("step", int64_t{-1});
  AugurMeta meta = ckpt.meta;
  meta.extra["qat"] = {{"scheme", scheme}, {"source", out.source}, {"step", out.step}};
  AUGUR_RETURN_IF_ERROR(ExportQuantized(ckpt.model, meta, scheme, out.dir, ckpt.tokenizer_model, /*keep_head=*/true));
  return out;
}

}  // namespace augur::distill
