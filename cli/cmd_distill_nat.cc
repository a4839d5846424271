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
#include "core/config.h"
#include "core/fs.h"
#include "distill/nat_distill.h"
#include "distill/qat.h"
#include "quantize/scheme.h"
#include "train/checkpointing.h"

namespace augur::cli {
namespace {

int NatFail(const absl::Status& st) {
  absl::string_view msg = st.message();
  if (absl::ConsumePrefix(&msg, "distill nat: ") || absl::ConsumePrefix(&msg, "train: "))
    return Fail("distill nat", absl::Status(st.code(), msg));
  return Fail("distill nat", st);
}

absl::StatusOr<std::vector<int64_t>> ParseLayers(const std::string& text) {
  std::vector<int64_t> layers;
  if (text.empty()) return layers;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    int64_t v = 0;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(part), &v))
      return absl::InvalidArgumentError(absl::StrCat("--init-layers ", text, ": expected comma-separated layer indices"));
    layers.push_back(v);
  }
  return layers;
}

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
  t.out_dir = args.str("out");
  t.resume = args.on("resume");
  t.progress = !args.on("quiet");
  t.device = args.str("device");
  t.dtype = args.str("dtype");
  t.command_line = o.command_line;
  nlohmann::json saved;  // the resumed run's objective settings
  if (t.resume) {
    auto state = train::ReadTrainerState(t.out_dir);
    if (!state.ok()) return NatFail(state.status());
    if (auto s = t.MergeJson(state->options, t.out_dir + "/trainer_state.json"); !s.ok()) return NatFail(s);
    t.stop_after = 0;  // a limit applies to the run that set it
    if (!args.has("device")) t.device = state->options.value("device", t.device);
    if (!args.has("dtype")) t.dtype = state->options.value("dtype", t.dtype);
    auto text = ReadFile(t.out_dir + "/train_config.json");
    const auto j = text.ok() ? nlohmann::json::parse(*text, nullptr, false) : nlohmann::json();
    if (j.is_object() && j.contains("objective")) saved = j["objective"];
  }
  // A flag's value: given now, else (on --resume) the saved run's, else the default.
  auto from_saved = [&](const char* flag, const char* key) {
    return t.resume && !args.has(flag) && saved.is_object() && saved.contains(key);
  };
  auto set_i = [&](const char* flag, int64_t* field, const char* key = nullptr) -> absl::Status {
    if (key != nullptr && from_saved(flag, key)) {
      *field = saved[key].get<int64_t>();
      return absl::OkStatus();
    }
    if (t.resume && !args.has(flag)) return absl::OkStatus();  // trainer options: already merged
    AUGUR_ASSIGN_OR_RETURN(*field, args.i64(flag));
    return absl::OkStatus();
  };
  auto set_f = [&](const char* flag, double* field, const char* key = nullptr) -> absl::Status {
    if (key != nullptr && from_saved(flag, key)) {
      *field = saved[key].get<double>();
      return absl::OkStatus();
    }
    if (t.resume && !args.has(flag)) return absl::OkStatus();
    AUGUR_ASSIGN_OR_RETURN(*field, args.f64(flag));
    return absl::OkStatus();
  };
  int64_t seed = static_cast<int64_t>(t.seed), threads = t.threads;
  absl::Status st;
  for (auto s : {set_i("steps", &t.steps), set_i("stop-after", &t.stop_after), set_i("batch", &t.batch),
                 set_i("seq-len", &t.seq_len), set_i("grad-accum", &t.grad_accum), set_f("lr", &t.lr),
                 set_i("warmup", &t.warmup), set_i("seed", &seed), set_i("eval-every", &t.eval_every),
                 set_i("save-every", &t.save_every), set_i("log-every", &t.log_every), set_i("threads", &threads),
                 set_i("gamma", &o.gamma, "gamma"), set_i("groups-per-seq", &o.groups_per_seq, "groups_per_seq"),
                 set_i("eval-sequences", &o.eval_sequences, "eval_sequences"),
                 set_f("temperature", &o.kd.temperature, "temperature"), set_f("jsd-beta", &o.kd.jsd_beta, "jsd_beta")})
    if (st.ok() && !s.ok()) st = s;
  if (!st.ok()) return NatFail(st);
  t.seed = static_cast<uint64_t>(seed);
  t.threads = static_cast<int>(threads);
  if (args.has("mask-id")) {
    auto m = args.i64("mask-id");
    if (!m.ok()) return NatFail(m.status());
    o.mask_id = *m;
  } else if (from_saved("mask-id", "mask_id")) {
    o.mask_id = saved["mask_id"].get<int64_t>();
  }
  auto loss = distill::ParseKdLoss(from_saved("loss", "loss") ? saved["loss"].get<std::string>() : args.str("loss"));
  if (!loss.ok()) return NatFail(loss.status());
  o.kd.kind = *loss;
  auto layers = ParseLayers(args.str("init-layers"));
  if (!layers.ok()) return NatFail(layers.status());
  o.init_layers = *layers;
  o.qat = from_saved("qat", "qat") ? saved["qat"].get<std::string>() : args.str("qat");
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
  }
  return 0;
}

}  // namespace augur::cli
