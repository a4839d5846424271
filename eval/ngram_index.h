// A REST-style retrieval datastore ("a search engine as the prophet"): a suffix array over a
// token store's training tokens, so that every occurrence of the context's longest matching
// suffix (n from max_ngram down to min_ngram) is one binary search away, and the tokens that
// followed those occurrences, counted, are the drafter's guess. The on-disk layout is
// docs/FORMATS.md "N-gram datastore".
//
// Shapes: N datastore tokens, n pattern length, G proposed tokens.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "eval/drafter.h"

namespace augur {

inline constexpr char kNgramFormat[] = "augur-ngram-datastore";
inline constexpr int64_t kNgramVersion = 1;

// Suffix array of `tokens` (all suffixes, lexicographic, a proper prefix sorting before its
// extensions): prefix doubling, O(N log^2 N) worst case, O(N log N) memory-light sorts.
std::vector<uint32_t> BuildSuffixArray(const std::vector<int32_t>& tokens);
// The slow obvious reference: std::sort with a full lexicographic suffix comparison.
std::vector<uint32_t> BuildSuffixArrayReference(const std::vector<int32_t>& tokens);

// A continuation trie node: the token, its parent (-1 = attaches to the matched context)
// and how many datastore occurrences continue this way.
struct Continuation {
  int32_t token = 0;
  int32_t parent = -1;
  int64_t count = 0;
};

class NgramIndex {
 public:
  // In-memory index over `tokens` (the suffix array is built here).
  static NgramIndex FromTokens(std::vector<int32_t> tokens, int64_t vocab_size);
  // Opens and validates a datastore file (format, version, shapes, suffix array bounds).
  static absl::StatusOr<std::shared_ptr<const NgramIndex>> Open(const std::string& path);
  // Writes the datastore atomically (temp file + rename). `provenance`: free text.
  absl::Status Save(const std::string& path, const std::string& source, const std::string& provenance) const;

  int64_t size() const { return static_cast<int64_t>(tokens_.size()); }
  int64_t vocab_size() const { return vocab_size_; }
  const std::vector<int32_t>& tokens() const { return tokens_; }
  const std::vector<uint32_t>& suffix_array() const { return sa_; }

  // The suffix-array range [first, second) of suffixes that start with `pattern`.
  std::pair<int64_t, int64_t> Range(const int64_t* pattern, int64_t n) const;
  // Longest suffix of `context` (n in [min_ngram, max_ngram]) that occurs in the datastore
  // with at least one following token; returns n (0: none) and its range.
  int64_t LongestMatch(const std::vector<int64_t>& context, int64_t max_ngram, int64_t min_ngram,
                       std::pair<int64_t, int64_t>* range) const;
  // Up to `max_nodes` continuation nodes (at most `depth` deep, at most `branch` children
  // per node) of the suffixes in `range` matched over n tokens, expanded most frequent
  // first; nodes are ordered so that a parent precedes its children, siblings by count.
  std::vector<Continuation> Continuations(std::pair<int64_t, int64_t> range, int64_t n, int64_t depth,
                                          int64_t branch, int64_t max_nodes) const;

 private:
  std::vector<int32_t> tokens_;
  std::vector<uint32_t> sa_;
  int64_t vocab_size_ = 0;
};

struct NgramBuildOptions {
  std::string split = "train";
  int64_t max_tokens = 0;  // 0: all of the split
};

// Reads the split's documents from a token store (datasets/token_store.h), concatenated in
// document order, truncated to max_tokens, and indexes them.
absl::StatusOr<NgramIndex> BuildNgramIndex(const std::string& store_path, const NgramBuildOptions& opts,
                                           int64_t* docs_used = nullptr);

// The drafter. Propose: the most frequent continuation, greedily (a chain). ProposeTree: the
// top-`branch` continuations per node as a tree of up to `max_nodes` tokens, so the target
// can check several likely futures in one forward. Deterministic: probs undefined.
class NgramDrafter : public Drafter {
 public:
  struct Options {
    int64_t max_ngram = 16, min_ngram = 2;
    int64_t branch = 4;      // children per tree node
    int64_t max_nodes = 16;  // tree size
  };
  NgramDrafter(std::shared_ptr<const NgramIndex> index, Options opts);
  std::string name() const override { return "ngram"; }
  absl::Status Begin(const std::vector<int64_t>& prompt) override { return absl::OkStatus(); }
  Draft Propose(const DraftRequest& req) override;
  Draft ProposeTree(const DraftRequest& req) override;

 private:
  std::shared_ptr<const NgramIndex> index_;
  Options opts_;
};

}  // namespace augur
