// What `augur distill ar` and `augur distill nat` declare and read the same way: the flag groups
// (trainer, KD, drafter), the --resume merge of the saved run's options, what is written after
// training (the QAT export, draft_vocab.json), and the error prefix.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/args.h"
#include "core/status.h"
#include "distill/kd_loss.h"
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

// The trainer flags whose meaning differs by command, in that command's words.
struct TrainerFlagHelp {
  std::string batch, seq_len, seed, resume, eval_every;
};

// The trainer group (DistillFlags::ReadTrainer reads it): steps, stop-after, batch, seq-len,
// grad-accum, lr, warmup, seed, resume, eval-every, save-every, log-every, threads, device,
// dtype, quiet; defaults from `d`.
void AddTrainerFlags(Args& args, const train::TrainOptions& d, const TrainerFlagHelp& help);

// The KD group: loss, temperature, jsd-beta (the losses listed in a --help note).
void AddKdFlags(Args& args);
absl::Status ReadKd(const DistillFlags& flags, distill::KdOptions* kd);

// The drafter group: init, init-layers, eval-sequences, draft-vocab, qat, eval-only.
void AddDrafterFlags(Args& args, const std::string& init_default, int64_t eval_sequences_default,
                     const std::string& eval_only_help);
struct DrafterFlags {
  std::string init;
  std::vector<int64_t> init_layers;
  int64_t eval_sequences = 0;
  std::string qat;  // "" = none
  int64_t draft_vocab = 0;
  bool eval_only = false;
};
// Reads and checks the group (`command`: "distill ar", for the QAT scheme's message).
absl::StatusOr<DrafterFlags> ReadDrafterFlags(const Args& args, const DistillFlags& flags, const std::string& command);
// The group's student settings into distill::ArDistillOptions / NatDistillOptions.
template <typename DistillOptions>
void ApplyDrafterFlags(const DrafterFlags& f, DistillOptions* o) {
  o->init = f.init;
  o->init_layers = f.init_layers;
  o->eval_sequences = f.eval_sequences;
  o->qat = f.qat;
}
// After training into `out_dir`: the QAT export (with --qat) and --draft-vocab's file in the
// checkpoint, best/ and the export.
absl::Status FinishDrafter(const std::string& command, const std::string& out_dir, const std::string& teacher,
                           const DrafterFlags& f);

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
