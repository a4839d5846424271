// The HDF5 token store (docs/FORMATS.md, "Token store"): every document's tokens
// (BOS + ids + EOS) concatenated in /tokens, document boundaries in /doc_offsets, and the
// train/valid split as sorted document-index lists under /split. Opening validates the
// format version, the attributes and the shapes; Check() refuses a store made with a
// different tokenizer.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/h5.h"
#include "core/status.h"

namespace augur {

class Tokenizer;

inline constexpr char kTokenStoreFormat[] = "augur-token-store";
inline constexpr int64_t kTokenStoreVersion = 1;

enum class Split { kTrain = 0, kValid = 1 };
const char* SplitName(Split split);  // "train" / "valid"
absl::StatusOr<Split> ParseSplit(const std::string& name);

// The store's attributes.
struct TokenStoreInfo {
  int64_t format_version = kTokenStoreVersion;
  std::string tokenizer_fingerprint;
  int64_t vocab_size = 0;
  int64_t bos_id = -1, eos_id = -1;
  std::string sources;  // JSON array of input descriptions
  double valid_fraction = 0;
  int64_t num_docs = 0, num_tokens = 0;
  int64_t split_docs[2] = {0, 0};    // indexed by Split
  int64_t split_tokens[2] = {0, 0};  // indexed by Split
  std::string created_by;            // augur version and command line
  std::string tokenizer_path;        // absolute path of the tokenizer.model used ("" if unknown)
};

class TokenStore {
 public:
  // Opens and validates. One-line errors for: missing file, not HDF5, not a token store,
  // unsupported format version, inconsistent shapes or counts.
  static absl::StatusOr<std::shared_ptr<const TokenStore>> Open(const std::string& path);

  // Refuses (FailedPrecondition) a store whose tokenizer fingerprint or vocab size differ.
  absl::Status Check(const Tokenizer& tokenizer) const;

  const std::string& path() const { return path_; }
  const TokenStoreInfo& info() const { return info_; }
  h5::DType token_dtype() const { return tokens_.dtype(); }
  int64_t num_docs() const { return info_.num_docs; }
  int64_t num_tokens() const { return info_.num_tokens; }
  // D+1 offsets into /tokens (loaded at open: 8 bytes per document).
  const std::vector<int64_t>& doc_offsets() const { return offsets_; }
  int64_t doc_length(int64_t doc) const { return offsets_[doc + 1] - offsets_[doc]; }
  // The split's document indices, ascending.
  const std::vector<int64_t>& split_docs(Split split) const { return split_[static_cast<int>(split)]; }
  int64_t split_tokens(Split split) const { return info_.split_tokens[static_cast<int>(split)]; }

  // Tokens [begin, begin+count) of /tokens (a hyperslab read; thread-safe).
  absl::Status ReadTokens(int64_t begin, int64_t count, int64_t* out) const;
  absl::Status ReadTokens(int64_t begin, int64_t count, int32_t* out) const;
  // One document's tokens, BOS and EOS included.
  absl::StatusOr<std::vector<int32_t>> DocumentTokens(int64_t doc) const;
  // Its name ("path" or "path:line").
  absl::StatusOr<std::string> DocumentName(int64_t doc) const;

 private:
  std::string path_;
  TokenStoreInfo info_;
  h5::File file_;
  h5::Dataset tokens_, names_;
  std::vector<int64_t> offsets_;
  std::vector<int64_t> split_[2];
};

}  // namespace augur
