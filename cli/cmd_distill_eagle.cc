// augur distill eagle: flags -> distill::EagleDistillOptions, then distill::DistillEagle.
#include <torch/torch.h>

#include <cstdio>
#include <string>

#include <absl/strings/str_format.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/distill_flags.h"
#include "distill/eagle_distill.h"

namespace augur::cli {
namespace {

int EagleFail(const absl::Status& st) { return DistillFail("distill eagle", st); }

}  // namespace

int RunDistillEagle(int argc, char** argv, int first) {
  train::TrainOptions d;  // the defaults shown in --help; sized for SmolLM2-135M on 2 CPU cores
  d.steps = 300;
  d.batch = 4;
  d.seq_len = 128;
  d.lr = 1e-3;
  d.warmup = 30;
  d.eval_every = 100;
  d.save_every = 100;
  const distill::EagleDistillOptions dd;

  Args args("distill eagle",
            "augur distill eagle: distill a target into an EAGLE-3 feature drafter: one decoder layer that reads "
            "three of the target's hidden states and drafts on its own outputs, trained with EAGLE-3's "
            "training-time test.",
            "augur distill eagle --target DIR --teacher TEACHER.h5 --out DIR [--layers L,M,H] [--draft-vocab N] "
            "[--ttt-steps K] [--cache-features FILE.h5] [--steps N] [--batch B] [--seq-len T] [--lr LR] [--seed S] [--resume] [--threads N]");
  args.flag("target", "DIR", "the target checkpoint: it runs online on every batch (hidden states and labels)", "",
            true)
      .flag("teacher", "TEACHER.h5", "teacher store from augur distill gen (the target's own replies)", "", true)
      .flag("out", "DIR",
            "output: the eagle-drafter checkpoint (the EAGLE-3 layout), out/best (highest held-out tau), trainer "
            "state, logs",
            "", true)
      .flag("layers", "L,M,H",
            "the target's hidden states read (i = the output of layer i, 0 = embeddings); default 2, L/2, L-3")
      .flag("draft-vocab", "N",
            "rows of the drafter's head: the N most frequent tokens of the teacher continuations (d2t / t2d map them "
            "to the target's ids); 0 = the whole vocabulary",
            std::to_string(dd.draft_vocab))
      .flag("ttt-steps", "K", "training-time test: draft steps unrolled on the drafter's own outputs",
            std::to_string(dd.ttt_steps))
      .flag("step-decay", "W", "loss weight of unrolled step k: W^k", absl::StrFormat("%g", dd.step_decay))
      .flag("eval-sequences", "N", "teacher sequences held out at the end of the store for validation",
            std::to_string(dd.eval_sequences))
      .flag("cache-features", "FILE.h5",
            "cache the target's side (hidden states in float16, the top-k labels) in FILE.h5: built by one target "
            "forward per teacher sequence on the first run, reused by later runs made from the same target, teacher "
            "store and layers (any other is refused). For small runs that see each sequence many times; without it "
            "the target runs online on every batch")
      .flag("cache-topk", "K", "with --cache-features: the target's top K kept per position (the label)",
            std::to_string(dd.cache_topk));
  AddTrainerFlags(args, d,
                  {"windows per micro-batch", "tokens per training window",
                   "drafter init and data order (windows)",
                   "continue the run in --out (layers, draft vocabulary and TTT settings are kept; step count, data "
                   "order and optimizer state continue exactly)",
                   "held-out tau, alpha and acc_0..acc_K-1 every N steps (and at the end)"});
  args.note("Init: the head's rows start as the target's output rows of the draft vocabulary and its final norm as "
            "the target's; the layer and fc are random (seeded). The token embedding is the target's, shared, never "
            "saved.");
  args.note("Held-out figures: acc_k = top-1 agreement of draft step k with the target's greedy token; tau = 1 + the "
            "expected accepted run of a greedy chain of K; alpha = sum_x min(p_target, q_draft) at step 0. Files in "
            "--out: config.json + model.safetensors (vLLM/SGLang/llama.cpp's EAGLE-3 names), augur.json (kind "
            "eagle-drafter), best/, trainer_state.*, train_config.json, metrics.jsonl.");

  if (auto st = args.parse(argc, argv, first); !st.ok()) return EagleFail(st);
  if (args.help_requested()) {
    std::printf("%s", args.help().c_str());
    return 0;
  }

  distill::EagleDistillOptions o;
  o.target = args.str("target");
  o.teacher = args.str("teacher");
  o.command_line = args.command_line();
  train::TrainOptions& t = o.train;
  t = d;
  DistillFlags flags(args, &t);
  if (auto s = flags.ReadTrainer(); !s.ok()) return EagleFail(s);
  for (auto s : {flags.Int("draft-vocab", "draft_vocab", &o.draft_vocab), flags.Int("ttt-steps", "ttt_steps", &o.ttt_steps),
                 flags.Float("step-decay", "step_decay", &o.step_decay),
                 flags.Int("eval-sequences", "eval_sequences", &o.eval_sequences),
                 flags.Int("cache-topk", "cache_topk", &o.cache_topk)})
    if (!s.ok()) return EagleFail(s);
  if (args.has("layers")) {
    auto layers = ParseInitLayers(args.str("layers"));
    if (!layers.ok()) return EagleFail(layers.status());
    o.layers = *layers;
  } else if (flags.FromSaved("layers", "layers")) {
    o.layers = flags.saved()["layers"].get<std::vector<int64_t>>();
  }
  if (args.has("cache-features")) {
    o.cache_features = args.str("cache-features");
  } else if (flags.FromSaved("cache-features", "cache_features")) {
    o.cache_features = flags.saved()["cache_features"].get<std::string>();
  }
  if (t.threads > 0) torch::set_num_threads(t.threads);
  if (auto s = o.Validate(); !s.ok()) return EagleFail(s);
  train::TuneAllocatorForTraining();
  std::fprintf(stderr,
               "augur distill eagle: %s -> %s: draft vocabulary %lld, %lld TTT steps, %lld steps x %lld windows of %lld "
               "tokens, %d threads%s\n",
               o.target.c_str(), t.out_dir.c_str(), (long long)o.draft_vocab, (long long)o.ttt_steps,
               (long long)t.steps, (long long)(t.batch * t.grad_accum), (long long)t.seq_len, at::get_num_threads(),
               t.resume ? ", resuming" : "");
  auto r = distill::DistillEagle(o);
  if (!r.ok()) return EagleFail(r.status());
  std::string metrics;
  for (const auto& [k, v] : r->valid_metrics) absl::StrAppend(&metrics, metrics.empty() ? "" : " ", k, " ", absl::StrFormat("%.4f", v));
  std::fprintf(stderr, "augur distill eagle: done: step %lld, loss %.4f; held-out %s (best tau %.4f at step %lld -> %s/best)\n",
               (long long)r->steps, r->loss, metrics.c_str(), r->best_value, (long long)r->best_step, t.out_dir.c_str());
  return 0;
}

}  // namespace augur::cli
