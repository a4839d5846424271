// What `augur distill ar` and `augur distill nat` read the same way: the trainer flags, the
// --resume merge of the saved run's options, the --init-layers list, and the error prefix.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/args.h"
#include "core/status.h"
#include "train/trainer.h"

namespace augur::cli {

// Reads the shared flags into a TrainOptions. On --resume the saved run's trainer options
// (trainer_state.json) and objective settings (train_config.json "objective") come first and
// only the flags given now override them; --stop-after applies only to the run that gives it.
class DistillFlags {
 public:
  DistillFlags(const Args& args, train::TrainOptions* t) : args_(args), t_(t) {}

  // Sets out_dir, resume, progress, device, dtype and command_line, merges the saved run on
  // --resume, then reads steps, stop-after, batch, seq-len, grad-accum, lr, warmup, seed,
  // eval-every, save-every, log-every and threads.
  absl::Status ReadTrainer();

  // An objective setting: the flag if given now, else (on --resume) the saved run's `key`,
  // else the flag's default.
  absl::Status Int(const char* flag, const char* key, int64_t* field) const;
  absl::Status Float(const char* flag, const char* key, double* field) const;
  std::string Str(const char* flag, const char* key) const;
  // True when `flag` takes the resumed run's saved `key`.
  bool FromSaved(const char* flag, const char* key) const;
  const nlohmann::json& saved() const { return saved_; }

 private:
  const Args& args_;
  train::TrainOptions* t_;
  nlohmann::json saved_;  // the resumed run's objective settings
};

// --draft-vocab N: ranks the token ids of the teacher store's continuations by frequency and
// writes draft_vocab.json (eval/draft_vocab.h) of default size N into each of `dirs` that exists
// (the run's checkpoint, best/, a QAT export). N = 0: nothing.
absl::Status WriteDraftVocabs(const std::string& teacher, int64_t n, const std::vector<std::string>& dirs);

// "L0,L1,..." -> layer indices (empty text: none).
absl::StatusOr<std::vector<int64_t>> ParseInitLayers(const std::string& text);

// Fail() for `command` ("distill ar"), dropping a leading "<command>: " or "train: " from the
// message so the line names the command once.
int DistillFail(const std::string& command, const absl::Status& st);

}  // namespace augur::cli
