#include "cli/distill_flags.h"

#include <absl/strings/numbers.h>
#include <absl/strings/str_format.h>
#include <absl/strings/str_cat.h>
#include <absl/strings/str_split.h>
#include <absl/strings/strip.h>

#include <cstdio>

#include "core/fs.h"
#include "datasets/teacher_store.h"
#include "distill/qat.h"
#include "runtime/scheme.h"
#include "eval/draft_vocab.h"
#include "train/checkpointing.h"

namespace augur::cli {

absl::Status DistillFlags::ReadTrainer() {
  train::TrainOptions& t = *t_;
  t.out_dir = args_.str("out");
  t.resume = args_.on("resume");
  t.progress = !args_.on("quiet");
  t.device = args_.str("device");
  t.dtype = args_.str("dtype");
  t.command_line = args_.command_line();
  if (t.resume) {
    AUGUR_ASSIGN_OR_RETURN(auto state, train::ReadTrainerState(t.out_dir));
    AUGUR_RETURN_IF_ERROR(t.MergeJson(state.options, t.out_dir + "/trainer_state.json"));
    t.stop_after = 0;  // a limit applies to the run that set it
    if (!args_.has("device")) t.device = state.options.value("device", t.device);
    if (!args_.has("dtype")) t.dtype = state.options.value("dtype", t.dtype);
    auto text = ReadFile(t.out_dir + "/train_config.json");
    const auto j = text.ok() ? nlohmann::json::parse(*text, nullptr, false) : nlohmann::json();
    if (j.is_object() && j.contains("objective")) saved_ = j["objective"];
  }
  // Trainer options: on --resume the merged values stand unless a flag is given now.
  auto read_i = [&](const char* flag, auto* field) -> absl::Status {
    if (t.resume && !args_.has(flag)) return absl::OkStatus();
    AUGUR_ASSIGN_OR_RETURN(int64_t v, args_.i64(flag));
    *field = static_cast<std::decay_t<decltype(*field)>>(v);
    return absl::OkStatus();
  };
  AUGUR_RETURN_IF_ERROR(read_i("steps", &t.steps));
  AUGUR_RETURN_IF_ERROR(read_i("stop-after", &t.stop_after));
  AUGUR_RETURN_IF_ERROR(read_i("batch", &t.batch));
  AUGUR_RETURN_IF_ERROR(read_i("seq-len", &t.seq_len));
  AUGUR_RETURN_IF_ERROR(read_i("grad-accum", &t.grad_accum));
  AUGUR_RETURN_IF_ERROR(read_i("warmup", &t.warmup));
  AUGUR_RETURN_IF_ERROR(read_i("seed", &t.seed));
  AUGUR_RETURN_IF_ERROR(read_i("eval-every", &t.eval_every));
  AUGUR_RETURN_IF_ERROR(read_i("save-every", &t.save_every));
  AUGUR_RETURN_IF_ERROR(read_i("log-every", &t.log_every));
  AUGUR_RETURN_IF_ERROR(read_i("threads", &t.threads));
  if (!t.resume || args_.has("lr")) {
    AUGUR_ASSIGN_OR_RETURN(t.lr, args_.f64("lr"));
  }
  return absl::OkStatus();
}

bool DistillFlags::FromSaved(const char* flag, const char* key) const {
  return t_->resume && !args_.has(flag) && saved_.is_object() && saved_.contains(key);
}

absl::Status DistillFlags::Int(const char* flag, const char* key, int64_t* field) const {
  if (FromSaved(flag, key)) {
    *field = saved_[key].get<int64_t>();
    return absl::OkStatus();
  }
  AUGUR_ASSIGN_OR_RETURN(*field, args_.i64(flag));
  return absl::OkStatus();
}

absl::Status DistillFlags::Float(const char* flag, const char* key, double* field) const {
  if (FromSaved(flag, key)) {
    *field = saved_[key].get<double>();
    return absl::OkStatus();
  }
  AUGUR_ASSIGN_OR_RETURN(*field, args_.f64(flag));
  return absl::OkStatus();
}

std::string DistillFlags::Str(const char* flag, const char* key) const {
  if (!FromSaved(flag, key)) return args_.str(flag);
  const auto& v = saved_[key];
  return v.is_string() ? v.get<std::string>() : v.dump();
}

void AddTrainerFlags(Args& args, const train::TrainOptions& d, const TrainerFlagHelp& help) {
  args.flag("steps", "N", "total optimizer steps", std::to_string(d.steps))
      .flag("stop-after", "N", "stop with a checkpoint after N steps of this run (0 = run to --steps)", "0")
      .flag("batch", "B", help.batch, std::to_string(d.batch))
      .flag("seq-len", "T", help.seq_len, std::to_string(d.seq_len))
      .flag("grad-accum", "K", "micro-batches per optimizer step", std::to_string(d.grad_accum))
      .flag("lr", "LR", "peak learning rate (AdamW, warmup + cosine)", absl::StrFormat("%g", d.lr))
      .flag("warmup", "N", "linear warmup steps", std::to_string(d.warmup))
      .flag("seed", "S", help.seed, std::to_string(d.seed))
      .toggle("resume", help.resume)
      .flag("eval-every", "N", help.eval_every, std::to_string(d.eval_every))
      .flag("save-every", "N", "checkpoint every N steps (0 = at the end only)", std::to_string(d.save_every))
      .flag("log-every", "N", "metrics.jsonl step record every N steps", std::to_string(d.log_every))
      .flag("threads", "N", "CPU threads for LibTorch (0 = its default)", std::to_string(d.threads))
      .flag("device", "cpu|cuda|auto", "where to train", d.device)
      .flag("dtype", "float32|bfloat16", "autocast dtype for the forward pass (bfloat16: CUDA only)", d.dtype)
      .toggle("quiet", "no progress output");
}

void AddKdFlags(Args& args) {
  std::string losses;
  for (const auto& l : distill::KdLosses()) absl::StrAppend(&losses, "\n  ", l.name, ": ", l.help);
  args.flag("loss", "fkl|rkl|jsd|tvd", "KD loss (see below)", "fkl")
      .flag("temperature", "T", "KD temperature on both distributions", "1")
      .flag("jsd-beta", "B", "JSD mixture weight beta", "0.5")
      .note("Losses:" + losses);
}

absl::Status ReadKd(const DistillFlags& flags, distill::KdOptions* kd) {
  AUGUR_RETURN_IF_ERROR(flags.Float("temperature", "temperature", &kd->temperature));
  AUGUR_RETURN_IF_ERROR(flags.Float("jsd-beta", "jsd_beta", &kd->jsd_beta));
  AUGUR_ASSIGN_OR_RETURN(kd->kind, distill::ParseKdLoss(flags.Str("loss", "loss")));
  return absl::OkStatus();
}

void AddDrafterFlags(Args& args, const std::string& init_default, int64_t eval_sequences_default,
                     const std::string& eval_only_help) {
  std::string schemes;
  for (const auto& e : SchemeTable()) absl::StrAppend(&schemes, schemes.empty() ? "" : ", ", e.name);
  args.flag("init", "random|target", "student init: random, or the target's embeddings/norm/head and layers",
            init_default)
      .flag("init-layers", "L0,L1,...",
            "target layers copied into student layers 0,1,... (--init target; default: the same layers when the "
            "depths agree, else evenly spaced)")
      .flag("eval-sequences", "N", "teacher sequences held out at the end of the store",
            std::to_string(eval_sequences_default))
      .flag("draft-vocab", "N",
            "also rank the teacher's tokens by frequency and record the N most frequent as the drafter's reduced head "
            "(draft_vocab.json; eval's KIND:DIR,vocab=M picks another size); 0 = full vocabulary",
            "0")
      .flag("qat", "SCHEME",
            "quantization-aware training: the forward uses the student's linears quantized to SCHEME (round to "
            "nearest; straight-through gradients to the fp32 weights), held-out alpha and out/best measure the "
            "quantized drafter, and at the end out/quantized holds the real quantized drafter (from out/best); "
            "schemes: " + schemes + "; typically continued from an fp32 drafter (--student DIR) with a lower --lr")
      .toggle("eval-only", eval_only_help);
}

absl::StatusOr<DrafterFlags> ReadDrafterFlags(const Args& args, const DistillFlags& flags, const std::string& command) {
  DrafterFlags f;
  f.init = args.str("init");
  AUGUR_ASSIGN_OR_RETURN(f.init_layers, ParseInitLayers(args.str("init-layers")));
  AUGUR_RETURN_IF_ERROR(flags.Int("eval-sequences", "eval_sequences", &f.eval_sequences));
  f.qat = flags.Str("qat", "qat");
  AUGUR_RETURN_IF_ERROR(distill::ValidateQatScheme(f.qat, command));
  AUGUR_ASSIGN_OR_RETURN(f.draft_vocab, args.i64("draft-vocab"));
  if (f.draft_vocab < 0)
    return absl::InvalidArgumentError(absl::StrCat("--draft-vocab ", f.draft_vocab, ": must be >= 0"));
  f.eval_only = args.on("eval-only");
  if (f.eval_only && !f.qat.empty())
    return absl::InvalidArgumentError(
        "--qat trains through fake quantization; --eval-only measures --student as it is (give a quantized "
        "checkpoint directory to measure a quantized drafter)");
  return f;
}

absl::Status FinishDrafter(const std::string& command, const std::string& out_dir, const std::string& teacher,
                           const DrafterFlags& f) {
  std::vector<std::string> vocab_dirs = {out_dir, JoinPath(out_dir, "best")};
  if (!f.qat.empty()) {
    AUGUR_ASSIGN_OR_RETURN(auto q, distill::ExportQatDrafter(out_dir, f.qat));
    std::fprintf(stderr, "augur %s: quantized drafter (%s, qat) of %s (step %lld) -> %s\n", command.c_str(),
                 f.qat.c_str(), q.source.c_str(), static_cast<long long>(q.step), q.dir.c_str());
    vocab_dirs.push_back(q.dir);
  }
  return WriteDraftVocabs(teacher, f.draft_vocab, vocab_dirs);
}

absl::Status WriteDraftVocabs(const std::string& teacher, int64_t n, const std::vector<std::string>& dirs) {
  if (n == 0) return absl::OkStatus();
  if (n < 0) return absl::InvalidArgumentError(absl::StrCat("--draft-vocab ", n, ": must be >= 0"));
  AUGUR_ASSIGN_OR_RETURN(std::shared_ptr<const TeacherStore> store, TeacherStore::Open(teacher));
  const int64_t vocab = store->info().vocab_size;
  if (n > vocab)
    return absl::InvalidArgumentError(absl::StrCat("--draft-vocab ", n, ": exceeds the vocabulary ", vocab));
  AUGUR_ASSIGN_OR_RETURN(std::vector<int64_t> counts, CountTeacherTokens(*store, vocab));
  DraftVocab v;
  v.source = teacher;
  v.size = n;
  v.ranked = RankByCount(counts);
  int64_t covered = 0, total = 0;
  for (int64_t i = 0; i < vocab; ++i) {
    total += counts[v.ranked[i]];
    if (i < n) covered += counts[v.ranked[i]];
  }
  for (const std::string& dir : dirs)
    if (IsDirectory(dir)) AUGUR_RETURN_IF_ERROR(WriteDraftVocab(dir, v));
  std::fprintf(stderr, "draft vocabulary: the %lld most frequent tokens cover %.2f%% of %lld teacher tokens -> %s\n",
               static_cast<long long>(n), total > 0 ? 100.0 * covered / total : 0.0, static_cast<long long>(total),
               kDraftVocabFile);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<int64_t>> ParseInitLayers(const std::string& text) {
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

int DistillFail(const std::string& command, const absl::Status& st) {
  absl::string_view msg = st.message();
  if (absl::ConsumePrefix(&msg, command + ": ") || absl::ConsumePrefix(&msg, "train: "))
    return Fail(command, absl::Status(st.code(), msg));
  return Fail(command, st);
}

}  // namespace augur::cli
