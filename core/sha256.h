// SHA-256 (FIPS 180-4), for provenance: `augur import` records the sha256 of the file it
// read, the digest users compare against a model hub's listing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/status.h"

namespace augur {

class Sha256 {
 public:
  Sha256();
  void Update(const void* data, size_t n);
  std::string HexDigest();  // finishes; the object is spent afterwards

 private:
  void Block(const uint8_t* p);
  uint32_t h_[8];
  uint8_t buf_[64];
  size_t buf_len_ = 0;
  uint64_t total_ = 0;
};

// The lower-case hex digest of a whole file, read in chunks.
absl::StatusOr<std::string> Sha256File(const std::string& path);

}  // namespace augur
