// augur train: flags -> TrainOptions, token store -> TrainData, then train::Train.
#include <torch/torch.h>

#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include <absl/strings/str_format.h>
#include <absl/strings/strip.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "core/config.h"
#include "train/checkpointing.h"
#include "train/store_data.h"
#include "train/trainer.h"

namespace augur::cli {
namespace {

std::string Num(double v) { return absl::StrFormat("%g", v); }

// One row per numeric option: flag name, value name, help, and where it goes. The same
// table declares the flags (with the struct's defaults) and applies the given ones.
struct NumericFlag {
  const char* name;
  const char* value_name;
  const char* help;
  std::function<std::string(const train::TrainOptions&)> get;
  std::function<absl::Status(const Args&, train::TrainOptions*)> set;
};

template <typename T>
NumericFlag IntFlag(const char* name, const char* vn, const char* help, T train::TrainOptions::*field) {
  return {name, vn, help, [field](const train::TrainOptions& o) { return std::to_string(o.*field); },
          [name, field](const Args& a, train::TrainOptions* o) -> absl::Status {
            AUGUR_ASSIGN_OR_RETURN(int64_t v, a.i64(name));
            o->*field = static_cast<T>(v);
            return absl::OkStatus();
          }};
}

NumericFlag RealFlag(const char* name, const char* vn, const char* help, double train::TrainOptions::*field) {
  return {name, vn, help, [field](const train::TrainOptions& o) { return Num(o.*field); },
          [name, field](const Args& a, train::TrainOptions* o) -> absl::Status {
            AUGUR_ASSIGN_OR_RETURN(o->*field, a.f64(name));
            return absl::OkStatus();
          }};
}

const std::vector<NumericFlag>& NumericFlags() {
  using O = train::TrainOptions;
  static const std::vector<NumericFlag> flags = {
      IntFlag("steps", "N", "total optimizer steps (the schedule spans them)", &O::steps),
      IntFlag("stop-after", "N", "stop with a checkpoint after N steps of this run (0 = run to --steps)",
              &O::stop_after),
      IntFlag("batch", "B", "sequences per micro-batch", &O::batch),
      IntFlag("seq-len", "T", "tokens per sequence", &O::seq_len),
      IntFlag("grad-accum", "K", "micro-batches per optimizer step (tokens/step = B*T*K)", &O::grad_accum),
      RealFlag("lr", "LR", "peak learning rate (AdamW)", &O::lr),
      IntFlag("warmup", "N", "linear warmup steps", &O::warmup),
      RealFlag("min-lr-ratio", "R", "cosine decay floor as a fraction of --lr", &O::min_lr_ratio),
      RealFlag("weight-decay", "W", "AdamW weight decay on matrices (norms and biases get none)", &O::weight_decay),
      RealFlag("beta1", "B1", "AdamW beta1", &O::beta1),
      RealFlag("beta2", "B2", "AdamW beta2", &O::beta2),
      RealFlag("clip", "C", "clip the global gradient norm to C (0 = off)", &O::clip),
      IntFlag("eval-every", "N", "validation loss every N steps (0 = at the end only)", &O::eval_every),
      IntFlag("eval-batches", "N", "validation batches per evaluation (0 = no validation)", &O::eval_batches),
      IntFlag("save-every", "N", "checkpoint every N steps (0 = at the end only)", &O::save_every),
      IntFlag("log-every", "N", "metrics.jsonl / plain progress line every N steps", &O::log_every),
      IntFlag("seed", "S", "model init and data order", &O::seed),
      IntFlag("threads", "N", "CPU threads for LibTorch (0 = its default)", &O::threads),
  };
  return flags;
}

// Library messages start with "train: "; Fail() already says "augur train: ".
int TrainFail(const absl::Status& st) {
  absl::string_view msg = st.message();
  if (absl::ConsumePrefix(&msg, "train: ")) return Fail("train", absl::Status(st.code(), msg));
  return Fail("train", st);
}

}  // namespace

int RunTrain(int argc, char** argv, int first) {
  const train::TrainOptions defaults;
  Args args("train", "augur train: train a Llama-family model on a token store.",
            "augur train --data FILE.h5 --config PRESET|FILE.json --out DIR [--steps N] [--resume] [--batch B] "
            "[--seq-len T] [--lr LR] [--seed S]");
  args.flag("data", "FILE.h5", "token store (augur data build)", "", /*required=*/true)
      .flag("config", "PRESET|FILE.json", "model preset or HF config.json (not needed with --resume)")
      .flag("out", "DIR", "output: the checkpoint (an HF model directory), trainer state and logs", "", true)
      .toggle("resume", "continue the run in --out (same data order, optimizer state and settings; flags given "
                        "now override the saved ones, except batch/seq-len/grad-accum/seed)");
  for (const auto& f : NumericFlags()) args.flag(f.name, f.value_name, f.help, f.get(defaults));
  args.flag("log", "FILE", "JSONL metrics log", "<out>/metrics.jsonl")
      .flag("device", "cpu|cuda|auto", "where to train", defaults.device)
      .flag("dtype", "float32|bfloat16", "autocast dtype for the forward pass (bfloat16: CUDA only)", defaults.dtype)
      .flag("tokenizer", "DIR", "tokenizer to copy into the checkpoint (default: the one the store was built with)")
      .toggle("quiet", "no progress output");
  std::string presets;
  for (const auto& p : ModelPresets()) absl::StrAppend(&presets, "\n  ", p.name, ": ", p.description);
  args.note("Presets:" + presets);
  args.note("Files in --out: config.json, model.safetensors, tokenizer.model, augur.json (loadable by "
            "transformers), trainer_state.json + trainer_state.pt (resume), train_config.json, metrics.jsonl.");

  if (auto st = args.parse(argc, argv, first); !st.ok()) return TrainFail(st);
  if (args.help_requested()) {
    std::printf("%s", args.help().c_str());
    return 0;
  }

  train::TrainOptions opts = defaults;
  opts.out_dir = args.str("out");
  opts.resume = args.on("resume");
  if (opts.resume) {
    auto state = train::ReadTrainerState(opts.out_dir);
    if (!state.ok()) return TrainFail(state.status());
    if (auto st = opts.MergeJson(state->options, opts.out_dir + "/trainer_state.json"); !st.ok())
      return TrainFail(st);
    opts.stop_after = 0;  // a limit applies to the run that set it
    opts.out_dir = args.str("out");
    opts.resume = true;
  } else if (!args.has("config")) {
    return TrainFail(absl::InvalidArgumentError("--config: a preset or config.json is required (or --resume)"));
  }
  for (const auto& f : NumericFlags())
    if (!opts.resume || args.has(f.name))
      if (auto st = f.set(args, &opts); !st.ok()) return TrainFail(st);
  if (!opts.resume || args.has("device")) opts.device = args.str("device");
  if (!opts.resume || args.has("dtype")) opts.dtype = args.str("dtype");
  opts.log_path = args.has("log") ? args.str("log") : "";
  opts.progress = !args.on("quiet");
  opts.command_line = args.command_line();

  auto cfg = ResolveModelConfig(args.has("config") ? args.str("config") : opts.out_dir);
  if (!cfg.ok()) return TrainFail(cfg.status());

  std::vector<std::string> warnings;
  auto data = train::OpenStoreData(args.str("data"), {opts.seed, opts.seq_len, args.str("tokenizer")}, &warnings);
  if (!data.ok()) return TrainFail(data.status());
  for (const auto& w : warnings) std::fprintf(stderr, "augur train: warning: %s\n", w.c_str());

  if (opts.threads > 0) torch::set_num_threads(opts.threads);
  train::TuneAllocatorForTraining();
  std::fprintf(stderr,
               "augur train: %s (%.2fM params) on %s -> %s: %lld steps x %lld tokens (B=%lld T=%lld K=%lld), "
               "lr %g, %s, %d threads%s\n",
               args.has("config") ? args.str("config").c_str() : opts.out_dir.c_str(), cfg->num_parameters() / 1e6,
               data->source.c_str(), opts.out_dir.c_str(), (long long)opts.steps,
               (long long)(opts.batch * opts.seq_len * opts.grad_accum), (long long)opts.batch,
               (long long)opts.seq_len, (long long)opts.grad_accum, opts.lr, opts.device.c_str(),
               at::get_num_threads(), opts.resume ? ", resuming" : "");

  auto result = train::Train(*cfg, *data, opts);
  if (!result.ok()) return TrainFail(result.status());
  std::fprintf(stderr, "augur train: done: step %lld, loss %.4f%s, %.0f tokens/s; checkpoint in %s\n",
               (long long)result->steps, result->loss,
               result->valid_loss >= 0
                   ? absl::StrFormat(", valid loss %.4f (ppl %.2f)", result->valid_loss, std::exp(result->valid_loss))
                         .c_str()
                   : "",
               result->tokens_per_s, opts.out_dir.c_str());
  return 0;
}

}  // namespace augur::cli
