// The HDF5 teacher store (docs/FORMATS.md, "Teacher store"): sequences scored by a target
// model for distillation. Per sequence: its tokens (prompt + continuation) and the prompt
// length; per position i of a sequence, the target's distribution over token i+1 given
// tokens [0, i], kept as its top-k ids (int32) and log-probs (float16) plus the log of the
// mass outside the top k (float32). Attributes: target fingerprint, tokenizer fingerprint,
// vocab size, k, temperature, mode (greedy | sample | teacher-forced), generation settings,
// source, created_by.
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
// Buffered positions after which TeacherStoreWriter::Add writes a segment by itself.
inline constexpr int64_t kTeacherSegmentPositions = int64_t{1} << 16;
// The segment directory of a store being written: "<path>.parts".
std::string TeacherPartsDir(const std::string& path);

struct TeacherStoreInfo {
  int64_t format_version = kTeacherStoreVersion;
  std::string target_fingerprint;     // core/checkpoint fingerprint of the target
  std::string tokenizer_fingerprint;
  int64_t vocab_size = 0;
  int64_t top_k = 0;
  double temperature = 1.0;           // log-probs are of softmax(logits / temperature)
  std::string mode;                   // "greedy" | "sample" | "teacher-forced"
  std::string generation;             // generation settings ("max-new 64 temperature 0.8 seed 0")
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
  int64_t num_positions() const { return info_.num_positions; }
  // Per-sequence index data, loaded at open (no file access). s in [0, num_sequences).
  int64_t sequence_length(int64_t s) const;
  int64_t sequence_offset(int64_t s) const;  // row of its first position in /tokens
  int64_t prompt_len(int64_t s) const;
  int64_t prompt_index(int64_t s) const;
  // One sequence, log-probs converted from float16 to float.
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

// Identity of a store's contents (its defining attributes and counts), recorded as the data
// fingerprint of runs trained on it so that a resume on a different store is refused.
std::string TeacherStoreFingerprint(const TeacherStore& store);


// Appends sequences. Create() starts a new store (an existing `path` or `path`.parts is an
// error); Resume() continues an interrupted one, or extends a finished one, when the
// fields that define the data (fingerprints, vocab size, k, temperature, mode, source)
// match, else an error naming the mismatch; it reports which prompts are already done.
//
// Durability: Add() buffers; Flush() writes what is buffered as one complete, fsynced HDF5
// segment `path`.parts/part-NNNNNN.h5 (temp name + rename), so a kill loses at most the
// unflushed sequences. Finish() merges the finished store at `path` (if any) and the
// segments into a temp file, renames it onto `path` and removes the .parts directory.
// A writer destroyed without Finish() leaves its flushed segments for Resume() and drops
// what was not flushed (as a kill would). A prompt index is written at most once.
class TeacherStoreWriter {
 public:
  static absl::StatusOr<std::unique_ptr<TeacherStoreWriter>> Create(const std::string& path,
                                                                    const TeacherStoreInfo& info);
  static absl::StatusOr<std::unique_ptr<TeacherStoreWriter>> Resume(const std::string& path,
                                                                    const TeacherStoreInfo& info);
  ~TeacherStoreWriter();

  // Prompt indices already written (by this run or a resumed one), in write order.
  const std::vector<int64_t>& done_prompts() const;
  bool is_done(int64_t prompt_index) const;
  // Validates shapes, ids and prompt_len, and refuses a prompt index already written.
  // Flushes by itself when the buffer passes kTeacherSegmentPositions.
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
