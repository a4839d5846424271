// The interface behind Tokenizer: one implementation per tokenizer kind (SentencePiece in
// tokenizer.cc, byte-level BPE in tokenizer_bpe.cc). Tokenizer checks ids before Decode and
// before the id lookups, so a backend sees only ids in [0, vocab_size).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "core/tokenizer.h"

namespace augur {

struct Tokenizer::Backend {
  virtual ~Backend() = default;
  virtual TokenizerKind kind() const = 0;
  virtual std::vector<int32_t> Encode(std::string_view text) const = 0;
  virtual absl::StatusOr<std::string> Decode(const std::vector<int32_t>& ids) const = 0;
  virtual int32_t vocab_size() const = 0;
  virtual std::string IdToPiece(int32_t id) const = 0;
  virtual int32_t PieceToId(const std::string& piece) const = 0;  // unk_id when absent
  virtual bool IsControl(int32_t id) const = 0;

  std::string serialized, fingerprint, source;
  int32_t unk_id = -1, bos_id = -1, eos_id = -1, pad_id = -1, mask_id = -1;
  bool verbatim = false;
  bool add_bos = false;
};

// The BPE backend (tokenizer_bpe.cc): `json_text` is a tokenizer.json; `config` is the
// tokenizer_config.json beside it (null when absent), which names bos/eos/pad tokens.
absl::StatusOr<std::shared_ptr<const Tokenizer::Backend>> MakeBpeBackend(
    const std::string& json_text, const nlohmann::json& config, const std::string& source);

}  // namespace augur
