#include "quantize/gguf_vocab.h"

#include <nlohmann/json.hpp>

#include <cstring>
#include <string_view>

#include "core/fs.h"

namespace augur::gguf {
namespace {

// Just enough of the protobuf wire format to walk sentencepiece_model.proto's ModelProto
// (Debian ships no sentencepiece_model.pb.h, and the processor's API does not say which
// pieces are user-defined). Fields: ModelProto { repeated SentencePiece pieces = 1;
// NormalizerSpec normalizer_spec = 3; }, SentencePiece { string piece = 1; float score = 2;
// Type type = 3 [default NORMAL]; }, NormalizerSpec { bool add_dummy_prefix = 3 [default
// true]; bool remove_extra_whitespaces = 4 [default true]; }.
class ProtoReader {
 public:
  explicit ProtoReader(std::string_view buf) : p_(buf.data()), end_(buf.data() + buf.size()) {}
  bool done() const { return p_ >= end_ || bad_; }
  bool bad() const { return bad_; }

  // Next field: its number and wire type; the value is read with one of the calls below.
  bool Next(uint32_t* field, uint32_t* wire) {
    if (done()) return false;
    const uint64_t key = Varint();
    *field = static_cast<uint32_t>(key >> 3);
    *wire = static_cast<uint32_t>(key & 7);
    return !bad_;
  }
  uint64_t Varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ >= end_) break;
      const uint8_t b = static_cast<uint8_t>(*p_++);
      v |= static_cast<uint64_t>(b & 0x7F) << shift;
      if (!(b & 0x80)) return v;
    }
    bad_ = true;
    return 0;
  }
  std::string_view Bytes() {
    const uint64_t n = Varint();
    if (bad_ || n > static_cast<uint64_t>(end_ - p_)) {
      bad_ = true;
      return {};
    }
    std::string_view s(p_, n);
    p_ += n;
    return s;
  }
  float Fixed32Float() {
    if (end_ - p_ < 4) {
      bad_ = true;
      return 0;
    }
    float f;
    std::memcpy(&f, p_, 4);
    p_ += 4;
    return f;
  }
  void Skip(uint32_t wire) {
    switch (wire) {
      case 0: Varint(); break;
      case 1: Advance(8); break;
      case 2: Bytes(); break;
      case 5: Advance(4); break;
      default: bad_ = true;  // groups (3, 4) are not used by sentencepiece_model.proto
    }
  }

 private:
  void Advance(int64_t n) {
    if (end_ - p_ < n) bad_ = true;
    else p_ += n;
  }
  const char* p_;
  const char* end_;
  bool bad_ = false;
};

}  // namespace

absl::StatusOr<SpmVocab> ReadSpmVocab(const Tokenizer& tokenizer, int64_t vocab_size) {
  const std::string& name = tokenizer.source();
  auto corrupt = [&](const std::string& what) {
    return absl::InvalidArgumentError(absl::StrCat("gguf vocab: ", name, ": ", what));
  };
  SpmVocab v;
  ProtoReader model(tokenizer.serialized());
  uint32_t field, wire;
  while (model.Next(&field, &wire)) {
    if (field == 1 && wire == 2) {
      ProtoReader piece(model.Bytes());
      std::string text;
      float score = 0;
      int32_t type = kTokenNormal;
      uint32_t f, w;
      while (piece.Next(&f, &w)) {
        if (f == 1 && w == 2) text = std::string(piece.Bytes());
        else if (f == 2 && w == 5) score = piece.Fixed32Float();
        else if (f == 3 && w == 0) type = static_cast<int32_t>(piece.Varint());
        else piece.Skip(w);
      }
      if (piece.bad()) return corrupt(absl::StrCat("piece ", v.tokens.size(), " is not a valid protobuf message"));
      if (type < kTokenNormal || type > kTokenByte)
        return corrupt(absl::StrCat("piece ", v.tokens.size(), " has unknown type ", type));
      v.tokens.push_back(std::move(text));
      v.scores.push_back(score);
      v.types.push_back(type);
    } else if (field == 3 && wire == 2) {
      ProtoReader spec(model.Bytes());
      uint32_t f, w;
      while (spec.Next(&f, &w)) {
        if (f == 3 && w == 0) v.add_space_prefix = spec.Varint() != 0;
        else if (f == 4 && w == 0) v.remove_extra_whitespaces = spec.Varint() != 0;
        else spec.Skip(w);
      }
      if (spec.bad()) return corrupt("normalizer_spec is not a valid protobuf message");
    } else {
      model.Skip(wire);
    }
  }
  if (model.bad()) return corrupt("not a valid SentencePiece model proto");

  // The processor that loaded the same bytes must agree piece by piece.
  const int64_t n = static_cast<int64_t>(v.tokens.size());
  if (n != tokenizer.vocab_size())
    return corrupt(absl::StrCat("the model proto lists ", n, " pieces but SentencePiece loads ", tokenizer.vocab_size()));
  for (int32_t id = 0; id < n; ++id) {
    if (tokenizer.IdToPiece(id) != v.tokens[id])
      return corrupt(absl::StrCat("piece ", id, " reads as '", v.tokens[id], "' but SentencePiece has '",
                                  tokenizer.IdToPiece(id), "'"));
    if (tokenizer.IsControl(id) != (v.types[id] == kTokenControl))
      return corrupt(absl::StrCat("piece ", id, " ('", v.tokens[id], "'): control flag disagrees with SentencePiece"));
  }
  if (vocab_size < n)
    return absl::FailedPreconditionError(absl::StrCat("gguf vocab: ", name, ": the tokenizer has ", n,
                                                      " pieces but the model's vocab_size is ", vocab_size));
  for (int64_t id = n; id < vocab_size; ++id) {
    v.tokens.push_back(absl::StrCat("[PAD", id, "]"));
    v.scores.push_back(-1000.0f);
    v.types.push_back(kTokenUnused);
  }
  v.unk_id = tokenizer.unk_id();
  v.bos_id = tokenizer.bos_id();
  v.eos_id = tokenizer.eos_id();
  v.pad_id = tokenizer.pad_id();
  return v;
}

}  // namespace augur::gguf

