#include "core/tokenizer.h"

#include "core/tokenizer_spm.h"

#include <absl/strings/str_cat.h>

#include <algorithm>
#include <array>
#include <cstdlib>

#include "core/fs.h"
#include "core/tokenizer_backend.h"

namespace augur {
namespace {

constexpr std::string_view kWhitespaceMark = "\xE2\x96\x81";  // U+2581, SentencePiece's space

std::string ByteFallbackPiece(unsigned char byte) {
  static const char* hex = "0123456789ABCDEF";
  return absl::StrCat("<0x", std::string(1, hex[byte >> 4]), std::string(1, hex[byte & 15]), ">");
}

}  // namespace

namespace {

class SpmBackend final : public Tokenizer::Backend {
 public:
  sentencepiece::SentencePieceProcessor sp;
  // Byte-fallback ids of U+2581's UTF-8 bytes, used when escaping a literal U+2581.
  bool escape_mark = false;
  std::array<int32_t, 3> mark_ids{};

  TokenizerKind kind() const override { return TokenizerKind::kSentencePiece; }
  int32_t vocab_size() const override { return sp.GetPieceSize(); }
  std::string IdToPiece(int32_t id) const override { return sp.IdToPiece(id); }
  int32_t PieceToId(const std::string& piece) const override { return sp.PieceToId(piece); }
  bool IsControl(int32_t id) const override { return sp.IsControl(id); }

  std::vector<int32_t> EncodePlain(std::string_view text) const {
    std::vector<int> ids;
    if (text.empty()) return ids;
    auto st = sp.Encode(text, &ids);
    AUGUR_CHECK(st.ok(), "sentencepiece encode: ", st.ToString());
    return ids;
  }

  std::vector<int32_t> Encode(std::string_view text) const override {
    if (!escape_mark || text.find(kWhitespaceMark) == std::string_view::npos) return EncodePlain(text);
    std::vector<int32_t> out;
    size_t pos = 0;
    while (true) {
      size_t hit = text.find(kWhitespaceMark, pos);
      std::vector<int32_t> part =
          EncodePlain(text.substr(pos, hit == std::string_view::npos ? std::string_view::npos : hit - pos));
      out.insert(out.end(), part.begin(), part.end());
      if (hit == std::string_view::npos) break;
      out.insert(out.end(), mark_ids.begin(), mark_ids.end());
      pos = hit + kWhitespaceMark.size();
    }
    return out;
  }

