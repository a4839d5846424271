// Tokenizers: one class, two backends. SentencePiece (tokenizer.model: augur's own
// tokenizers and Llama-2-style checkpoints) and byte-level BPE (tokenizer.json: GPT-2,
// Llama-3, Qwen2, SmolLM; core/bpe_tokenizer.h). A tokenizer is identified by the
// Fingerprint of its serialized file; token stores, teacher stores and checkpoints record
// that fingerprint and refuse to mix with another tokenizer.
//
// augur's own tokenizers (`augur data tokenizer`) keep text verbatim: identity
// normalization, no dummy prefix, whitespace kept, byte fallback. For those,
// Decode(Encode(x)) == x for any valid UTF-8 x. SentencePiece writes a space as U+2581
// ("▁") inside pieces, so a literal U+2581 in the text would decode as a space; Encode
// emits it as its three byte-fallback tokens instead, which decode back to U+2581.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace augur {

inline constexpr char kTokenizerFile[] = "tokenizer.model";      // SentencePiece
inline constexpr char kTokenizerJsonFile[] = "tokenizer.json";   // Hugging Face (BPE)
inline constexpr char kPadPiece[] = "<pad>";
inline constexpr char kMaskPiece[] = "<mask>";

enum class TokenizerKind { kSentencePiece, kBpe };

class Tokenizer {
 public:
  Tokenizer() = default;  // empty; use Load

  // `path` is a directory holding tokenizer.model or tokenizer.json (tokenizer.model wins
  // when both are there), or one of those files. Beside a tokenizer.json, the special
  // tokens (bos/eos/pad) come from tokenizer_config.json when it names them.
  static absl::StatusOr<Tokenizer> Load(const std::string& path);
  // From the bytes of a .model file or a tokenizer.json text (told apart by the first
  // byte: a JSON object starts with '{', a protobuf never does); `name` is for messages.
  static absl::StatusOr<Tokenizer> FromSerialized(const std::string& serialized,
                                                  const std::string& name);

  TokenizerKind kind() const;
  std::string kind_name() const;  // "sentencepiece" | "bpe"
  // The file name this tokenizer is stored under in a checkpoint directory.
  const char* file_name() const;

  bool loaded() const { return impl_ != nullptr; }
  std::vector<int32_t> Encode(std::string_view text) const;
  // Fails on an id outside [0, vocab_size).
  absl::StatusOr<std::string> Decode(const std::vector<int32_t>& ids) const;
  absl::StatusOr<std::string> Decode(const int32_t* ids, size_t n) const;

  int32_t vocab_size() const;
  int32_t unk_id() const;
  int32_t bos_id() const;   // -1 if the model has none
  int32_t eos_id() const;   // -1 if the model has none
  int32_t pad_id() const;   // the "<pad>" control piece, -1 if absent
  int32_t mask_id() const;  // the "<mask>" control piece, -1 if absent
  std::string IdToPiece(int32_t id) const;
  int32_t PieceToId(const std::string& piece) const;  // unk_id() when absent
  bool IsControl(int32_t id) const;
  // True when the model keeps text verbatim (no dummy prefix, no whitespace folding).
  bool verbatim() const;
  // Whether a model trained with this tokenizer expects BOS in front of a prompt.
  bool add_bos() const;

  const std::string& fingerprint() const;
  const std::string& serialized() const;  // the file's bytes (.model proto or tokenizer.json)
  const std::string& source() const;      // where it was loaded from

  struct Backend;  // one per kind, in tokenizer.cc / tokenizer_bpe.cc

 private:
  std::shared_ptr<const Backend> impl_;
};

// Whether a drafter whose tokenizer is `drafter` can draft for a target with `target`, checked
// as llama.cpp's speculative decoding checks a draft model: the same kind, the same BOS/EOS
// (and whether BOS is added), vocabulary sizes within kMaxDraftVocabDifference, and identical
// token text for every id both have from kDraftVocabCheckStart on. A mismatch is one line
// naming both sides.
inline constexpr int32_t kMaxDraftVocabDifference = 128;
inline constexpr int32_t kDraftVocabCheckStart = 5;
absl::Status CheckDraftTokenizer(const Tokenizer& target, const Tokenizer& drafter, const std::string& target_name,
                                 const std::string& drafter_name);

// The tokenizer file in a checkpoint directory: tokenizer.model, else tokenizer.json, else "".
std::string FindTokenizerFile(const std::string& dir);
// Copies a tokenizer file (tokenizer.model or tokenizer.json, under its own name) into `dir`,
// with the files that travel with it when they sit beside it: tokenizer_config.json (chat
// template, special tokens), special_tokens_map.json, generation_config.json and
// chat_template.jinja. Without a
// tokenizer_config.json beside it, one is made (HfTokenizerConfig). Every file is written
// atomically.
absl::Status CopyTokenizerFiles(const std::string& tokenizer_file, const std::string& dir);

// tokenizer_config.json for transformers. SentencePiece: with it next to tokenizer.model,
// AutoTokenizer.from_pretrained(DIR) gives a LlamaTokenizer that encodes to the same ids
// (add_prefix_space=false keeps it from inserting a leading "▁"). BPE: a
// PreTrainedTokenizerFast over tokenizer.json with the special tokens named.
nlohmann::json HfTokenizerConfig(const Tokenizer& tokenizer);

}  // namespace augur
