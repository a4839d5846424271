// The SentencePiece vocabulary as GGUF's tokenizer.ggml.* metadata (llama.cpp's "llama"
// tokenizer model, which is SentencePiece's): every piece in id order with its score and
// type, the special ids, and the normalizer flags llama.cpp needs to encode alike.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/tokenizer.h"

namespace augur::gguf {

// llama_token_type / SentencePiece's ModelProto.SentencePiece.Type (the same numbers).
enum TokenType : int32_t {
  kTokenNormal = 1, kTokenUnknown = 2, kTokenControl = 3, kTokenUserDefined = 4,
  kTokenUnused = 5, kTokenByte = 6,
};

struct SpmVocab {
  std::vector<std::string> tokens;  // pieces, "▁" for spaces as SentencePiece stores them
  std::vector<float> scores;
  std::vector<int32_t> types;
  int32_t unk_id = -1, bos_id = -1, eos_id = -1, pad_id = -1;
  bool add_space_prefix = true;          // NormalizerSpec.add_dummy_prefix
  bool remove_extra_whitespaces = true;  // NormalizerSpec.remove_extra_whitespaces
};

// Reads pieces, scores and types from the tokenizer's serialized ModelProto and checks them
// against the loaded processor (same count and pieces). When `vocab_size` is larger than
// the tokenizer (a model with a padded embedding), the extra ids become "[PAD<id>]" unused
// tokens with score -1000, as llama.cpp's converter writes them; a smaller one is an error.
absl::StatusOr<SpmVocab> ReadSpmVocab(const Tokenizer& tokenizer, int64_t vocab_size);

}  // namespace augur::gguf

namespace augur::gguf {

// A byte-level BPE tokenizer (tokenizer.json) as GGUF's tokenizer.ggml.* metadata in
// llama.cpp's "gpt2" model: tokens as stored, merges in rank order, token types (special = 3
// control, else 1 normal), special ids, add_bos, the pre-tokenizer name and the chat template.
struct BpeExportVocab {
  std::vector<std::string> tokens, merges;
  std::vector<int32_t> types;
  int32_t unk_id = -1, bos_id = -1, eos_id = -1, pad_id = -1;
  bool add_bos = false;
  std::string pre;            // tokenizer.ggml.pre
  std::string chat_template;  // "" = none
};

// `model_dir` is the checkpoint (its augur.json names the pre-tokenizer of an imported GGUF,
// its tokenizer_config.json holds the chat template). A tokenizer.json whose llama.cpp
// pre-tokenizer cannot be told (not imported from GGUF, not plain GPT-2 ByteLevel) is refused.
absl::StatusOr<BpeExportVocab> ReadBpeVocab(const Tokenizer& tokenizer, const std::string& model_dir,
                                            int64_t vocab_size);

}  // namespace augur::gguf
