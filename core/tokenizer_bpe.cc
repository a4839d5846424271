// The byte-level BPE backend of Tokenizer: core/bpe_tokenizer.h behind the Tokenizer::Backend
// interface, with the special tokens that tokenizer_config.json names.
#include <nlohmann/json.hpp>

#include "core/bpe_tokenizer.h"
#include "core/fs.h"
#include "core/tokenizer_backend.h"

namespace augur {
namespace {

class BpeBackend final : public Tokenizer::Backend {
 public:
  BpeTokenizer bpe;

  TokenizerKind kind() const override { return TokenizerKind::kBpe; }
  std::vector<int32_t> Encode(std::string_view text) const override { return bpe.Encode(text); }
  absl::StatusOr<std::string> Decode(const std::vector<int32_t>& ids) const override { return bpe.Decode(ids); }
  int32_t vocab_size() const override { return bpe.vocab_size(); }
  std::string IdToPiece(int32_t id) const override { return bpe.IdToToken(id); }
  int32_t PieceToId(const std::string& piece) const override {
    const int32_t id = bpe.TokenToId(piece);
    return id >= 0 ? id : unk_id;
  }
  bool IsControl(int32_t id) const override { return bpe.IsSpecial(id); }
};

// A special token named by tokenizer_config.json: a string, or an AddedToken object with
// "content". Absent or null keeps `fallback`; a name the vocabulary lacks is an error.
absl::StatusOr<int32_t> NamedToken(const BpeTokenizer& bpe, const nlohmann::json& config, const char* key,
                                   int32_t fallback, const std::string& source) {
  if (!config.is_object() || !config.contains(key) || config[key].is_null()) return fallback;
  const nlohmann::json& v = config[key];
  std::string text;
  if (v.is_string()) text = v.get<std::string>();
  else if (v.is_object() && v.contains("content") && v["content"].is_string()) text = v["content"].get<std::string>();
  else
    return absl::InvalidArgumentError(absl::StrCat("tokenizer: ", source, ": tokenizer_config.json '", key,
                                                   "' is neither a string nor a token object"));
  const int32_t id = bpe.TokenToId(text);
  if (id < 0)
    return absl::InvalidArgumentError(absl::StrCat("tokenizer: ", source, ": tokenizer_config.json names ", key, " '",
                                                   text, "', which is not in the vocabulary"));
  return id;
}

}  // namespace

absl::StatusOr<std::shared_ptr<const Tokenizer::Backend>> MakeBpeBackend(const std::string& json_text,
                                                                         const nlohmann::json& config,
                                                                         const std::string& source) {
  auto impl = std::make_shared<BpeBackend>();
  AUGUR_ASSIGN_OR_RETURN(impl->bpe, BpeTokenizer::FromTokenizerJson(json_text, source));
  const BpeTokenizer& bpe = impl->bpe;
  impl->serialized = json_text;
  impl->fingerprint = bpe.fingerprint();
  impl->source = source;
  AUGUR_ASSIGN_OR_RETURN(impl->bos_id, NamedToken(bpe, config, "bos_token", bpe.bos_id(), source));
  AUGUR_ASSIGN_OR_RETURN(impl->eos_id, NamedToken(bpe, config, "eos_token", bpe.eos_id(), source));
  AUGUR_ASSIGN_OR_RETURN(impl->pad_id, NamedToken(bpe, config, "pad_token", bpe.pad_id(), source));
  AUGUR_ASSIGN_OR_RETURN(impl->unk_id, NamedToken(bpe, config, "unk_token", bpe.unk_id(), source));
  const int32_t mask = bpe.TokenToId(kMaskPiece);
  impl->mask_id = mask >= 0 && bpe.IsSpecial(mask) ? mask : -1;
  impl->add_bos = bpe.add_bos();
  if (config.is_object() && config.contains("add_bos_token") && config["add_bos_token"].is_boolean())
    impl->add_bos = config["add_bos_token"].get<bool>();
  if (impl->add_bos && impl->bos_id < 0)
    return absl::InvalidArgumentError(
        absl::StrCat("tokenizer: ", source, ": adds a BOS token but names none (bos_token in tokenizer_config.json)"));
  impl->verbatim = true;  // byte-level: every byte sequence of valid UTF-8 round-trips
  return std::shared_ptr<const Tokenizer::Backend>(std::move(impl));
}

}  // namespace augur
