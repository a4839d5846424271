#include "core/tokenizer.h"

#include "core/tokenizer_spm.h"

#include <absl/strings/str_cat.h>

#include <array>

#include "core/fs.h"

namespace augur {
namespace {

constexpr std::string_view kWhitespaceMark = "\xE2\x96\x81";  // U+2581, SentencePiece's space

std::string ByteFallbackPiece(unsigned char byte) {
  static const char* hex = "0123456789ABCDEF";
  return absl::StrCat("<0x", std::string(1, hex[byte >> 4]), std::string(1, hex[byte & 15]), ">");
}

}  // namespace

struct Tokenizer::Impl {
  sentencepiece::SentencePieceProcessor sp;
  std::string serialized, fingerprint, source;
  int32_t pad_id = -1, mask_id = -1;
  bool verbatim = false;
  // Byte-fallback ids of U+2581's UTF-8 bytes, used when escaping a literal U+2581.
  bool escape_mark = false;
  std::array<int32_t, 3> mark_ids{};

  std::vector<int32_t> EncodePlain(std::string_view text) const {
    std::vector<int> ids;
    if (text.empty()) return ids;
    auto st = sp.Encode(text, &ids);
    AUGUR_CHECK(st.ok(), "sentencepiece encode: ", st.ToString());
    return ids;
  }
};

absl::StatusOr<Tokenizer> Tokenizer::Load(const std::string& path) {
  std::string file = path;
  if (IsDirectory(path)) {
    file = absl::StrCat(path, "/", kTokenizerFile);
    if (!FileExists(file)) {
      return absl::NotFoundError(absl::StrCat("tokenizer: ", path, ": no ", kTokenizerFile,
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
  return FromSerialized(*bytes, file);
}

absl::StatusOr<Tokenizer> Tokenizer::FromSerialized(const std::string& serialized,
                                                    const std::string& name) {
  auto impl = std::make_shared<Impl>();
  auto st = impl->sp.LoadFromSerializedProto(serialized);
  if (!st.ok() || impl->sp.GetPieceSize() <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tokenizer: ", name, ": not a SentencePiece model (", st.ok() ? "empty" : st.ToString(), ")"));
  }
  impl->serialized = impl->sp.serialized_model_proto();
  impl->fingerprint = Fingerprint(impl->serialized);
  impl->source = name;
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
  Tokenizer t;
  t.impl_ = std::move(impl);
  return t;
}

std::vector<int32_t> Tokenizer::Encode(std::string_view text) const {
  AUGUR_CHECK(impl_ != nullptr, "Tokenizer::Encode on an empty tokenizer");
  if (!impl_->escape_mark || text.find(kWhitespaceMark) == std::string_view::npos) {
    return impl_->EncodePlain(text);
  }
  std::vector<int32_t> out;
  size_t pos = 0;
  while (true) {
    size_t hit = text.find(kWhitespaceMark, pos);
    std::vector<int32_t> part = impl_->EncodePlain(text.substr(pos, hit == std::string_view::npos ? std::string_view::npos : hit - pos));
    out.insert(out.end(), part.begin(), part.end());
    if (hit == std::string_view::npos) break;
    out.insert(out.end(), impl_->mark_ids.begin(), impl_->mark_ids.end());
    pos = hit + kWhitespaceMark.size();
  }
  return out;
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
  std::string text;
  auto st = impl_->sp.Decode(std::vector<int>(ids.begin(), ids.end()), &text);
  if (!st.ok()) {
    return absl::InternalError(absl::StrCat("tokenizer: ", impl_->source, ": decode: ", st.ToString()));
  }
  return text;
}

int32_t Tokenizer::vocab_size() const { return impl_->sp.GetPieceSize(); }
int32_t Tokenizer::unk_id() const { return impl_->sp.unk_id(); }
int32_t Tokenizer::bos_id() const { return impl_->sp.bos_id(); }
int32_t Tokenizer::eos_id() const { return impl_->sp.eos_id(); }
int32_t Tokenizer::pad_id() const { return impl_->pad_id; }
int32_t Tokenizer::mask_id() const { return impl_->mask_id; }
bool Tokenizer::verbatim() const { return impl_->verbatim; }
const std::string& Tokenizer::fingerprint() const { return impl_->fingerprint; }
const std::string& Tokenizer::serialized() const { return impl_->serialized; }
const std::string& Tokenizer::source() const { return impl_->source; }

std::string Tokenizer::IdToPiece(int32_t id) const {
  if (id < 0 || id >= vocab_size()) return "";
  return impl_->sp.IdToPiece(id);
}

int32_t Tokenizer::PieceToId(const std::string& piece) const { return impl_->sp.PieceToId(piece); }

bool Tokenizer::IsControl(int32_t id) const {
  return id >= 0 && id < vocab_size() && impl_->sp.IsControl(id);
}

nlohmann::json HfTokenizerConfig(const Tokenizer& tokenizer) {
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
