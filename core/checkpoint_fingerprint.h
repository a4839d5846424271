// The identity of a model checkpoint's weights: teacher stores and drafters record the
// fingerprint of the target they were made from and refuse another target.
#pragma once

#include <string>

#include "core/status.h"

namespace augur {

// Fingerprint (core/fs.h) over config.json and every *.safetensors file of `dir` (names
// and full contents, in sorted order), read in bounded blocks. It names the weights as
// stored: re-saving the same model in another dtype gives another fingerprint. Cost: one
// read of the weights (about 50 ms for a 22 MB checkpoint on the 2-vCPU VM).
absl::StatusOr<std::string> CheckpointFingerprint(const std::string& dir);

}  // namespace augur
