// Quantization-aware distillation (`augur distill ar|nat --qat SCHEME`): the student trains
// through fake-quantized linears (quantize/fake_quant.h: the forward sees the round-to-nearest
// weights of SCHEME, the backward passes straight through to the fp32 weights). The fake-quant
// backends are installed by TrainJob::prepare on fresh and resumed runs alike; they hold no
// state of their own, so a resumed run is exactly the uninterrupted one. Validation (alpha,
// the choice of <out>/best) runs through them too, so it measures the quantized drafter.
// The checkpoints stay fp32 (augur.json extra.qat names the scheme); ExportQatDrafter then
// writes the real quantized drafter, whose logits are the fake-quant model's.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "core/model.h"
#include "core/status.h"

namespace augur::distill {

// <out>/quantized: where the quantized drafter of a --qat run goes.
std::string QatExportDir(const std::string& out_dir);

// "" (off) or a scheme name of runtime/scheme.h (int8, int4-g32, ...); `command` prefixes errors.
absl::Status ValidateQatScheme(const std::string& scheme, const std::string& command);

// The TrainJob::prepare hook that switches the student's decoder linears to fake-quant
// `scheme` (embeddings and the head stay fp32, as augur quantize's default); null for "".
std::function<absl::Status(LlamaModel&)> QatPrepare(const std::string& scheme);

struct QatExport {
  std::string dir;     // the quantized checkpoint (QatExportDir)
  std::string source;  // the fp32 checkpoint it was made from: <out>/best when present, else <out>
  int64_t step = -1;   // the training step of `source`
};

// Quantizes the fp32 checkpoint a user would pick from a finished (or stopped) --qat run in
// `out_dir` (best when it exists, else the last) with `scheme` and writes it to
// QatExportDir(out_dir): method "qat", augur.json kind / gamma / mask id / fingerprints kept,
// extra.qat = {scheme, source, step}.
absl::StatusOr<QatExport> ExportQatDrafter(const std::string& out_dir, const std::string& scheme);

}  // namespace augur::distill
