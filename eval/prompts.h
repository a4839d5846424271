// Evaluation prompts: a JSONL file with a "prompt" (text, encoded with the target's
// tokenizer, BOS first when the tokenizer adds one) or "messages" field per line (a chat,
// rendered with the target's chat template; core/chat_prompt.h), and optionally a "kind"
// (code, chat, rework: reports group figures by it), or a slice of a token store (the first
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
  std::string kind;           // the JSONL line's "kind" ("" when absent or from a store)
};

struct PromptOptions {
  int64_t num_prompts = 0;    // 0 = all
  int64_t prompt_len = 64;    // token stores: tokens per prompt (documents shorter are skipped)
  std::string split = "valid";
  std::string chat_template;  // --chat-template NAME; "" = the target's tokenizer_config.json
};

// `tokenizer` may be null for a token store (then the store's vocabulary is not checked
// against a tokenizer); JSONL needs one.
absl::StatusOr<std::vector<EvalPrompt>> LoadPrompts(const std::string& path, const Tokenizer* tokenizer,
                                                    const PromptOptions& opts);

}  // namespace augur
