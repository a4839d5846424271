// The identity of a model checkpoint's weights: teacher stores and drafters record the
// fingerprint of the target they were made from and refuse another target.
#pragma once

#include <string>

#include "core/status.h"

namespace augur {

// Fingerprint (core/fs.h) over config.json and every *.safetensors file of `dir` (names
// and full contents, in sorted order), read in bounded blocks. It names the weights as
// stored: re-saving the same model in another dtype gives another fingerprint. Cost: one
// sequential read and FNV hash of every weight byte (not measured on large checkpoints).
absl::StatusOr<std::string> CheckpointFingerprint(const std::string& dir);

}  // namespace augur
