// augur distill gen: a target continues prompts (or scores corpus windows) and every
// position's top-k distribution goes into a teacher store (distill/teacher_gen.h).
#include <torch/torch.h>

#include <absl/strings/match.h>
#include <absl/strings/strip.h>

#include <cstdio>
#include <string>

#include "cli/args.h"
#include "cli/commands.h"
#include "core/checkpoint.h"
#include "core/checkpoint_fingerprint.h"
#include "core/device.h"
#include "core/fs.h"
#include "core/tokenizer.h"
#include "distill/teacher_gen.h"

namespace augur::cli {
namespace {

// Library messages start with their component ("distill gen: ..."); the command name that
// Fail prints already says so.
int Report(const std::string& cmd, const absl::Status& st) {
  absl::string_view msg = st.message();
  if (absl::ConsumePrefix(&msg, "distill gen: ")) return cli::Fail(cmd, absl::Status(st.code(), msg));
  return cli::Fail(cmd, st);
}

}  // namespace

int RunDistillGen(int argc, char** argv, int first) {
  const std::string cmd = "distill gen";
  Args args("distill gen",
            "augur distill gen: write a teacher store: the target's top-k log-probs (plus the log of the remaining "
            "mass) at every position of prompts continued by the target, or of corpus windows (teacher-forced).",
            "augur distill gen --target DIR --prompts FILE.h5|FILE.jsonl --out TEACHER.h5 [--top-k K] [--max-new N] "
            "[--mode greedy|sample|teacher-forced] [--resume]");
  args.flag("target", "DIR", "target checkpoint directory (HF layout)", "", /*required=*/true)
      .flag("prompts", "FILE", "a token store (.h5: windows of one split) or JSONL with a \"prompt\" text or \"messages\" chat per line",
            "", /*required=*/true)
      .flag("out", "TEACHER.h5", "teacher store to write (segments go to TEACHER.h5.parts/ until it is complete)", "",
            /*required=*/true)
      .flag("top-k", "K", "log-probs kept per position (the rest is one bucket)", "32")
      .flag("max-new", "N", "new tokens per prompt at most; a sequence also stops at EOS (greedy/sample)", "64")
      .flag("mode", "greedy|sample|teacher-forced",
            "greedy or sampled continuations, or score store windows as they are (no generation)", "greedy")
      .flag("temperature", "T", "sampling temperature for --mode sample", "1.0")
      .flag("store-temperature", "T", "stored log-probs are of softmax(logits / T)", "1.0")
      .flag("num-prompts", "N", "use the first N prompts (0 = all); store windows come in a seeded order", "0")
      .flag("prompt-len", "P", "store prompts: tokens of each window given as the prompt", "32")
      .flag("window", "W", "teacher-forced: tokens per scored window (store prompts)", "128")
      .flag("split", "valid|train", "store prompts: the split to take windows from", "valid")
      .flag("batch", "B", "sequences per forward (JSONL prompts are batched by equal length)", "8")
      .flag("seed", "S", "order of store windows and sampling draws (row i draws from (S, prompt i))", "0")
      .flag("tokenizer", "DIR", "tokenizer directory or .model file (default: the target's)")
      .flag("chat-template", "NAME", "template for JSONL \"messages\" lines (default: detected from the target's "
                                     "tokenizer_config.json)")
      .flag("device", "cpu|cuda|auto", "where to run the target", "cpu")
      .flag("threads", "N", "CPU threads for LibTorch (0 = its default)", "0")
      .flag("flush-seconds", "S", "write a durable segment at least this often (a kill loses at most this much)", "30")
      .toggle("resume", "continue an interrupted run (or extend a finished store with more prompts), skipping prompts "
                        "already written; without it an existing TEACHER.h5 or TEACHER.h5.parts is an error")
      .toggle("no-progress", "no progress bar")
      .note("Store prompts: the split's token stream is cut into windows of prompt-len + max-new tokens "
            "(teacher-forced: --window tokens), taken in an order shuffled by --seed; the prompt is the first "
            "prompt-len tokens. Every position of each final sequence (prompt + continuation, EOS included) is "
            "scored by one teacher-forced forward of the target.");
  if (auto st = args.parse(argc, argv, first); !st.ok()) return Report(cmd, st);
  if (args.help_requested()) {
    std::printf("%s", args.help().c_str());
    return 0;
  }

  distill::TeacherGenOptions opts;
  auto mode = distill::ParseTeacherGenMode(args.str("mode"));
  if (!mode.ok()) return Report(cmd, mode.status());
  opts.mode = *mode;
  auto top_k = args.i64("top-k");
  auto max_new = args.i64("max-new");
  auto temperature = args.f64("temperature");
  auto store_temperature = args.f64("store-temperature");
  auto num_prompts = args.i64("num-prompts");
  auto prompt_len = args.i64("prompt-len");
  auto window = args.i64("window");
  auto batch = args.i64("batch");
  auto seed = args.i64("seed");
  auto threads = args.i64("threads");
  auto flush_seconds = args.f64("flush-seconds");
  for (const absl::Status& st : {top_k.status(), max_new.status(), temperature.status(), store_temperature.status(),
                                 num_prompts.status(), prompt_len.status(), window.status(), batch.status(),
                                 seed.status(), threads.status(), flush_seconds.status()})
    if (!st.ok()) return Report(cmd, st);
  opts.top_k = *top_k;
  opts.max_new = *max_new;
  opts.temperature = *temperature;
  opts.store_temperature = *store_temperature;
  opts.batch = *batch;
  opts.seed = static_cast<uint64_t>(*seed);
  opts.flush_seconds = *flush_seconds;
  opts.resume = args.on("resume");
  opts.progress = !args.on("no-progress");
  opts.created_by = absl::StrCat("augur ", AUGUR_VERSION_STRING, ": ", args.command_line());
  if (auto st = opts.Validate(); !st.ok()) return Report(cmd, st);
  if (*num_prompts < 0) return Report(cmd, absl::InvalidArgumentError("--num-prompts must be >= 0"));
  if (*threads > 0) torch::set_num_threads(static_cast<int>(*threads));
  auto split = ParseSplit(args.str("split"));
  if (!split.ok()) return Report(cmd, split.status());

  auto device = ParseDevice(args.str("device"));
  if (!device.ok()) return Report(cmd, device.status());
  auto ckpt = LoadCheckpoint(args.str("target"), *device, torch::kFloat32);
  if (!ckpt.ok()) return Report(cmd, ckpt.status());
  auto fingerprint = CheckpointFingerprint(args.str("target"));
  if (!fingerprint.ok()) return Report(cmd, fingerprint.status());
  opts.target_fingerprint = *fingerprint;
  opts.target_tokenizer_fingerprint = ckpt->meta.tokenizer_fingerprint;

  // The tokenizer: needed to encode JSONL prompts; for store prompts it (when there is
  // one) must be the store's.
  const std::string tok_path = args.has("tokenizer") ? args.str("tokenizer") : ckpt->tokenizer_model;
  Tokenizer tokenizer;
  if (!tok_path.empty()) {
    auto t = Tokenizer::Load(tok_path);
    if (!t.ok()) return Report(cmd, t.status());
    tokenizer = *t;
    if (!ckpt->meta.tokenizer_fingerprint.empty() && ckpt->meta.tokenizer_fingerprint != tokenizer.fingerprint())
      return Report(cmd, absl::FailedPreconditionError(absl::StrCat(
                           tok_path, ": not the tokenizer ", args.str("target"), " was trained with (fingerprint ",
                           tokenizer.fingerprint().substr(0, 12), " != ", ckpt->meta.tokenizer_fingerprint.substr(0, 12),
                           ")")));
    if (tokenizer.vocab_size() > ckpt->model->config().vocab_size)
      return Report(cmd, absl::FailedPreconditionError(absl::StrCat(tok_path, ": vocabulary ", tokenizer.vocab_size(),
                                                                  " is larger than the target's ",
                                                                  ckpt->model->config().vocab_size)));
  }

  const std::string prompts_path = args.str("prompts");
  absl::StatusOr<distill::PromptSet> prompts;
  if (absl::EndsWith(prompts_path, ".jsonl") || absl::EndsWith(prompts_path, ".json")) {
    if (opts.mode == distill::TeacherGenMode::kTeacherForced)
      return Report(cmd, absl::InvalidArgumentError("--mode teacher-forced scores token store windows; pass a .h5 store"));
    if (!tokenizer.loaded())
      return Report(cmd, absl::NotFoundError(absl::StrCat(args.str("target"),
                                                        ": no tokenizer (tokenizer.model or tokenizer.json) to encode JSONL prompts; pass --tokenizer")));
    prompts = distill::JsonlPrompts(prompts_path, tokenizer, *num_prompts, args.str("chat-template"));
  } else {
    distill::StorePromptOptions so;
    so.split = *split;
    so.num_prompts = *num_prompts;
    so.seed = opts.seed;
    if (opts.mode == distill::TeacherGenMode::kTeacherForced) {
      so.window = so.prompt_len = *window;
    } else {
      so.prompt_len = *prompt_len;
      so.window = *prompt_len + opts.max_new;
    }
    prompts = distill::StorePrompts(prompts_path, so, tokenizer.loaded() ? &tokenizer : nullptr);
  }
  if (!prompts.ok()) return Report(cmd, prompts.status());

  auto sum = distill::GenerateTeacherData(*ckpt->model, *prompts, args.str("out"), opts);
  if (!sum.ok()) return Report(cmd, sum.status());
  const double secs = std::max(1e-9, sum->seconds);
  std::fprintf(stderr,
               "augur distill gen: %lld sequences (%lld skipped as done), %lld positions, %lld new tokens in %.2f s: "
               "%.2f sequences/s, %.1f new tokens/s, %.1f positions/s (generate %.2f s, score %.2f s) -> %s\n",
               static_cast<long long>(sum->sequences), static_cast<long long>(sum->skipped),
               static_cast<long long>(sum->positions), static_cast<long long>(sum->new_tokens), sum->seconds,
               sum->sequences / secs, sum->new_tokens / secs, sum->positions / secs, sum->generate_seconds,
               sum->score_seconds, args.str("out").c_str());
  return 0;
}

}  // namespace augur::cli
