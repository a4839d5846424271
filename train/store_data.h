// A token store as training data: random windows of the train split (a pure function of
// (seed, batch index), so resume needs only the step) and fixed windows of the valid split.
#pragma once

#include <string>

#include "core/status.h"
#include "train/trainer.h"

namespace augur::train {

struct StoreDataOptions {
  uint64_t seed = 0;
  int64_t seq_len = 0;  // validation is skipped (with a warning) when the valid split is shorter
  // A tokenizer directory (or .model file) to copy into checkpoints. "" = the one named
  // by --tokenizer in the command line that built the store, when it still exists and
  // matches the store's fingerprint.
  std::string tokenizer;
};

// `warnings` receives one-line notes (no tokenizer found, no validation split).
absl::StatusOr<TrainData> OpenStoreData(const std::string& path, const StoreDataOptions& opts,
                                        std::vector<std::string>* warnings);

// The --tokenizer value recorded in a store's created_by command line ("" when absent).
std::string TokenizerFromCreatedBy(const std::string& created_by);

}  // namespace augur::train