  absl::StatusOr<std::string> Decode(const std::vector<int32_t>& ids) const override {
    std::string text;
    auto st = sp.Decode(std::vector<int>(ids.begin(), ids.end()), &text);
    if (!st.ok()) return absl::InternalError(absl::StrCat("tokenizer: ", source, ": decode: ", st.ToString()));
    return text;
  }
};

absl::StatusOr<std::shared_ptr<const Tokenizer::Backend>> MakeSpmBackend(const std::string& serialized,
                                                                         const std::string& name) {
  auto impl = std::make_shared<SpmBackend>();
  auto st = impl->sp.LoadFromSerializedProto(serialized);
  if (!st.ok() || impl->sp.GetPieceSize() <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tokenizer: ", name, ": not a SentencePiece model (", st.ok() ? "empty" : st.ToString(), ")"));
  }
  impl->serialized = impl->sp.serialized_model_proto();
  impl->fingerprint = Fingerprint(impl->serialized);
  impl->source = name;
  impl->unk_id = impl->sp.unk_id();
  impl->bos_id = impl->sp.bos_id();
  impl->eos_id = impl->sp.eos_id();
  impl->add_bos = impl->bos_id >= 0;
  auto control_id = [&](const char* piece) {
    int id = impl->sp.PieceToId(piece);
    return impl->sp.IdToPiece(id) == piece && impl->sp.IsControl(id) ? id : -1;
  };
  impl->pad_id = impl->sp.pad_id() >= 0 ? impl->sp.pad_id() : control_id(kPadPiece);
  impl->mask_id = control_id(kMaskPiece);

  // Verbatim: no dummy "▁" in front of the first piece and whitespace survives a round trip.
  {
    std::vector<std::string> pieces;
    (void)impl->sp.Encode("a", &pieces);
    const std::string probe = "  a  b \n\n\t c  ";
    std::vector<int> ids;
    std::string back;
    (void)impl->sp.Encode(probe, &ids);
    (void)impl->sp.Decode(ids, &back);
    impl->verbatim = !pieces.empty() && pieces[0].compare(0, kWhitespaceMark.size(), kWhitespaceMark) != 0 && back == probe;
  }
  impl->escape_mark = impl->verbatim;
  for (size_t i = 0; i < 3 && impl->escape_mark; ++i) {
    std::string piece = ByteFallbackPiece(static_cast<unsigned char>(kWhitespaceMark[i]));
    int id = impl->sp.PieceToId(piece);
    if (impl->sp.IdToPiece(id) != piece || !impl->sp.IsByte(id)) impl->escape_mark = false;
    impl->mark_ids[i] = id;
  }
  return std::shared_ptr<const Tokenizer::Backend>(std::move(impl));
}

std::string DirOf(const std::string& file) {
  const size_t slash = file.find_last_of('/');
  return slash == std::string::npos ? std::string(".") : file.substr(0, slash);
}

// tokenizer_config.json beside a tokenizer file; null when absent or not an object.
absl::StatusOr<nlohmann::json> SiblingConfig(const std::string& file) {
  const std::string path = DirOf(file) + "/tokenizer_config.json";
  if (!FileExists(path)) return nlohmann::json();
  AUGUR_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    return absl::InvalidArgumentError(absl::StrCat("tokenizer: ", path, ": not a JSON object"));
  return j;
}

// A JSON object is a tokenizer.json; a SentencePiece proto never starts with '{'.
bool IsTokenizerJson(const std::string& bytes) { return !bytes.empty() && bytes[0] == '{'; }

absl::StatusOr<std::shared_ptr<const Tokenizer::Backend>> MakeBackend(const std::string& bytes,
                                                                      const nlohmann::json& config,
                                                                      const std::string& name) {
  if (IsTokenizerJson(bytes)) return MakeBpeBackend(bytes, config, name);
  return MakeSpmBackend(bytes, name);
}

}  // namespace

std::string FindTokenizerFile(const std::string& dir) {
  for (const char* name : {kTokenizerFile, kTokenizerJsonFile}) {
    std::string path = absl::StrCat(dir, "/", name);
    if (FileExists(path)) return path;
  }
  return "";
}

absl::StatusOr<Tokenizer> Tokenizer::Load(const std::string& path) {
  std::string file = path;
  if (IsDirectory(path)) {
    file = FindTokenizerFile(path);
    if (file.empty()) {
      return absl::NotFoundError(absl::StrCat("tokenizer: ", path, ": no ", kTokenizerFile, " or ", kTokenizerJsonFile,
                                              " in this directory; make one with `augur data tokenizer --out ",
                                              path, "`"));
    }
  } else if (!FileExists(path)) {
    return absl::NotFoundError(absl::StrCat("tokenizer: ", path, ": no such file or directory"));
  }
  auto bytes = ReadFile(file);
  if (!bytes.ok()) {
    return absl::Status(bytes.status().code(),
                        absl::StrCat("tokenizer: ", file, ": cannot read: ", bytes.status().message()));
  }
  // Beside a tokenizer.json, tokenizer_config.json names the special tokens.
  nlohmann::json config;
  if (IsTokenizerJson(*bytes)) {
    AUGUR_ASSIGN_OR_RETURN(config, SiblingConfig(file));
  }
  Tokenizer t;
  AUGUR_ASSIGN_OR_RETURN(t.impl_, MakeBackend(*bytes, config, file));
  return t;
}

absl::StatusOr<Tokenizer> Tokenizer::FromSerialized(const std::string& serialized,
                                                    const std::string& name) {
  Tokenizer t;
  AUGUR_ASSIGN_OR_RETURN(t.impl_, MakeBackend(serialized, nlohmann::json(), name));
  return t;
}

std::vector<int32_t> Tokenizer::Encode(std::string_view text) const {
  AUGUR_CHECK(impl_ != nullptr, "Tokenizer::Encode on an empty tokenizer");
  return impl_->Encode(text);
}

absl::StatusOr<std::string> Tokenizer::Decode(const int32_t* ids, size_t n) const {
  return Decode(std::vector<int32_t>(ids, ids + n));
}

absl::StatusOr<std::string> Tokenizer::Decode(const std::vector<int32_t>& ids) const {
  AUGUR_CHECK(impl_ != nullptr, "Tokenizer::Decode on an empty tokenizer");
  const int32_t v = vocab_size();
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= v) {
      return absl::OutOfRangeError(absl::StrCat("tokenizer: ", impl_->source, ": id ", ids[i],
                                                " at position ", i, " outside [0, ", v, ")"));
    }
  }
  return impl_->Decode(ids);
}

