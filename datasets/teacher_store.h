// The HDF5 teacher store (docs/FORMATS.md, "Teacher store"): sequences scored by a target
// model for distillation. Per sequence: its tokens (prompt + continuation) and the prompt
// length; per position i of a sequence, the target's distribution over token i+1 given
// tokens [0, i], kept as its top-k ids (int32) and log-probs (float16) plus the log of the
// mass outside the top k (float32). Attributes: target fingerprint, tokenizer fingerprint,
// vocab size, k, temperature, mode (greedy | sample | teacher-forced), source, created_by.
//
// Shapes: S sequences, N positions in all (the sum of the sequence lengths), K top-k.
//
// Writing is resumable and never leaves an unreadable file at the output path: see
// TeacherStoreWriter.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"

namespace augur {

inline constexpr char kTeacherStoreFormat[] = "augur-teacher-store";
inline constexpr int64_t kTeacherStoreVersion = 1;

struct TeacherStoreInfo {
  int64_t format_version = kTeacherStoreVersion;
  std::string target_fingerprint;     // core/checkpoint fingerprint of the target
  std::string tokenizer_fingerprint;
  int64_t vocab_size = 0;
  int64_t top_k = 0;
  double temperature = 1.0;           // log-probs are of softmax(logits / temperature)
  std::string mode;                   // "greedy" | "sample" | "teacher-forced"
  std::string source;                 // where the prompts came from
  std::string created_by;             // augur version and command line
  int64_t num_sequences = 0;          // filled by the writer
  int64_t num_positions = 0;
};

// One scored sequence. Row i of the per-position arrays is the distribution of token i+1.
struct TeacherSequence {
  int64_t prompt_index = -1;            // which prompt of the source produced it
  int64_t prompt_len = 0;
  std::vector<int32_t> tokens;          // L
  std::vector<int32_t> topk_ids;        // L * K, row-major
  std::vector<float> topk_logprobs;     // L * K (stored as float16)
  std::vector<float> rest_logmass;      // L: log(1 - sum of the top-k probabilities)
  int64_t length() const { return static_cast<int64_t>(tokens.size()); }
};

class TeacherStore {
 public:
  // Opens and validates (one-line errors: missing, not HDF5, not a teacher store, version,
  // inconsistent shapes).
  static absl::StatusOr<std::shared_ptr<const TeacherStore>> Open(const std::string& path);

  const std::string& path() const { return path_; }
  const TeacherStoreInfo& info() const { return info_; }
  int64_t num_sequences() const { return info_.num_sequences; }
  int64_t sequence_length(int64_t s) const;
  absl::StatusOr<TeacherSequence> Read(int64_t s) const;

  // Thread-safe reads; implementation detail below.
  ~TeacherStore();
  struct Impl;

 private:
  TeacherStore() = default;
  std::string path_;
  TeacherStoreInfo info_;
  std::unique_ptr<Impl> impl_;
};

// Appends sequences. Create() starts a new store; Resume() continues an interrupted one
// (same path and the same info fields, else an error naming the mismatch) and reports which
// prompts are already done. Finish() makes the complete file appear at `path` atomically.
class TeacherStoreWriter {
 public:
  static absl::StatusOr<std::unique_ptr<TeacherStoreWriter>> Create(const std::string& path,
                                                                    const TeacherStoreInfo& info);
  static absl::StatusOr<std::unique_ptr<TeacherStoreWriter>> Resume(const std::string& path,
                                                                    const TeacherStoreInfo& info);
  ~TeacherStoreWriter();

  // Prompt indices already written (by this run or a resumed one).
  const std::vector<int64_t>& done_prompts() const;
  absl::Status Add(const TeacherSequence& seq);
  // Makes what was added so far durable (a later Resume starts from here).
  absl::Status Flush();
  absl::Status Finish();
  struct Impl;

 private:
  TeacherStoreWriter() = default;
  std::unique_ptr<Impl> impl_;
};

}  // namespace augur
