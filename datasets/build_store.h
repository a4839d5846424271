// Corpus + tokenizer -> token store: streams documents through the tokenizer (each stored
// as BOS + ids + EOS), assigns the split by hash, and writes the store atomically.
// Documents are encoded in bounded batches by several threads and written in corpus order,
// so the store does not depend on the thread count.
#pragma once

#include <cstdint>
#include <string>

#include "core/status.h"
#include "datasets/corpus.h"

namespace augur {

class Tokenizer;

struct BuildStoreOptions {
  double valid_fraction = 0.05;
  bool progress = true;
  int num_threads = 0;  // encoder threads; 0 = all cores
  std::string created_by;  // version + command line, stored as an attribute
};

struct BuildStoreSummary {
  int64_t docs = 0, tokens = 0, bytes = 0;
  int64_t split_docs[2] = {0, 0}, split_tokens[2] = {0, 0};  // indexed by Split
  double seconds = 0;
};

absl::StatusOr<BuildStoreSummary> BuildTokenStore(const Corpus& corpus, const Tokenizer& tokenizer,
                                                  const std::string& out_path,
                                                  const BuildStoreOptions& options);

}  // namespace augur