TokenizerKind Tokenizer::kind() const { return impl_->kind(); }
std::string Tokenizer::kind_name() const { return kind() == TokenizerKind::kBpe ? "bpe" : "sentencepiece"; }
const char* Tokenizer::file_name() const { return kind() == TokenizerKind::kBpe ? kTokenizerJsonFile : kTokenizerFile; }
int32_t Tokenizer::vocab_size() const { return impl_->vocab_size(); }
int32_t Tokenizer::unk_id() const { return impl_->unk_id; }
int32_t Tokenizer::bos_id() const { return impl_->bos_id; }
int32_t Tokenizer::eos_id() const { return impl_->eos_id; }
int32_t Tokenizer::pad_id() const { return impl_->pad_id; }
int32_t Tokenizer::mask_id() const { return impl_->mask_id; }
bool Tokenizer::verbatim() const { return impl_->verbatim; }
bool Tokenizer::add_bos() const { return impl_->add_bos; }
const std::string& Tokenizer::fingerprint() const { return impl_->fingerprint; }
const std::string& Tokenizer::serialized() const { return impl_->serialized; }
const std::string& Tokenizer::source() const { return impl_->source; }

std::string Tokenizer::IdToPiece(int32_t id) const {
  if (id < 0 || id >= vocab_size()) return "";
  return impl_->IdToPiece(id);
}

int32_t Tokenizer::PieceToId(const std::string& piece) const { return impl_->PieceToId(piece); }

bool Tokenizer::IsControl(int32_t id) const {
  return id >= 0 && id < vocab_size() && impl_->IsControl(id);
}

absl::Status CheckDraftTokenizer(const Tokenizer& target, const Tokenizer& drafter, const std::string& target_name,
                                 const std::string& drafter_name) {
  auto bad = [&](const std::string& what) {
    return absl::FailedPreconditionError(
        absl::StrCat("drafter ", drafter_name, " cannot draft for target ", target_name, ": ", what));
  };
  if (target.kind() != drafter.kind())
    return bad(absl::StrCat("tokenizer kinds differ (target ", target.kind_name(), ", drafter ", drafter.kind_name(), ")"));
  if (target.add_bos() != drafter.add_bos() || (target.add_bos() && target.bos_id() != drafter.bos_id()))
    return bad(absl::StrCat("BOS differs (target ", target.add_bos() ? absl::StrCat("adds ", target.bos_id()) : "adds none",
                            ", drafter ", drafter.add_bos() ? absl::StrCat("adds ", drafter.bos_id()) : "adds none", ")"));
  if (target.eos_id() != drafter.eos_id())
    return bad(absl::StrCat("EOS differs (target ", target.eos_id(), ", drafter ", drafter.eos_id(), ")"));
  const int32_t vt = target.vocab_size(), vd = drafter.vocab_size();
  if (std::abs(vt - vd) > kMaxDraftVocabDifference)
    return bad(absl::StrCat("vocabulary sizes differ by more than ", kMaxDraftVocabDifference, " (target ", vt,
                            ", drafter ", vd, ")"));
  for (int32_t id = kDraftVocabCheckStart; id < std::min(vt, vd); ++id)
    if (target.IdToPiece(id) != drafter.IdToPiece(id))
      return bad(absl::StrCat("token ", id, " differs (target '", target.IdToPiece(id), "', drafter '",
                              drafter.IdToPiece(id), "')"));
  return absl::OkStatus();
}

