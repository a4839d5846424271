// augur distill nat: flags -> distill::NatDistillOptions, then distill::DistillNat (or
// EvaluateNat with --eval-only).
#include <torch/torch.h>

#include <cstdio>
#include <string>
#include <vector>

#include <absl/strings/str_format.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/distill_flags.h"
#include "core/config.h"
#include "distill/nat_distill.h"
#include "train/checkpointing.h"

namespace augur::cli {
namespace {

int NatFail(const absl::Status& st) { return DistillFail("distill nat", st); }

std::string MetricsLine(const train::Metrics& m) {
  std::string line;
  for (const auto& [k, v] : m) absl::StrAppend(&line, line.empty() ? "" : " ", k, " ", absl::StrFormat("%.4f", v));
  return line;
}

}  // namespace

int RunDistillNat(int argc, char** argv, int first) {
  train::TrainOptions d;  // the defaults shown in --help; sized for a draft-xs on 2 CPU cores
  d.steps = 600;
  d.batch = 8;
  d.seq_len = 128;
  d.lr = 2e-3;
  d.warmup = 50;
  d.eval_every = 100;
  d.save_every = 200;
  const distill::NatDistillOptions dd;
  std::string presets;
  for (const auto& p : ModelPresets()) absl::StrAppend(&presets, "\n  ", p.name, ": ", p.description);

  Args args("distill nat", "augur distill nat: distill a target into a parallel (NAT) drafter that proposes gamma "
                           "tokens in one forward.",
            "augur distill nat --target DIR --teacher TEACHER.h5 --student PRESET|DIR|FILE.json|target --gamma K "
            "--out DIR [--steps N] [--batch B] [--seq-len T] [--lr LR] [--seed S] [--resume] [--loss fkl|rkl|jsd|tvd] "
            "[--groups-per-seq N] [--init random|target] [--eval-every N] [--threads N]");
  args.flag("target", "DIR", "the target checkpoint (its tokenizer gives the <mask> id; it scores the held-out set)",
            "", true)
      .flag("teacher", "TEACHER.h5", "teacher store from augur distill gen (target-generated sequences)", "", true)
      .flag("student", "SPEC",
            "preset, HF config.json, checkpoint directory (continue from its weights), or 'target' (the target's "
            "config with as many layers as --init-layers names)",
            dd.student)
      .flag("gamma", "K", "tokens proposed per forward: the last token's slot + K-1 mask slots", std::to_string(dd.gamma))
      .flag("out", "DIR", "output: the drafter checkpoint, out/best (highest held-out alpha), trainer state, logs", "",
            true)
      .flag("groups-per-seq", "N",
            "mask groups per training window, at random anchors (0 = one after every token: most signal, ~gamma x "
            "the cost)",
            std::to_string(dd.groups_per_seq))
      .flag("mask-id", "ID", "the mask token id (default: the target tokenizer's <mask>)");
  AddTrainerFlags(args, d,
                  {"windows per micro-batch",
                   "real tokens per training window (the packed sequence adds groups x (gamma-1) slots)",
                   "student init and data order (windows, anchors)",
                   "continue the run in --out (the saved gamma/loss/groups are kept; step count, data order and "
                   "optimizer state continue exactly)",
                   "held-out alpha_1..alpha_gamma every N steps (and at the end)"});
  AddKdFlags(args);
  AddDrafterFlags(args, dd.init, dd.eval_sequences,
                  "only measure --student (a checkpoint directory) on the held-out sequences and print the figures");
  args.note("Presets:" + presets);
  args.note("Layout: slot 0 = the last real token predicts offset 1; mask slot j predicts offset j+1; each mask slot "
            "sees the real prefix and the mask slots before it (docs/FORMATS.md, NAT drafter).");
  args.note("alpha_j is the expected acceptance sum_x min(p_target, q_draft) at offset j, exact (the target runs "
            "online on the held-out sequences), over every context that ends at the last prompt token or later; "
            "alpha is their mean. Files in --out: an HF checkpoint (augur.json kind nat-drafter, gamma, mask_token_id), "
            "best/, trainer_state.*, train_config.json, metrics.jsonl.");

  if (auto st = args.parse(argc, argv, first); !st.ok()) return NatFail(st);
  if (args.help_requested()) {
    std::printf("%s", args.help().c_str());
    return 0;
  }

  distill::NatDistillOptions o;
  o.target = args.str("target");
  o.teacher = args.str("teacher");
  o.student = args.str("student");
  o.command_line = args.command_line();
  train::TrainOptions& t = o.train;
  t = d;
  DistillFlags flags(args, &t);
  if (auto s = flags.ReadTrainer(); !s.ok()) return NatFail(s);
  if (auto s = ReadKd(flags, &o.kd); !s.ok()) return NatFail(s);
  for (auto s : {flags.Int("gamma", "gamma", &o.gamma), flags.Int("groups-per-seq", "groups_per_seq", &o.groups_per_seq)})
    if (!s.ok()) return NatFail(s);
  if (args.has("mask-id")) {
    auto m = args.i64("mask-id");
    if (!m.ok()) return NatFail(m.status());
    o.mask_id = *m;
  } else if (flags.FromSaved("mask-id", "mask_id")) {
    o.mask_id = flags.saved()["mask_id"].get<int64_t>();
  }
  auto drafter = ReadDrafterFlags(args, flags, "distill nat");
  if (!drafter.ok()) return NatFail(drafter.status());
  ApplyDrafterFlags(*drafter, &o);
  if (t.threads > 0) torch::set_num_threads(t.threads);

  if (drafter->eval_only) {
    auto m = distill::EvaluateNat(o);
    if (!m.ok()) return NatFail(m.status());
    std::printf("%s\n", MetricsLine(*m).c_str());
    return 0;
  }

  if (auto s = o.Validate(); !s.ok()) return NatFail(s);
  train::TuneAllocatorForTraining();
  std::fprintf(stderr,
               "augur distill nat: %s -> %s: gamma %lld, loss %s, %lld groups/window, %lld steps x %lld windows of "
               "%lld tokens, %d threads%s%s\n",
               o.student.c_str(), t.out_dir.c_str(), (long long)o.gamma, distill::KdLossName(o.kd.kind),
               (long long)o.groups_per_seq, (long long)t.steps, (long long)(t.batch * t.grad_accum),
               (long long)t.seq_len, at::get_num_threads(), t.resume ? ", resuming" : "",
               o.qat.empty() ? "" : absl::StrCat(", qat ", o.qat).c_str());
  auto r = distill::DistillNat(o);
  if (!r.ok()) return NatFail(r.status());
  std::fprintf(stderr, "augur distill nat: done: step %lld, loss %.4f; held-out %s (best alpha %.4f at step %lld -> %s/best)\n",
               (long long)r->steps, r->loss, MetricsLine(r->valid_metrics).c_str(), r->best_value,
               (long long)r->best_step, t.out_dir.c_str());
  if (auto s = FinishDrafter("distill nat", t.out_dir, o.teacher, *drafter); !s.ok()) return NatFail(s);
  return 0;
}

}  // namespace augur::cli
