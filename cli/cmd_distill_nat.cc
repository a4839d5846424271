// augur distill nat: flags -> distill::NatDistillOptions, then distill::DistillNat (or
// EvaluateNat with --eval-only).
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
#include "distill/nat_distill.h"
#include "distill/qat.h"
#include "runtime/scheme.h"
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
  std::string losses;
  for (const auto& l : distill::KdLosses()) absl::StrAppend(&losses, "\n  ", l.name, ": ", l.help);
  std::string presets, schemes;
  for (const auto& e : SchemeTable()) absl::StrAppend(&schemes, schemes.empty() ? "" : ", ", e.name);
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
      .flag("loss", "fkl|rkl|jsd|tvd", "KD loss (see below)", "fkl")
      .flag("groups-per-seq", "N",
            "mask groups per training window, at random anchors (0 = one after every token: most signal, ~gamma x "
            "the cost)",
            std::to_string(dd.groups_per_seq))
      .flag("mask-id", "ID", "the mask token id (default: the target tokenizer's <mask>)")
      .flag("steps", "N", "total optimizer steps", std::to_string(d.steps))
      .flag("stop-after", "N", "stop with a checkpoint after N steps of this run (0 = run to --steps)", "0")
      .flag("batch", "B", "windows per micro-batch", std::to_string(d.batch))
      .flag("seq-len", "T", "real tokens per training window (the packed sequence adds groups x (gamma-1) slots)",
            std::to_string(d.seq_len))
      .flag("grad-accum", "K", "micro-batches per optimizer step", std::to_string(d.grad_accum))
      .flag("lr", "LR", "peak learning rate (AdamW, warmup + cosine)", absl::StrFormat("%g", d.lr))
      .flag("warmup", "N", "linear warmup steps", std::to_string(d.warmup))
      .flag("seed", "S", "student init and data order (windows, anchors)", "0")
      .toggle("resume", "continue the run in --out (the saved gamma/loss/groups are kept; step count, data order and "
                        "optimizer state continue exactly)")
      .flag("temperature", "T", "KD temperature on both distributions", "1")
      .flag("jsd-beta", "B", "JSD mixture weight beta", "0.5")
      .flag("init", "random|target", "student init: random, or the target's embeddings/norm/head and layers", dd.init)
      .flag("init-layers", "L0,L1,...",
            "target layers copied into student layers 0,1,... (--init target; default: the same layers when the "
            "depths agree, else evenly spaced)")
      .flag("eval-every", "N", "held-out alpha_1..alpha_gamma every N steps (and at the end)",
            std::to_string(d.eval_every))
      .flag("draft-vocab", "N", "also rank the teacher's tokens by frequency and record the N most frequent as the "
                               "drafter's reduced head (draft_vocab.json; eval's ar:DIR,vocab=M picks another size); 0 = "
                               "full vocabulary", "0")
      .flag("eval-sequences", "N", "teacher sequences held out at the end of the store",
            std::to_string(dd.eval_sequences))
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
      .toggle("eval-only", "only measure --student (a checkpoint directory) on the held-out sequences and print the "
                           "figures")
      .toggle("quiet", "no progress output");
  args.note("Losses:" + losses);
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
  o.init = args.str("init");
  o.command_line = args.command_line();
  train::TrainOptions& t = o.train;
  t = d;
  DistillFlags flags(args, &t);
  if (auto s = flags.ReadTrainer(); !s.ok()) return NatFail(s);
  for (auto s : {flags.Int("gamma", "gamma", &o.gamma), flags.Int("groups-per-seq", "groups_per_seq", &o.groups_per_seq),
                 flags.Int("eval-sequences", "eval_sequences", &o.eval_sequences),
                 flags.Float("temperature", "temperature", &o.kd.temperature),
                 flags.Float("jsd-beta", "jsd_beta", &o.kd.jsd_beta)})
    if (!s.ok()) return NatFail(s);
  if (args.has("mask-id")) {
    auto m = args.i64("mask-id");
    if (!m.ok()) return NatFail(m.status());
    o.mask_id = *m;
  } else if (flags.FromSaved("mask-id", "mask_id")) {
    o.mask_id = flags.saved()["mask_id"].get<int64_t>();
  }
  auto loss = distill::ParseKdLoss(flags.Str("loss", "loss"));
  if (!loss.ok()) return NatFail(loss.status());
  o.kd.kind = *loss;
  auto layers = ParseInitLayers(args.str("init-layers"));
  if (!layers.ok()) return NatFail(layers.status());
  o.init_layers = *layers;
  o.qat = flags.Str("qat", "qat");
  if (auto s = distill::ValidateQatScheme(o.qat, "distill nat"); !s.ok()) return NatFail(s);
  if (t.threads > 0) torch::set_num_threads(t.threads);

  if (args.on("eval-only")) {
    if (!o.qat.empty())
      return NatFail(absl::InvalidArgumentError(
          "--qat trains through fake quantization; --eval-only measures --student as it is (give a quantized "
          "checkpoint directory to measure a quantized drafter)"));
    auto m = distill::EvaluateNat(o);
    if (!m.ok()) return NatFail(m.status());
    std::printf("%s\n", MetricsLine(*m).c_str());
    return 0;
  }

  if (auto s = o.Validate(); !s.ok()) return NatFail(s);
  auto draft_vocab = args.i64("draft-vocab");
  if (!draft_vocab.ok()) return NatFail(draft_vocab.status());
  if (*draft_vocab < 0) return NatFail(absl::InvalidArgumentError(absl::StrCat("--draft-vocab ", *draft_vocab, ": must be >= 0")));
  std::vector<std::string> vocab_dirs = {t.out_dir, JoinPath(t.out_dir, "best")};
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
  if (!o.qat.empty()) {
    auto q = distill::ExportQatDrafter(t.out_dir, o.qat);
    if (!q.ok()) return NatFail(q.status());
    std::fprintf(stderr, "augur distill nat: quantized drafter (%s, qat) of %s (step %lld) -> %s\n", o.qat.c_str(),
                 q->source.c_str(), (long long)q->step, q->dir.c_str());
    vocab_dirs.push_back(q->dir);
  }
  if (auto s = WriteDraftVocabs(o.teacher, *draft_vocab, vocab_dirs); !s.ok()) return NatFail(s);
  return 0;
}

}  // namespace augur::cli
