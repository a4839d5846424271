// Training and evaluation windows over one split of a token store.
//
// A split is read as one token stream: its documents (each BOS..EOS) concatenated in
// index order. Windows may span document boundaries within that stream but never see a
// document of the other split. Small splits are loaded into memory; larger ones are read
// by hyperslab on demand, so memory does not grow with the store.
//
// Shapes: B batch rows, T tokens of input; a window is T+1 tokens (inputs = [0, T),
// targets = [1, T+1)).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "core/status.h"
#include "datasets/token_store.h"

namespace augur {

struct SplitStreamOptions {
  // Splits with at most this many tokens are read into memory at creation.
  int64_t max_memory_tokens = int64_t{32} << 20;
};

class SplitStream {
 public:
  static absl::StatusOr<SplitStream> Create(std::shared_ptr<const TokenStore> store, Split split,
                                            const SplitStreamOptions& options = {});
  Split split() const { return split_; }
  int64_t size() const { return cum_.empty() ? 0 : cum_.back(); }
  bool in_memory() const { return !memory_.empty(); }
  const TokenStore& store() const { return *store_; }
  // Stream tokens [pos, pos+count), wrapping around the end of the stream.
  absl::Status Read(int64_t pos, int64_t count, int64_t* out) const;

 private:
  absl::Status ReadLinear(int64_t pos, int64_t count, int64_t* out) const;
  std::shared_ptr<const TokenStore> store_;
  Split split_ = Split::kTrain;
  std::vector<int64_t> cum_;     // cum_[k] = stream position of split document k's first token
  std::vector<int32_t> memory_;  // the whole stream when in memory
};

// Random windows for training. Row b of batch `index` starts at a position drawn
// uniformly over the split's tokens from a hash of (seed, index, b), so a batch is a pure
// function of (seed, index) and resuming training needs only the step number. Windows
// wrap around the end of the stream (every token is equally likely to be covered).
class WindowSampler {
 public:
  static absl::StatusOr<WindowSampler> Create(std::shared_ptr<const TokenStore> store, Split split,
                                              uint64_t seed, const SplitStreamOptions& options = {});
  // int64 [B, T+1]. Fails if the split has fewer than T+1 tokens.
  absl::StatusOr<at::Tensor> Batch(int64_t index, int64_t batch, int64_t seq_len) const;
  // The stream position where row `row` of batch `index` starts.
  int64_t WindowStart(int64_t index, int64_t row) const;
  const SplitStream& stream() const { return stream_; }

 private:
  SplitStream stream_;
  uint64_t seed_ = 0;
};

// Non-overlapping windows in order, for evaluation: window i holds stream tokens
// [i*T, i*T + T], so every token after the first is a target exactly once.
class SequentialReader {
 public:
  static absl::StatusOr<SequentialReader> Create(std::shared_ptr<const TokenStore> store, Split split,
                                                 int64_t seq_len, const SplitStreamOptions& options = {});
  int64_t num_windows() const;
  // int64 [min(B, num_windows - first), T+1].
  absl::StatusOr<at::Tensor> Batch(int64_t first, int64_t batch) const;
  // The split's documents, for prompts: store().DocumentTokens(documents()[i]).
  const std::vector<int64_t>& documents() const { return stream_.store().split_docs(stream_.split()); }
  const SplitStream& stream() const { return stream_; }
  int64_t seq_len() const { return seq_len_; }

 private:
  SplitStream stream_;
  int64_t seq_len_ = 0;
};

}  // namespace augur
