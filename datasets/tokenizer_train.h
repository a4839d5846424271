// Trains augur's code tokenizer: SentencePiece BPE with byte fallback that keeps text
// verbatim (identity normalization, no dummy prefix, whitespace kept, whitespace-only
// pieces for indentation, digits split), ids unk=0 bos=1 eos=2, control pieces <pad>=3
// and <mask>=4.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "datasets/corpus.h"

namespace augur {

struct TokenizerTrainOptions {
  int vocab_size = 8192;
  // Documents in the validation split (same hash as `augur data build`) are left out.
  double valid_fraction = 0.05;
  // Text beyond this is sampled (deterministically, by chunk) down to about this size.
  int64_t max_train_bytes = int64_t{24} << 20;
  int num_threads = 2;
  double character_coverage = 0.9999;
  uint64_t seed = 0;
  bool progress = true;
  std::string command_line;  // provenance
};

struct TokenizerTrainSummary {
  std::string model_path;
  std::string fingerprint;
  int vocab_size = 0;
  int64_t docs = 0;            // training documents read
  int64_t sentences = 0;       // chunks given to SentencePiece
  int64_t bytes_seen = 0;      // training text read
  int64_t bytes_used = 0;      // after sampling
  int64_t roundtrip_checked = 0, roundtrip_failed = 0;
  double read_seconds = 0, train_seconds = 0;
};

// Writes DIR/tokenizer.model (atomically), DIR/tokenizer_config.json (for transformers)
// and DIR/augur_tokenizer.json (provenance).
absl::StatusOr<TokenizerTrainSummary> TrainTokenizer(const Corpus& corpus,
                                                     const TokenizerTrainOptions& options,
                                                     const std::string& out_dir);

// Splits a document into SentencePiece training sentences: runs of whole lines (newlines
// kept) of at most `max_bytes`; a longer line is cut at UTF-8 character boundaries.
std::vector<std::string_view> ChunkLines(std::string_view text, size_t max_bytes);

}  // namespace augur
