#include "cli/distill_flags.h"

#include <absl/strings/numbers.h>
#include <absl/strings/str_cat.h>
#include <absl/strings/str_split.h>
#include <absl/strings/strip.h>

#include <cstdio>

#include "core/fs.h"
#include "datasets/teacher_store.h"
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
