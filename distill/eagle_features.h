// The target's side of EAGLE distillation (augur distill eagle): for a position of a teacher
// sequence, the target's hidden states at the head's three layers (the head's input) and the
// target's next-token distribution there (the label), both with the whole sequence before it
// as context, as the target sees it when it serves.
//
// Two sources give the same rows:
//  - online: a no-grad target forward over each window's prefix (TargetFeatures);
//  - a feature cache (--cache-features FILE.h5), written once by one forward per teacher
//    sequence and read back by row ranges, for small runs that repeat the same sequences
//    many times. It keeps the hidden states in float16 and the distribution as its top k
//    (ids and log-probs), so it is smaller but not bit-equal to online (docs/FORMATS.md,
//    "EAGLE feature cache").
//
// A cache records what it was made from (target fingerprint, a hash of the teacher store's
// tokens, the layers, k) and is refused, in one line, for any other run.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "datasets/teacher_store.h"

namespace augur {
class LlamaModelImpl;
}

namespace augur::distill {

inline constexpr char kEagleFeaturesFormat[] = "augur-eagle-features";
inline constexpr int64_t kEagleFeaturesVersion = 1;

// What a cache is made from; every field must match to reuse one.
struct FeatureCacheKey {
  std::string target_fingerprint;
  std::string teacher_hash;  // TeacherTokensHash of the store
  std::vector<int64_t> layers;
  int64_t hidden = 0;  // the target's hidden size (taps are 3 * hidden wide)
  int64_t vocab = 0;
  int64_t top_k = 32;
};

// A hash of every sequence's tokens and prompt length (the content, not only the counts).
absl::StatusOr<std::string> TeacherTokensHash(const TeacherStore& store);

// Rows [begin, begin + count) of one sequence.
struct FeatureRows {
  at::Tensor taps;       // float32 [count, 3 * hidden]
  at::Tensor topk_ids;   // int64 [count, k], target ids, most likely first
  at::Tensor topk_logp;  // float32 [count, k]
  at::Tensor greedy;     // int64 [count]: the argmax over the whole vocabulary
};

class FeatureCache {
 public:
  // Opens `path` when it exists (refusing a cache made from anything else than `key`, or a
  // malformed one, with a one-line error naming the file), else writes it: one target forward
  // per teacher sequence, to a temporary name renamed into place at the end.
  static absl::StatusOr<std::unique_ptr<FeatureCache>> OpenOrBuild(const std::string& path, const FeatureCacheKey& key,
                                                                   const TeacherStore& store, LlamaModelImpl& target,
                                                                   bool progress);
  static absl::StatusOr<std::unique_ptr<FeatureCache>> Open(const std::string& path, const FeatureCacheKey& key,
                                                            const TeacherStore& store);
  ~FeatureCache();

  const std::string& path() const { return path_; }
  int64_t top_k() const { return key_.top_k; }
  // Rows of sequence `s` (in the teacher store's numbering); bounds checked.
  absl::StatusOr<FeatureRows> Read(int64_t s, int64_t begin, int64_t count) const;

  struct Impl;

 private:
  FeatureCache() = default;
  std::string path_;
  FeatureCacheKey key_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace augur::distill
