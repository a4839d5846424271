// SentencePiece tokenizer: load, encode, decode. A tokenizer is identified by the
// Fingerprint of its serialized model proto; token stores, teacher stores and checkpoints
// record that fingerprint and refuse to mix with another tokenizer.
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

inline constexpr char kTokenizerFile[] = "tokenizer.model";
inline constexpr char kPadPiece[] = "<pad>";
inline constexpr char kMaskPiece[] = "<mask>";

class Tokenizer {
 public:
  Tokenizer() = default;  // empty; use Load

  // `path` is a directory holding tokenizer.model, or the .model file itself.
  static absl::StatusOr<Tokenizer> Load(const std::string& path);
  // From the bytes of a .model file; `name` is used in messages.
  static absl::StatusOr<Tokenizer> FromSerialized(const std::string& serialized,
                                                  const std::string& name);

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

  const std::string& fingerprint() const;
  const std::string& serialized() const;  // the .model bytes (the serialized proto)
  const std::string& source() const;      // where it was loaded from

 private:
  struct Impl;
  std::shared_ptr<const Impl> impl_;
};

// tokenizer_config.json for transformers: with it next to tokenizer.model,
// AutoTokenizer.from_pretrained(DIR) gives a LlamaTokenizer that encodes to the same ids
// (add_prefix_space=false keeps it from inserting a leading "▁").
nlohmann::json HfTokenizerConfig(const Tokenizer& tokenizer);

}  // namespace augur
