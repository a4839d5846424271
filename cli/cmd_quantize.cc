// augur quantize: load an fp32 checkpoint, quantize its linears (RTN, or GPTQ with calibration
// windows from a token store) and write a quantized checkpoint (docs/FORMATS.md).
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "cli/args.h"
#include "cli/commands.h"
#include "core/checkpoint.h"
#include "core/fs.h"
#include "core/tokenizer.h"
#include "eval/draft_vocab.h"
#include "quantize/quantize_model.h"
#include "runtime/scheme.h"

namespace augur::cli {
namespace {

// The model's quantization as augur.json records it ("" when absent or unreadable: then
// LoadCheckpoint reports the problem).
std::string RecordedQuantization(const std::string& dir) {
  auto text = ReadFile(dir + "/augur.json");
  if (!text.ok()) return "";
  const auto j = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("quantization") || !j["quantization"].is_string()) return "";
  return j["quantization"].get<std::string>();
}

}  // namespace

int RunQuantize(int argc, char** argv, int first) {
  const std::string cmd = "quantize";
  Args args("quantize", "augur quantize: weight-only int8/int4 quantization of a checkpoint's linear layers.",
            "augur quantize --model DIR --scheme int8|int4 [--group 32|64|128] [--method rtn|gptq] "
            "[--calib FILE.h5] --out DIR");
  args.flag("model", "DIR", "fp32 (or f16/bf16) checkpoint to quantize", "", /*required=*/true)
      .flag("scheme", "int8|int4", "int8: per output row, symmetric; int4: per group of --group columns, asymmetric",
            "", /*required=*/true)
      .flag("group", "32|64|128", "int4 group size (input columns per scale/zero); an input width that is not a "
            "multiple is padded with zero-valued columns", "32")
      .flag("method", "rtn|gptq", "round to nearest, or GPTQ (needs --calib)", "rtn")
      .flag("calib", "FILE.h5", "gptq: token store (made with the model's tokenizer) for calibration windows")
      .flag("calib-samples", "N", "gptq: calibration windows drawn from the store's train split", "128")
      .flag("seq-len", "T", "gptq: tokens per calibration window", "256")
      .flag("damp", "F", "gptq: added to the Hessian diagonal, as a fraction of its mean", "0.01")
      .toggle("act-order", "gptq: quantize columns by descending Hessian diagonal (static groups)")
      .flag("block", "N", "gptq: columns per lazy-update block (a multiple of --group)", "128")
      .flag("keep-head", "yes|no", "keep the output head in fp32 (embeddings always stay fp32)", "yes")
      .flag("seed", "S", "gptq: seed of the calibration windows", "0")
      .flag("threads", "N", "CPU threads for LibTorch and the kernels (0 = default)", "0")
      .flag("out", "DIR", "output directory (quantized checkpoint)", "", /*required=*/true)
      .note("Schemes written to augur.json: int8, int4-g32, int4-g64, int4-g128. The quantized checkpoint runs "
            "through LoadQuantizedModel (runtime/qmodel.h); transformers cannot load it.");
  if (auto st = args.parse(argc, argv, first); !st.ok()) return Fail(cmd, st);
  if (args.help_requested()) {
    std::printf("%s", args.help().c_str());
    return 0;
  }
  auto group = args.i64("group");
  auto samples = args.i64("calib-samples");
  auto seq_len = args.i64("seq-len");
  auto damp = args.f64("damp");
  auto block = args.i64("block");
  auto seed = args.i64("seed");
  auto threads = args.i64("threads");
  for (const absl::Status& st : {group.status(), samples.status(), seq_len.status(), damp.status(), block.status(),
                                 seed.status(), threads.status()})
    if (!st.ok()) return Fail(cmd, st);
  if (*threads > 0) torch::set_num_threads(static_cast<int>(*threads));

  QuantizeModelOptions opts;
  auto scheme = SchemeFromFlags(args.str("scheme"), *group, args.has("group"));
  if (!scheme.ok()) return Fail(cmd, scheme.status());
  opts.scheme = *scheme;
  opts.method = args.str("method");
  if (opts.method != "rtn" && opts.method != "gptq")
    return Fail(cmd, absl::InvalidArgumentError(absl::StrCat("unknown --method '", opts.method, "' (rtn or gptq)")));
  if (opts.method == "gptq" && !args.has("calib"))
    return Fail(cmd, absl::InvalidArgumentError("--method gptq needs --calib FILE.h5 (a token store)"));
  if (opts.method == "rtn" && args.has("calib"))
    return Fail(cmd, absl::InvalidArgumentError("--calib is used by --method gptq only"));
  const std::string keep = args.str("keep-head");
  if (keep != "yes" && keep != "no")
    return Fail(cmd, absl::InvalidArgumentError(absl::StrCat("--keep-head '", keep, "' is not yes or no")));
  opts.keep_head = keep == "yes";
  opts.gptq.damp = *damp;
  opts.gptq.block = *block;
  opts.gptq.act_order = args.on("act-order");

  const std::string model_dir = args.str("model"), out_dir = args.str("out");
  if (const std::string q = RecordedQuantization(model_dir); !q.empty())
    return Fail(cmd, absl::FailedPreconditionError(absl::StrCat(
                         model_dir, ": is already quantized (", q, "); quantize the fp32 checkpoint it came from")));
  if (out_dir == model_dir)
    return Fail(cmd, absl::InvalidArgumentError("--out must differ from --model (the fp32 checkpoint is kept)"));
  auto ckpt = LoadCheckpoint(model_dir, torch::kCPU, torch::kFloat32);
  if (!ckpt.ok()) return Fail(cmd, ckpt.status());

  const auto t0 = std::chrono::steady_clock::now();
  at::Tensor calib;
  if (opts.method == "gptq") {
    std::string fingerprint = ckpt->meta.tokenizer_fingerprint;
    if (!ckpt->tokenizer_model.empty()) {
      auto tok = Tokenizer::Load(ckpt->tokenizer_model);
      if (!tok.ok()) return Fail(cmd, tok.status());
      fingerprint = tok->fingerprint();
    }
    auto c = LoadCalibration(args.str("calib"), fingerprint, *samples, *seq_len, static_cast<uint64_t>(*seed));
    if (!c.ok()) return Fail(cmd, c.status());
    calib = *c;
  }
  auto linears = QuantizeModel(ckpt->model, opts, calib);
  if (!linears.ok()) return Fail(cmd, linears.status());

  QuantizationInfo info;
  info.method = opts.method;
  info.head_quantized = !opts.keep_head;
  if (opts.method == "gptq")
    info.settings = {{"calib", args.str("calib")}, {"calib_samples", *samples}, {"seq_len", *seq_len},
                     {"damp", *damp}, {"block", *block}, {"act_order", opts.gptq.act_order}, {"seed", *seed}};
  AugurMeta meta = ckpt->meta;
  meta.command_line = args.command_line();
  if (auto st = SaveQuantizedCheckpoint(ckpt->model, *linears, opts.scheme, info, meta, out_dir, ckpt->tokenizer_model);
      !st.ok())
    return Fail(cmd, st);
  // A drafter's reduced vocabulary travels with it (eval/draft_vocab.h).
  if (const std::string dv = JoinPath(model_dir, kDraftVocabFile); FileExists(dv)) {
    auto text = ReadFile(dv);
    if (!text.ok()) return Fail(cmd, text.status());
    if (auto st = WriteFileAtomic(JoinPath(out_dir, kDraftVocabFile), *text); !st.ok()) return Fail(cmd, st);
  }

  int64_t fp32_bytes = 0, q_bytes = 0;
  for (const auto& [name, q] : *linears) {
    fp32_bytes += q.out * q.in * 4;
    q_bytes += q.bytes();
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::fprintf(stderr, "augur quantize: %zu linears -> %s (%s): %.2f MB fp32 -> %.2f MB in %.1f s; wrote %s\n",
               linears->size(), opts.scheme.name().c_str(), opts.method.c_str(), fp32_bytes / 1e6, q_bytes / 1e6,
               secs, out_dir.c_str());
  return 0;
}

}  // namespace augur::cli
