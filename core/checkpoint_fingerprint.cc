#include "core/checkpoint_fingerprint.h"

#include <absl/strings/str_cat.h>

#include <fstream>
#include <vector>

#include "core/fs.h"

namespace augur {

absl::StatusOr<std::string> CheckpointFingerprint(const std::string& dir) {
  if (!IsDirectory(dir)) return absl::NotFoundError(absl::StrCat("checkpoint: ", dir, ": no such directory"));
  std::vector<std::string> files;
  for (const std::string& name : ListDir(dir)) {
    const bool weights = name.size() > 12 && name.compare(name.size() - 12, 12, ".safetensors") == 0;
    if (name == "config.json" || weights) files.push_back(name);
  }
  if (files.size() < 2)
    return absl::FailedPreconditionError(
        absl::StrCat("checkpoint: ", dir, ": needs config.json and *.safetensors to be fingerprinted"));
  // Per-block fingerprints keep memory bounded; the result is the fingerprint of the
  // names, sizes and block fingerprints.
  constexpr size_t kBlock = size_t{64} << 20;
  std::string digest;
  std::string block(kBlock, '\0');
  for (const std::string& name : files) {
    const std::string path = dir + "/" + name;
    std::ifstream in(path, std::ios::binary);
    if (!in) return absl::NotFoundError(absl::StrCat("checkpoint: ", path, ": cannot read"));
    int64_t size = 0;
    absl::StrAppend(&digest, name, ":");
    while (in) {
      in.read(block.data(), static_cast<std::streamsize>(kBlock));
      const std::streamsize got = in.gcount();
      if (got <= 0) break;
      size += got;
      absl::StrAppend(&digest, Fingerprint(std::string_view(block.data(), static_cast<size_t>(got))), ",");
    }
    if (in.bad()) return absl::DataLossError(absl::StrCat("checkpoint: ", path, ": read error"));
    absl::StrAppend(&digest, size, ";");
  }
  return Fingerprint(digest);
}

}  // namespace augur
