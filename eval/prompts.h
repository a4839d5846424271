// Evaluation prompts: a JSONL file with a "prompt" field per line (text, encoded with the
// target's tokenizer, BOS first as in training), or a slice of a token store (the first
// prompt_len tokens of documents of one split, documents spread evenly over the split).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace augur {

class Tokenizer;

struct EvalPrompt {
  std::string source;         // "prompts.jsonl:3" or "corpus.h5:valid doc 12 (json/decoder.py)"
  std::vector<int64_t> ids;   // token ids, at least one
};

struct PromptOptions {
  int64_t num_prompts = 0;    // 0 = all
  int64_t prompt_len = 64;    // token stores: tokens per prompt (documents shorter are skipped)
  std::string split = "valid";
};

// `tokenizer` may be null for a token store (then the store's vocabulary is not checked
// against a tokenizer); JSONL needs one.
absl::StatusOr<std::vector<EvalPrompt>> LoadPrompts(const std::string& path, const Tokenizer* tokenizer,
                                                    const PromptOptions& opts);

}  // namespace augur
