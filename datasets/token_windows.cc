#include "datasets/token_windows.h"

#include <torch/torch.h>

#include <absl/strings/str_cat.h>

#include <algorithm>

#include "core/hash.h"

namespace augur {
namespace {

uint64_t Mix(uint64_t x) { return SplitMix64(x); }

// Uniform in [0, n) from 64 random bits (multiply-high: no modulo bias worth the name).
int64_t Uniform(uint64_t bits, int64_t n) {
  return static_cast<int64_t>((static_cast<unsigned __int128>(bits) * static_cast<uint64_t>(n)) >> 64);
}

absl::Status CheckWindow(const SplitStream& s, int64_t seq_len) {
  if (seq_len <= 0) return absl::InvalidArgumentError(absl::StrCat("seq_len must be positive, got ", seq_len));
  if (s.size() < seq_len + 1) {
    return absl::FailedPreconditionError(absl::StrCat(
        "token store: ", s.store().path(), ": the ", SplitName(s.split()), " split has ", s.size(),
        " tokens, fewer than seq_len+1 = ", seq_len + 1));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<SplitStream> SplitStream::Create(std::shared_ptr<const TokenStore> store, Split split,
                                                const SplitStreamOptions& options) {
  SplitStream s;
  s.store_ = std::move(store);
  s.split_ = split;
  const auto& docs = s.store_->split_docs(split);
  s.cum_.resize(docs.size() + 1, 0);
  for (size_t k = 0; k < docs.size(); ++k) s.cum_[k + 1] = s.cum_[k] + s.store_->doc_length(docs[k]);
  if (s.size() > 0 && s.size() <= options.max_memory_tokens) {
    // Read runs of consecutive documents with one hyperslab each.
    std::vector<int32_t> memory(static_cast<size_t>(s.size()));
    const auto& off = s.store_->doc_offsets();
    size_t k = 0;
    while (k < docs.size()) {
      size_t j = k + 1;
      while (j < docs.size() && docs[j] == docs[j - 1] + 1) ++j;
      int64_t begin = off[docs[k]], end = off[docs[j - 1] + 1];
      AUGUR_RETURN_IF_ERROR(s.store_->ReadTokens(begin, end - begin, memory.data() + s.cum_[k]));
      k = j;
    }
    s.memory_ = std::move(memory);
  }
  return s;
}

absl::Status SplitStream::ReadLinear(int64_t pos, int64_t count, int64_t* out) const {
  if (in_memory()) {
    std::copy(memory_.begin() + pos, memory_.begin() + pos + count, out);
    return absl::OkStatus();
  }
  const auto& docs = store_->split_docs(split_);
  const auto& off = store_->doc_offsets();
  while (count > 0) {
    size_t k = static_cast<size_t>(std::upper_bound(cum_.begin(), cum_.end(), pos) - cum_.begin()) - 1;
    int64_t file_begin = off[docs[k]] + (pos - cum_[k]);
    int64_t run = cum_[k + 1] - pos;  // contiguous tokens in the file from file_begin
    while (run < count && k + 1 < docs.size() && docs[k + 1] == docs[k] + 1) {
      ++k;
      run += cum_[k + 1] - cum_[k];
    }
    int64_t take = std::min(run, count);
    AUGUR_RETURN_IF_ERROR(store_->ReadTokens(file_begin, take, out));
    out += take;
    pos += take;
    count -= take;
  }
  return absl::OkStatus();
}

absl::Status SplitStream::Read(int64_t pos, int64_t count, int64_t* out) const {
  const int64_t n = size();
  if (n == 0) return absl::FailedPreconditionError(absl::StrCat("token store: ", store_->path(), ": the ", SplitName(split_), " split is empty"));
  pos %= n;
  while (count > 0) {
    int64_t take = std::min(count, n - pos);
    AUGUR_RETURN_IF_ERROR(ReadLinear(pos, take, out));
    out += take;
    count -= take;
    pos = 0;
  }
  return absl::OkStatus();
}

absl::StatusOr<WindowSampler> WindowSampler::Create(std::shared_ptr<const TokenStore> store, Split split,
                                                    uint64_t seed, const SplitStreamOptions& options) {
  WindowSampler w;
  AUGUR_ASSIGN_OR_RETURN(w.stream_, SplitStream::Create(std::move(store), split, options));
  if (w.stream_.size() == 0) {
    return absl::FailedPreconditionError(absl::StrCat("token store: ", w.stream_.store().path(), ": the ",
                                                      SplitName(split), " split is empty"));
  }
  w.seed_ = seed;
  return w;
}

int64_t WindowSampler::WindowStart(int64_t index, int64_t row) const {
  uint64_t batch_key = Mix(Mix(seed_) ^ static_cast<uint64_t>(index));
  uint64_t bits = Mix(batch_key ^ (static_cast<uint64_t>(row) * 0xd1b54a32d192ed03ULL));
  return Uniform(bits, stream_.size());
}

absl::StatusOr<at::Tensor> WindowSampler::Batch(int64_t index, int64_t batch, int64_t seq_len) const {
  AUGUR_RETURN_IF_ERROR(CheckWindow(stream_, seq_len));
  if (batch <= 0) return absl::InvalidArgumentError(absl::StrCat("batch must be positive, got ", batch));
  at::Tensor out = torch::empty({batch, seq_len + 1}, torch::kLong);
  int64_t* data = out.data_ptr<int64_t>();
  for (int64_t b = 0; b < batch; ++b) {
    AUGUR_RETURN_IF_ERROR(stream_.Read(WindowStart(index, b), seq_len + 1, data + b * (seq_len + 1)));
  }
  return out;
}

absl::StatusOr<SequentialReader> SequentialReader::Create(std::shared_ptr<const TokenStore> store, Split split,
                                                          int64_t seq_len, const SplitStreamOptions& options) {
  SequentialReader r;
  AUGUR_ASSIGN_OR_RETURN(r.stream_, SplitStream::Create(std::move(store), split, options));
  AUGUR_RETURN_IF_ERROR(CheckWindow(r.stream_, seq_len));
  r.seq_len_ = seq_len;
  return r;
}

int64_t SequentialReader::num_windows() const { return (stream_.size() - 1) / seq_len_; }

absl::StatusOr<at::Tensor> SequentialReader::Batch(int64_t first, int64_t batch) const {
  const int64_t n = num_windows();
  if (first < 0 || first >= n || batch <= 0) {
    return absl::OutOfRangeError(absl::StrCat("token store: ", stream_.store().path(), ": windows [", first, ", ",
                                              first + batch, ") outside [0, ", n, ")"));
  }
  const int64_t rows = std::min(batch, n - first);
  at::Tensor out = torch::empty({rows, seq_len_ + 1}, torch::kLong);
  int64_t* data = out.data_ptr<int64_t>();
  for (int64_t b = 0; b < rows; ++b) {
    AUGUR_RETURN_IF_ERROR(stream_.Read((first + b) * seq_len_, seq_len_ + 1, data + b * (seq_len_ + 1)));
  }
  return out;
}

}  // namespace augur
