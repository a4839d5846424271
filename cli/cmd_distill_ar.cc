// augur distill ar: flags -> distill::ArDistillOptions, then distill::DistillAr (or
// EvaluateAr with --eval-only).
#include <torch/torch.h>

#include <cstdio>
#include <string>
#include <vector>

#include <absl/strings/str_format.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/distill_flags.h"
#include "core/config.h"
#include "distill/ar_distill.h"
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
  std::string presets;
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
      .flag("out", "DIR", "output: the drafter checkpoint, out/best (highest held-out alpha), trainer state, logs", "",
            true)
      .flag("policy", "off|on|mix",
            "off: teacher-store windows (top-k KD); on: the student samples continuations of the store's prompts and "
            "the target scores them online (full KD); mix: on-policy with probability --lambda per step",
            "off")
      .flag("lambda", "F", "mix: probability that a step is on-policy (a pure function of seed and step)", "0.5")
      .flag("positions", "all|continuation", "off-policy positions that carry the loss", "all");
  AddTrainerFlags(args, d,
                  {"sequences per micro-batch", "tokens per training window (on-policy: prompt + sampled continuation)",
                   "student init, data order, on-policy sampling and the mix draws",
                   "continue the run in --out (give the same loss/policy flags; the step count, data order and "
                   "optimizer state continue exactly)",
                   "held-out KD loss and alpha every N steps (and at the end)"});
  AddKdFlags(args);
  AddDrafterFlags(args, dd.init, dd.eval_sequences,
                  "only measure --student (a checkpoint directory, e.g. a corpus-trained baseline) on the held-out "
                  "sequences; logs an eval record to <out>/metrics.jsonl");
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
  o.command_line = args.command_line();
  train::TrainOptions& t = o.train;
  t = d;
  DistillFlags flags(args, &t);
  if (auto s = flags.ReadTrainer(); !s.ok()) return ArFail(s);
  if (auto s = ReadKd(flags, &o.kd); !s.ok()) return ArFail(s);
  if (auto s = flags.Float("lambda", "lambda", &o.lambda); !s.ok()) return ArFail(s);
  auto drafter = ReadDrafterFlags(args, flags, "distill ar");
  if (!drafter.ok()) return ArFail(drafter.status());
  ApplyDrafterFlags(*drafter, &o);
  auto policy = distill::ParsePolicy(flags.Str("policy", "policy"));
  if (!policy.ok()) return ArFail(policy.status());
  o.policy = *policy;
  const std::string positions = flags.Str("positions", "positions");
  if (positions != "all" && positions != "continuation")
    return ArFail(absl::InvalidArgumentError(absl::StrCat("--positions ", positions, ": expected all or continuation")));
  o.continuation_only = positions == "continuation";
  if (t.threads > 0) torch::set_num_threads(t.threads);

  if (drafter->eval_only) {
    auto m = distill::EvaluateAr(o);
    if (!m.ok()) return ArFail(m.status());
    std::string line;
    for (const auto& [k, v] : *m) absl::StrAppend(&line, line.empty() ? "" : " ", k, " ", absl::StrFormat("%.6g", v));
    std::printf("%s\n", line.c_str());
    return 0;
  }

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
  if (auto s = FinishDrafter("distill ar", t.out_dir, o.teacher, *drafter); !s.ok()) return ArFail(s);
  return 0;
}

}  // namespace augur::cli
