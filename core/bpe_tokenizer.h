// Byte-level BPE tokenizer (GPT-2 family: GPT-2, Llama 3, Qwen2, SmolLM, StarCoder), exact to
// Hugging Face `tokenizers` on a tokenizer.json and to llama.cpp on a GGUF vocabulary. Torch-free.
//
// Encode = special/added tokens split out first, then per remaining fragment: UTF-8 repair
// (below), optional NFC, pre-tokenizer regex splits (PCRE2), GPT-2 byte-to-char mapping, and
// rank-ordered BPE merges per pre-token ("word"). Encode never adds BOS/EOS; add_bos() says
// whether the model's post-processor would, and the caller decides.
//
// Invalid UTF-8 in Encode's input (Hugging Face never sees it: Rust's &str is valid by type)
// follows llama.cpp: a byte that does not start a complete sequence becomes U+FFFD and the
// decoder moves on one byte; an overlong form decodes to its code point (re-encoded canonically);
// an encoded surrogate (ED A0 80..ED BF BF) stays as its three bytes, a piece of its own. A
// 4-byte form above U+10FFFF, on which llama.cpp throws, becomes U+FFFD. PCRE2 runs with
// PCRE2_MATCH_INVALID_UTF, so the surrogate bytes are never matched and never undefined
// behaviour. Decode(Encode(x)) == x for valid UTF-8 x.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace augur {

// The tokenizer part of a GGUF file (the tokenizer.ggml.* keys), as the GGUF reader hands it over.
struct GgufBpeVocab {
  std::string model;  // tokenizer.ggml.model, must be "gpt2"
  std::string pre;    // tokenizer.ggml.pre: chooses the pre-tokenizer (llama.cpp's table)
  std::vector<std::string> tokens;
  std::vector<std::string> merges;     // "left right"
  std::vector<int32_t> token_types;    // 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte
  int32_t bos_id = -1, eos_id = -1, pad_id = -1, unk_id = -1;
  bool add_bos = false;
};

class BpeTokenizer {
 public:
  BpeTokenizer() = default;  // empty; use a factory

  // A Hugging Face tokenizer.json (its text); `source` names it in messages.
  static absl::StatusOr<BpeTokenizer> FromTokenizerJson(const std::string& json_text,
                                                        const std::string& source);
  static absl::StatusOr<BpeTokenizer> FromGgufVocab(const GgufBpeVocab& v,
                                                    const std::string& source);

  bool loaded() const { return impl_ != nullptr; }
  std::vector<int32_t> Encode(std::string_view text) const;
  // Fails on an id outside [0, vocab_size). Special tokens decode to their text.
  absl::StatusOr<std::string> Decode(const int32_t* ids, size_t n) const;
  absl::StatusOr<std::string> Decode(const std::vector<int32_t>& ids) const {
    return Decode(ids.data(), ids.size());
  }

  int32_t vocab_size() const;
  int32_t bos_id() const;  // -1 when none
  int32_t eos_id() const;
  int32_t pad_id() const;
  int32_t unk_id() const;
  bool add_bos() const;    // the model's post-processor adds BOS (Encode does not)
  // The token's text as stored (byte-level characters, "Ġ" for a space); "" outside the vocab.
  std::string IdToToken(int32_t id) const;
  int32_t TokenToId(const std::string& token) const;  // -1 when absent
  // True for special tokens: HF added tokens marked special; GGUF control/user-defined/unknown.
  bool IsSpecial(int32_t id) const;
  // Stable over (vocab, merges, pre-tokenizer, special tokens); hex like Fingerprint().
  const std::string& fingerprint() const;
  const std::string& source() const;

  // A tokenizer.json that Hugging Face `tokenizers` loads and that encodes valid UTF-8 to the
  // same ids as this tokenizer (a GGUF-built one carries llama.cpp's pre-tokenizer as Split
  // steps).
  std::string ToTokenizerJson() const;

  struct Impl;

 private:
  std::shared_ptr<const Impl> impl_;
};

}  // namespace augur
