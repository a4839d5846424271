// Filesystem helpers: atomic writes (temp name + rename) so a crash or kill never leaves a
// half-written file where a good one was.
#pragma once

#include <set>
#include <string>
#include <string_view>

#include "core/status.h"

namespace augur {

// A temporary sibling name for `path` ("<path>.tmp.<pid>").
std::string TempPathFor(const std::string& path);
// Writes `data` to `path` atomically (fsync, then rename).
absl::Status WriteFileAtomic(const std::string& path, std::string_view data);
// Renames `tmp` onto `path` after fsyncing it; removes `tmp` on failure.
absl::Status CommitTempFile(const std::string& tmp, const std::string& path);
absl::StatusOr<std::string> ReadFile(const std::string& path);
bool FileExists(const std::string& path);
// dir + "/" + name ("name" alone when dir is empty; no doubled slash).
std::string JoinPath(const std::string& dir, const std::string& name);
bool IsDirectory(const std::string& path);
absl::Status MakeDirs(const std::string& dir);
// A fresh directory "$TMPDIR/<prefix>XXXXXX" (mkdtemp); "" when it cannot be made.
std::string MakeTempDir(const std::string& prefix);
// Removes `dir` and everything below it (links are removed, not followed). POSIX nftw:
// std::filesystem::remove_all crashes in binaries linked with libtorch, which exports its
// own copy of std::filesystem symbols.
void RemoveTree(const std::string& dir);
// Names in `dir` (without "." and ".."), sorted; empty when it cannot be read.
std::set<std::string> ListDir(const std::string& dir);
// Hex SHA-256-like fingerprint (FNV-1a 64 twice, for identity, not security).
std::string Fingerprint(std::string_view data);

}  // namespace augur