namespace augur::gguf {

absl::StatusOr<BpeExportVocab> ReadBpeVocab(const Tokenizer& tokenizer, const std::string& model_dir,
                                            int64_t vocab_size) {
  auto bad = [&](const std::string& m) {
    return absl::FailedPreconditionError(absl::StrCat("gguf export: ", tokenizer.source(), ": ", m));
  };
  if (vocab_size != tokenizer.vocab_size())
    return bad(absl::StrCat("the tokenizer has ", tokenizer.vocab_size(), " tokens, the model's vocab_size is ",
                            vocab_size, " (GGUF's gpt2 vocabulary must match it)"));
  const nlohmann::json tj = nlohmann::json::parse(tokenizer.serialized(), nullptr, /*allow_exceptions=*/false);
  if (tj.is_discarded() || !tj.contains("model") || !tj["model"].contains("merges"))
    return bad("not a tokenizer.json with model.merges");
  BpeExportVocab v;
  for (const auto& m : tj["model"]["merges"]) {
    if (m.is_string()) v.merges.push_back(m.get<std::string>());
    else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string())
      v.merges.push_back(m[0].get<std::string>() + " " + m[1].get<std::string>());
    else return bad("a merge is neither \"a b\" nor [\"a\", \"b\"]");
  }
  for (int32_t id = 0; id < tokenizer.vocab_size(); ++id) {
    v.tokens.push_back(tokenizer.IdToPiece(id));
    v.types.push_back(tokenizer.IsControl(id) ? kTokenControl : kTokenNormal);
  }
  v.unk_id = tokenizer.unk_id();
  v.bos_id = tokenizer.bos_id();
  v.eos_id = tokenizer.eos_id();
  v.pad_id = tokenizer.pad_id();
  v.add_bos = tokenizer.add_bos();

  // The pre-tokenizer: recorded by `augur import`, or GPT-2's own ByteLevel regex.
  auto read_json = [](const std::string& path) {
    nlohmann::json j;
    if (!FileExists(path)) return j;
    auto text = ReadFile(path);
    if (text.ok()) j = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
    return j.is_discarded() ? nlohmann::json() : j;
  };
  const nlohmann::json meta = read_json(absl::StrCat(model_dir, "/augur.json"));
  // extra.import (the imported target) or extra.tokenizer (a drafter distilled from it).
  auto recorded_pre = [&](const char* section) -> std::string {
    if (!meta.is_object() || !meta.contains("extra") || !meta["extra"].is_object()) return "";
    const nlohmann::json& e = meta["extra"];
    if (!e.contains(section) || !e[section].is_object() || !e[section].contains("tokenizer_pre") ||
        !e[section]["tokenizer_pre"].is_string())
      return "";
    return e[section]["tokenizer_pre"].get<std::string>();
  };
  if (std::string pre = recorded_pre("import"); !pre.empty()) {
    v.pre = pre;
  } else if (std::string pre2 = recorded_pre("tokenizer"); !pre2.empty()) {
    v.pre = pre2;
  } else {
    const nlohmann::json& pre = tj.contains("pre_tokenizer") ? tj["pre_tokenizer"] : nlohmann::json();
    if (pre.is_object() && pre.value("type", "") == "ByteLevel" && pre.value("use_regex", true)) v.pre = "gpt2";
    else
      return bad("cannot tell which llama.cpp pre-tokenizer this tokenizer.json's pre_tokenizer is (only checkpoints "
                 "imported from GGUF and plain GPT-2 ByteLevel ones export)");
  }
  const nlohmann::json cfg = read_json(absl::StrCat(model_dir, "/tokenizer_config.json"));
  if (cfg.is_object() && cfg.contains("chat_template") && cfg["chat_template"].is_string())
    v.chat_template = cfg["chat_template"].get<std::string>();
  return v;
}

}  // namespace augur::gguf
