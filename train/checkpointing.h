// Training checkpoints: an HF model directory (SaveCheckpoint) plus the trainer state that
// a resumed run needs.
//
//   <dir>/config.json, model.safetensors, tokenizer.model, augur.json   the model
//   <dir>/trainer_state.pt     torch archive: "optimizer" (AdamW state), "rng/cpu"
//   <dir>/trainer_state.json   step, seed, tokens seen, metrics, the run's options
//
// A save is staged in <dir>/.staging-<pid>/ and its files are renamed into <dir> with
// trainer_state.json last, so trainer_state.json always names a complete checkpoint; the
// step is also written into augur.json ("extra": {"train_step": N}) and the two are
// compared on resume, which catches a save interrupted between renames.
#pragma once

#include <nlohmann/json.hpp>
#include <torch/optim/optimizer.h>

#include <cstdint>
#include <functional>
#include <string>

#include "core/checkpoint.h"
#include "core/model.h"
#include "core/status.h"

namespace augur::train {

inline constexpr char kTrainerStateJson[] = "trainer_state.json";
inline constexpr char kTrainerStatePt[] = "trainer_state.pt";
inline constexpr int kTrainerStateFormat = 1;

struct TrainerState {
  int64_t step = 0;         // optimizer steps completed
  uint64_t seed = 0;
  int64_t tokens_seen = 0;  // training tokens consumed (inputs)
  double elapsed_s = 0;     // training wall time over all runs
  double loss = 0;          // training loss of the last step
  double valid_loss = -1;   // last validation loss (-1 = none)
  std::string data_fingerprint;
  nlohmann::json options = nlohmann::json::object();  // TrainOptions::ToJson() of the run

  nlohmann::json ToJson() const;
  static absl::StatusOr<TrainerState> FromJson(const nlohmann::json& j, std::string_view source);
};

bool HasTrainerState(const std::string& dir);
absl::StatusOr<TrainerState> ReadTrainerState(const std::string& dir);

// Writes the model (with `meta`, to which train_step is added), the optimizer state, the
// CPU RNG state and `state` into `dir` as described above.
absl::Status SaveTrainingCheckpoint(LlamaModel& model, const torch::optim::Optimizer& optimizer,
                                    const TrainerState& state, AugurMeta meta, const SaveOptions& save,
                                    const std::string& dir);
// The same for any model: `save_model` writes its files (with the given meta) into a directory.
using SaveModelFn = std::function<absl::Status(const std::string& dir, const AugurMeta& meta)>;
absl::Status SaveTrainingCheckpoint(const SaveModelFn& save_model, const torch::optim::Optimizer& optimizer,
                                    const TrainerState& state, AugurMeta meta, const std::string& dir);

// Removes staging directories left in `dir` by a run killed while saving.
void RemoveStaleStaging(const std::string& dir);

// Restores the optimizer state (the optimizer must have been built over the same
// parameters in the same order) and the CPU RNG state from <dir>/trainer_state.pt.
absl::Status LoadOptimizerState(torch::optim::Optimizer& optimizer, const std::string& dir);

}  // namespace augur::train