absl::Status CopyTokenizerFiles(const std::string& tokenizer_file, const std::string& dir) {
  if (!FileExists(tokenizer_file))
    return absl::NotFoundError(absl::StrCat("tokenizer: ", tokenizer_file, ": no such file"));
  AUGUR_ASSIGN_OR_RETURN(std::string bytes, ReadFile(tokenizer_file));
  // Stored under the name of its kind (a JSON object is a tokenizer.json), byte for byte.
  const bool json_file = IsTokenizerJson(bytes);
  AUGUR_RETURN_IF_ERROR(
      WriteFileAtomic(absl::StrCat(dir, "/", json_file ? kTokenizerJsonFile : kTokenizerFile), bytes));
  const std::string src_dir = DirOf(tokenizer_file);
  bool have_config = false;
  for (const char* name :
       {"tokenizer_config.json", "special_tokens_map.json", "generation_config.json", "chat_template.jinja"}) {
    const std::string src = absl::StrCat(src_dir, "/", name);
    if (!FileExists(src)) continue;
    AUGUR_ASSIGN_OR_RETURN(std::string side, ReadFile(src));
    AUGUR_RETURN_IF_ERROR(WriteFileAtomic(absl::StrCat(dir, "/", name), side));
    have_config |= std::string(name) == "tokenizer_config.json";
  }
  if (!have_config) {
    AUGUR_ASSIGN_OR_RETURN(Tokenizer tok, Tokenizer::Load(tokenizer_file));
    AUGUR_RETURN_IF_ERROR(
        WriteFileAtomic(absl::StrCat(dir, "/tokenizer_config.json"), HfTokenizerConfig(tok).dump(2) + "\n"));
  }
  return absl::OkStatus();
}

nlohmann::json HfTokenizerConfig(const Tokenizer& tokenizer) {
  if (tokenizer.kind() == TokenizerKind::kBpe) {
    nlohmann::json cfg = {
        {"tokenizer_class", "PreTrainedTokenizerFast"},
        {"add_bos_token", tokenizer.add_bos()},
        {"add_eos_token", false},
        {"clean_up_tokenization_spaces", false},
        {"model_max_length", 1000000000},
    };
    if (tokenizer.bos_id() >= 0) cfg["bos_token"] = tokenizer.IdToPiece(tokenizer.bos_id());
    if (tokenizer.eos_id() >= 0) cfg["eos_token"] = tokenizer.IdToPiece(tokenizer.eos_id());
    if (tokenizer.pad_id() >= 0) cfg["pad_token"] = tokenizer.IdToPiece(tokenizer.pad_id());
    if (tokenizer.unk_id() >= 0) cfg["unk_token"] = tokenizer.IdToPiece(tokenizer.unk_id());
    return cfg;
  }
  nlohmann::json cfg = {
      {"tokenizer_class", "LlamaTokenizer"},
      {"add_prefix_space", !tokenizer.verbatim()},
      {"legacy", false},
      {"add_bos_token", tokenizer.bos_id() >= 0},
      {"add_eos_token", false},
      {"clean_up_tokenization_spaces", false},
      {"spaces_between_special_tokens", false},
      {"model_max_length", 1000000000},
      {"unk_token", tokenizer.IdToPiece(tokenizer.unk_id())},
  };
  if (tokenizer.bos_id() >= 0) cfg["bos_token"] = tokenizer.IdToPiece(tokenizer.bos_id());
  if (tokenizer.eos_id() >= 0) cfg["eos_token"] = tokenizer.IdToPiece(tokenizer.eos_id());
  if (tokenizer.pad_id() >= 0) cfg["pad_token"] = tokenizer.IdToPiece(tokenizer.pad_id());
  if (tokenizer.mask_id() >= 0) cfg["mask_token"] = tokenizer.IdToPiece(tokenizer.mask_id());
  return cfg;
}

}  // namespace augur
