// augur distill ar: flags -> distill::ArDistillOptions, then distill::DistillAr (or
// EvaluateAr with --eval-only).
#include <torch/torch.h>

#include <cstdio>
#include <string>
#include <vector>

#include <absl/strings/numbers.h>
#include <absl/strings/str_format.h>
#include <absl/strings/str_split.h>
#include <absl/strings/strip.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/distill_flags.h"
#include "core/config.h"
#include "core/fs.h"
#include "distill/ar_distill.h"
#include "distill/qat.h"
#include "runtime/scheme.h"
#include "train/checkpointing.h"

namespace augur::cli {
namespace {

int ArFail(const absl::Status& st) { return DistillFail("distill ar", st); }

}  // namespace

int RunDistillAr(int argc, char** argv, int first) {
  train::TrainOptions d;  // the defaults shown in --help; sized for a draft-xs on 2 CPU cores
  d.steps = 600;
  d.batch = 16;
  d.seq_len = 128;
  d.lr = 2e-3;
  d.warmup = 50;
  d.eval_every = 100;
  d.save_every = 200;
  const distill::ArDistillOptions dd;
  std::string losses;
  for (const auto& l : distill::KdLosses()) absl::StrAppend(&losses, "\n  ", l.name, ": ", l.help);
  std::string presets, schemes;
  for (const auto& e : SchemeTable()) absl::StrAppend(&schemes, schemes.empty() ? "" : ", ", e.name);
  for (const auto& p : ModelPresets()) absl::StrAppend(&presets, "\n  ", p.name, ": ", p.description);

  Args args("distill ar", "augur distill ar: distill a target into a compact autoregressive drafter.",
            "augur distill ar --target DIR --teacher TEACHER.h5 --student PRESET|DIR|FILE.json|target "
            "--loss fkl|rkl|jsd|tvd --out DIR [--steps N] [--batch B] [--seq-len T] [--lr LR] [--seed S] [--resume]");
  args.flag("target", "DIR", "the target checkpoint (scores on-policy samples and the held-out set)", "", true)
      .flag("teacher", "TEACHER.h5", "teacher store from augur distill gen", "", true)
      .flag("student", "SPEC",
            "preset, HF config.json, checkpoint directory (continue from its weights), or 'target' (the target's "
            "config with as many layers as --init-layers names)",
            dd.student)
      .flag("loss", "fkl|rkl|jsd|tvd", "KD loss (see below)", "fkl")
      .flag("out", "DIR", "output: the drafter checkpoint, out/best (highest held-out alpha), trainer state, logs", "",
            true)
      .flag("steps", "N", "total optimizer steps", std::to_string(d.steps))
      .flag("stop-after", "N", "stop with a checkpoint after N steps of this run (0 = run to --steps)", "0")
      .flag("batch", "B", "sequences per micro-batch", std::to_string(d.batch))
      .flag("seq-len", "T", "tokens per training window (on-policy: prompt + sampled continuation)",
            std::to_string(d.seq_len))
      .flag("grad-accum", "K", "micro-batches per optimizer step", std::to_string(d.grad_accum))
      .flag("lr", "LR", "peak learning rate (AdamW, warmup + cosine)", absl::StrFormat("%g", d.lr))
      .flag("warmup", "N", "linear warmup steps", std::to_string(d.warmup))
      .flag("seed", "S", "student init, data order, on-policy sampling and the mix draws", "0")
      .toggle("resume", "continue the run in --out (give the same loss/policy flags; the step count, data order "
                        "and optimizer state continue exactly)")
      .flag("temperature", "T", "KD temperature on both distributions", "1")
      .flag("jsd-beta", "B", "JSD mixture weight beta", "0.5")
      .flag("policy", "off|on|mix",
            "off: teacher-store windows (top-k KD); on: the student samples continuations of the store's prompts and "
            "the target scores them online (full KD); mix: on-policy with probability --lambda per step",
            "off")
      .flag("lambda", "F", "mix: probability that a step is on-policy (a pure function of seed and step)", "0.5")
      .flag("positions", "all|continuation", "off-policy positions that carry the loss", "all")
      .flag("init", "random|target", "student init: random, or the target's embeddings/norm/head and layers",
            dd.init)
      .flag("init-layers", "L0,L1,...",
            "target layers copied into student layers 0,1,... (--init target; default: the same layers when the "
            "depths agree, else evenly spaced)")
      .flag("eval-every", "N", "held-out KD loss and alpha every N steps (and at the end)", std::to_string(d.eval_every))
      .flag("draft-vocab", "N", "also rank the teacher's tokens by frequency and record the N most frequent as the "
                               "drafter's reduced head (draft_vocab.json; eval's ar:DIR,vocab=M picks another size); 0 = "
                               "full vocabulary", "0")
      .flag("eval-sequences", "N", "teacher sequences held out at the end of the store", std::to_string(dd.eval_sequences))
      .flag("save-every", "N", "checkpoint every N steps (0 = at the end only)", std::to_string(d.save_every))
      .flag("log-every", "N", "metrics.jsonl step record every N steps", std::to_string(d.log_every))
      .flag("threads", "N", "CPU threads for LibTorch (0 = its default)", "0")
      .flag("device", "cpu|cuda|auto", "where to train", d.device)
      .flag("dtype", "float32|bfloat16", "autocast dtype for the forward pass (bfloat16: CUDA only)", d.dtype)
      .flag("qat", "SCHEME",
            "quantization-aware training: the forward uses the student's linears quantized to SCHEME (round to "
            "nearest; straight-through gradients to the fp32 weights), held-out alpha and out/best measure the "
            "quantized drafter, and at the end out/quantized holds the real quantized drafter (from out/best); "
            "schemes: " + schemes + "; typically continued from an fp32 drafter (--student DIR) with a lower --lr")
      .toggle("eval-only", "only measure --student (a checkpoint directory, e.g. a corpus-trained baseline) on the "
                           "held-out sequences; logs an eval record to <out>/metrics.jsonl")
      .toggle("quiet", "no progress output");
  args.note("Losses:" + losses);
  args.note("Presets:" + presets);
  args.note("Init from the target copies tensors, so the student needs the target's width: draft-xs (d=128) cannot "
            "start from target-s (d=256). Use --student target --init target --init-layers 0,5 (a 2-layer student of "
            "the target's width) or a config.json with the target's hidden/intermediate sizes and heads.");
  args.note("alpha is the expected acceptance sum_x min(p_target, q_draft), exact (the target runs online on the "
            "held-out sequences), averaged over their continuation positions (all positions for teacher-forced "
            "stores). Files in --out: an HF checkpoint (augur.json kind ar-drafter), best/, trainer_state.*, "
            "train_config.json, metrics.jsonl.");

  if (auto st = args.parse(argc, argv, first); !st.ok()) return ArFail(st);
  if (args.help_requested()) {
    std::printf("%s", args.help().c_str());
    return 0;
  }

  distill::ArDistillOptions o;
  o.target = args.str("target");
  o.teacher = args.str("teacher");
  o.student = args.str("student");
  o.init = args.str("init");
  o.command_line = args.command_line();
  train::TrainOptions& t = o.train;
  t = d;
  DistillFlags flags(args, &t);
  if (auto s = flags.ReadTrainer(); !s.ok()) return ArFail(s);
  for (auto s : {flags.Float("temperature", "temperature", &o.kd.temperature),
                 flags.Float("jsd-beta", "jsd_beta", &o.kd.jsd_beta), flags.Float("lambda", "lambda", &o.lambda),
                 flags.Int("eval-sequences", "eval_sequences", &o.eval_sequences)})
    if (!s.ok()) return ArFail(s);
  auto loss = distill::ParseKdLoss(flags.Str("loss", "loss"));
  if (!loss.ok()) return ArFail(loss.status());
  o.kd.kind = *loss;
  auto policy = distill::ParsePolicy(flags.Str("policy", "policy"));
  if (!policy.ok()) return ArFail(policy.status());
  o.policy = *policy;
  const std::string positions = flags.Str("positions", "positions");
  if (positions != "all" && positions != "continuation")
    return ArFail(absl::InvalidArgumentError(absl::StrCat("--positions ", positions, ": expected all or continuation")));
  o.continuation_only = positions == "continuation";
  auto layers = ParseInitLayers(args.str("init-layers"));
  if (!layers.ok()) return ArFail(layers.status());
  o.init_layers = *layers;
  o.qat = flags.Str("qat", "qat");
  if (auto s = distill::ValidateQatScheme(o.qat, "distill ar"); !s.ok()) return ArFail(s);
  if (t.threads > 0) torch::set_num_threads(t.threads);

  if (args.on("eval-only")) {
    if (!o.qat.empty())
      return ArFail(absl::InvalidArgumentError(
          "--qat trains through fake quantization; --eval-only measures --student as it is (give a quantized "
          "checkpoint directory to measure a quantized drafter)"));
    auto m = distill::EvaluateAr(o);
    if (!m.ok()) return ArFail(m.status());
    std::string line;
    for (const auto& [k, v] : *m) absl::StrAppend(&line, line.empty() ? "" : " ", k, " ", absl::StrFormat("%.6g", v));
    std::printf("%s\n", line.c_str());
    return 0;
  }

  auto draft_vocab = args.i64("draft-vocab");
  if (!draft_vocab.ok()) return ArFail(draft_vocab.status());
  if (*draft_vocab < 0) return ArFail(absl::InvalidArgumentError(absl::StrCat("--draft-vocab ", *draft_vocab, ": must be >= 0")));
  std::vector<std::string> vocab_dirs = {t.out_dir, JoinPath(t.out_dir, "best")};
  train::TuneAllocatorForTraining();
  std::fprintf(stderr, "augur distill ar: %s -> %s: loss %s, policy %s%s%s, %lld steps x %lld tokens, %d threads%s\n",
               o.student.c_str(), t.out_dir.c_str(), distill::KdLossName(o.kd.kind), distill::PolicyName(o.policy),
               o.policy == distill::Policy::kMix ? absl::StrFormat(" (lambda %g)", o.lambda).c_str() : "",
               o.qat.empty() ? "" : absl::StrCat(", qat ", o.qat).c_str(),
               (long long)t.steps, (long long)(t.batch * t.seq_len * t.grad_accum), at::get_num_threads(),
               t.resume ? ", resuming" : "");
  auto r = distill::DistillAr(o);
  if (!r.ok()) return ArFail(r.status());
  std::fprintf(stderr, "augur distill ar: done: step %lld, loss %.4f, held-out alpha %.4f (best %.4f at step %lld -> %s/best)\n",
               (long long)r->steps, r->loss, train::MetricOr(r->valid_metrics, "alpha", -1), r->best_value,
               (long long)r->best_step, t.out_dir.c_str());
  if (!o.qat.empty()) {
    auto q = distill::ExportQatDrafter(t.out_dir, o.qat);
    if (!q.ok()) return ArFail(q.status());
    std::fprintf(stderr, "augur distill ar: quantized drafter (%s, qat) of %s (step %lld) -> %s\n", o.qat.c_str(),
                 q->source.c_str(), (long long)q->step, q->dir.c_str());
    vocab_dirs.push_back(q->dir);
  }
  if (auto s = WriteDraftVocabs(o.teacher, *draft_vocab, vocab_dirs); !s.ok()) return ArFail(s);
  return 0;
}

}  // namespace augur::cli
