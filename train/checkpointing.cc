#include "train/checkpointing.h"

#include <ATen/CPUGeneratorImpl.h>
#include <dirent.h>
#include <torch/serialize.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <vector>

#include "core/fs.h"

namespace augur::train {
namespace {

// POSIX rather than std::filesystem: libtorch.so exports its own older copy of the
// std::filesystem symbols, and calls may bind to it and crash.

// Regular files directly in `dir` (names only).
std::vector<std::string> ListFiles(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (const dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      if (!IsDirectory(JoinPath(dir, name))) names.push_back(name);
    }
    ::closedir(d);
  }
  return names;
}

// Removes a staging directory that holds only files.
void RemoveFlatDir(const std::string& dir) {
  for (const auto& name : ListFiles(dir)) ::unlink(JoinPath(dir, name).c_str());
  ::rmdir(dir.c_str());
}

}  // namespace

nlohmann::json TrainerState::ToJson() const {
  return {{"format", kTrainerStateFormat},
          {"step", step},
          {"seed", seed},
          {"tokens_seen", tokens_seen},
          {"elapsed_s", elapsed_s},
          {"loss", loss},
          {"valid_loss", valid_loss},
          {"data_fingerprint", data_fingerprint},
          {"options", options}};
}

absl::StatusOr<TrainerState> TrainerState::FromJson(const nlohmann::json& j, std::string_view source) {
  auto bad = [&](const std::string& what) {
    return absl::InvalidArgumentError(absl::StrCat("train: ", std::string(source), ": ", what));
  };
  if (!j.is_object()) return bad("not a JSON object");
  if (j.value("format", 0) != kTrainerStateFormat)
    return bad(absl::StrCat("format ", j.value("format", 0), " is not the supported ", kTrainerStateFormat));
  TrainerState s;
  try {
    s.step = j.at("step").get<int64_t>();
    s.seed = j.at("seed").get<uint64_t>();
    s.tokens_seen = j.value("tokens_seen", int64_t{0});
    s.elapsed_s = j.value("elapsed_s", 0.0);
    s.loss = j.value("loss", 0.0);
    s.valid_loss = j.value("valid_loss", -1.0);
    s.data_fingerprint = j.value("data_fingerprint", std::string());
    s.options = j.value("options", nlohmann::json::object());
  } catch (const nlohmann::json::exception& e) {
    return bad(absl::StrCat("missing or mistyped field (", e.what(), ")"));
  }
  if (s.step < 0) return bad(absl::StrCat("step ", s.step, " is negative"));
  return s;
}

bool HasTrainerState(const std::string& dir) { return FileExists(JoinPath(dir, kTrainerStateJson)); }

absl::StatusOr<TrainerState> ReadTrainerState(const std::string& dir) {
  const std::string path = JoinPath(dir, kTrainerStateJson);
  if (!FileExists(path))
    return absl::NotFoundError(absl::StrCat("train: ", dir, ": no ", kTrainerStateJson,
                                            " to resume from; run without --resume to start a new run"));
  AUGUR_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError(absl::StrCat("train: ", path, ": not valid JSON"));
  return TrainerState::FromJson(j, path);
}

absl::Status SaveTrainingCheckpoint(LlamaModel& model, const torch::optim::Optimizer& optimizer,
                                    const TrainerState& state, AugurMeta meta, const SaveOptions& save,
                                    const std::string& dir) {
  return SaveTrainingCheckpoint(
      [&](const std::string& d, const AugurMeta& m) { return SaveCheckpoint(model, m, d, save); }, optimizer, state,
      std::move(meta), dir);
}

absl::Status SaveTrainingCheckpoint(const SaveModelFn& save_model, const torch::optim::Optimizer& optimizer,
                                    const TrainerState& state, AugurMeta meta, const std::string& dir) {
  AUGUR_RETURN_IF_ERROR(MakeDirs(dir));
  const std::string staging = JoinPath(dir, absl::StrCat(".staging-", ::getpid()));
  RemoveFlatDir(staging);
  AUGUR_RETURN_IF_ERROR(MakeDirs(staging));

  meta.extra["train_step"] = state.step;
  absl::Status saved = save_model(staging, meta);
  if (!saved.ok()) {
    RemoveFlatDir(staging);
    return saved;
  }
  const std::string pt = JoinPath(staging, kTrainerStatePt);
  try {
    torch::serialize::OutputArchive archive, opt_archive;
    optimizer.save(opt_archive);
    archive.write("optimizer", opt_archive);
    {
      auto gen = at::detail::getDefaultCPUGenerator();
      std::lock_guard<std::mutex> lock(gen.mutex());
      archive.write("rng/cpu", gen.get_state());
    }
    archive.save_to(pt);
  } catch (const c10::Error& e) {
    RemoveFlatDir(staging);
    return absl::InternalError(
        absl::StrCat("train: ", pt, ": cannot write optimizer state: ", e.what_without_backtrace()));
  }
  saved = WriteFileAtomic(JoinPath(staging, kTrainerStateJson), state.ToJson().dump(2) + "\n");
  if (!saved.ok()) {
    RemoveFlatDir(staging);
    return saved;
  }

  // Rename everything into place, the commit record (trainer_state.json) last.
  std::vector<std::string> files;
  for (const auto& name : ListFiles(staging))
    if (name != kTrainerStateJson) files.push_back(name);
  files.push_back(kTrainerStateJson);
  for (const auto& name : files) {
    if (std::rename(JoinPath(staging, name).c_str(), JoinPath(dir, name).c_str()) != 0)
      return absl::InternalError(absl::StrCat("train: ", JoinPath(dir, name),
                                              ": cannot move checkpoint file into place: ", std::strerror(errno)));
  }
  RemoveFlatDir(staging);
  return absl::OkStatus();
}

void RemoveStaleStaging(const std::string& dir) {
  std::vector<std::string> stale;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (const dirent* e = ::readdir(d)) {
      const std::string name = e->d_name;
      if (name.rfind(".staging-", 0) == 0 && IsDirectory(JoinPath(dir, name))) stale.push_back(name);
    }
    ::closedir(d);
  }
  for (const auto& name : stale) RemoveFlatDir(JoinPath(dir, name));
}

absl::Status LoadOptimizerState(torch::optim::Optimizer& optimizer, const std::string& dir) {
  const std::string path = JoinPath(dir, kTrainerStatePt);
  if (!FileExists(path))
    return absl::NotFoundError(absl::StrCat("train: ", path, ": missing; the checkpoint has no optimizer state"));
  try {
    torch::serialize::InputArchive archive, opt_archive;
    archive.load_from(path);
    archive.read("optimizer", opt_archive);
    optimizer.load(opt_archive);
    at::Tensor rng;
    if (archive.try_read("rng/cpu", rng)) {
      auto gen = at::detail::getDefaultCPUGenerator();
      std::lock_guard<std::mutex> lock(gen.mutex());
      gen.set_state(rng);
    }
  } catch (const c10::Error& e) {
    return absl::InvalidArgumentError(absl::StrCat("train: ", path, ": cannot read optimizer state (",
                                                   e.what_without_backtrace(),
                                                   "); was it written for a different model?"));
  }
  return absl::OkStatus();
}

}  // namespace augur::train
