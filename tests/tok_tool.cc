// Test support for tests/python/test_bpe_tokenizer.py: BpeTokenizer from a tokenizer.json or a
// JSON dump of a GgufBpeVocab, driven over JSONL texts.
//
//   tok_tool encode (--tokenizer-json F | --gguf-vocab V.json) [--input F.jsonl]
//       each input line {"text": "..."} or {"hex": "e282"} (raw bytes, for invalid UTF-8);
//       prints {"ids": [...], "decoded_hex": "..."} per line (stdin when no --input)
//   tok_tool to-json (--tokenizer-json F | --gguf-vocab V.json) --out F.json
//   tok_tool info (--tokenizer-json F | --gguf-vocab V.json)
#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>

#include "core/bpe_tokenizer.h"
#include "core/fs.h"

namespace {

using augur::BpeTokenizer;
using nlohmann::json;

int Fail(const std::string& msg) {
  std::fprintf(stderr, "tok_tool: %s\n", msg.c_str());
  return 1;
}

std::string Hex(const std::string& s) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out.push_back(d[c >> 4]);
    out.push_back(d[c & 15]);
  }
  return out;
}

bool Unhex(const std::string& h, std::string* out) {
  if (h.size() % 2) return false;
  for (size_t i = 0; i < h.size(); i += 2) {
    const auto v = [](char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1; };
    if (v(h[i]) < 0 || v(h[i + 1]) < 0) return false;
    out->push_back(static_cast<char>(v(h[i]) * 16 + v(h[i + 1])));
  }
  return true;
}

absl::StatusOr<BpeTokenizer> Load(const std::string& json_path, const std::string& gguf_path) {
  if (!json_path.empty()) {
    AUGUR_ASSIGN_OR_RETURN(std::string text, augur::ReadFile(json_path));
    return BpeTokenizer::FromTokenizerJson(text, json_path);
  }
  AUGUR_ASSIGN_OR_RETURN(std::string text, augur::ReadFile(gguf_path));
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(gguf_path, ": not a JSON object"));
  }
  augur::GgufBpeVocab v;
  try {
    v.model = j.value("model", std::string());
    v.pre = j.value("pre", std::string());
    v.tokens = j.value("tokens", std::vector<std::string>());
    v.merges = j.value("merges", std::vector<std::string>());
    v.token_types = j.value("token_types", std::vector<int32_t>());
    v.bos_id = j.value("bos_id", -1);
    v.eos_id = j.value("eos_id", -1);
    v.pad_id = j.value("pad_id", -1);
    v.unk_id = j.value("unk_id", -1);
    v.add_bos = j.value("add_bos", false);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(gguf_path, ": ", e.what()));
  }
  return BpeTokenizer::FromGgufVocab(v, gguf_path);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return Fail("usage: tok_tool encode|to-json|info (--tokenizer-json F | --gguf-vocab F) ...");
  const std::string cmd = argv[1];
  std::string json_path, gguf_path, input, out;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) return Fail("flag " + a + " needs a value");
    const std::string val = argv[++i];
    if (a == "--tokenizer-json") json_path = val;
    else if (a == "--gguf-vocab") gguf_path = val;
    else if (a == "--input") input = val;
    else if (a == "--out") out = val;
    else return Fail("unknown flag " + a);
  }
  if (json_path.empty() == gguf_path.empty()) return Fail("give one of --tokenizer-json, --gguf-vocab");
  auto tok = Load(json_path, gguf_path);
  if (!tok.ok()) return Fail(std::string(tok.status().message()));
  if (cmd == "info") {
    json info = {{"vocab_size", tok->vocab_size()}, {"bos_id", tok->bos_id()},
                 {"eos_id", tok->eos_id()}, {"pad_id", tok->pad_id()},
                 {"add_bos", tok->add_bos()}, {"fingerprint", tok->fingerprint()}};
    std::cout << info.dump() << "\n";
    return 0;
  }
  if (cmd == "to-json") {
    if (out.empty()) return Fail("to-json needs --out");
    const absl::Status st = augur::WriteFileAtomic(out, tok->ToTokenizerJson());
    return st.ok() ? 0 : Fail(std::string(st.message()));
  }
  if (cmd != "encode") return Fail("unknown command " + cmd);
  std::ifstream file;
  if (!input.empty()) {
    file.open(input);
    if (!file) return Fail(input + ": cannot open");
  }
  std::istream& in = input.empty() ? std::cin : file;
  std::string line;
  int64_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.empty()) continue;
    json j = json::parse(line, nullptr, false);
    std::string text;
    if (j.is_object() && j.contains("text") && j["text"].is_string()) {
      text = j["text"].get<std::string>();
    } else if (!(j.is_object() && j.contains("hex") && j["hex"].is_string() &&
                 Unhex(j["hex"].get<std::string>(), &text))) {
      return Fail(absl::StrCat(input.empty() ? "stdin" : input, ":", n, ": expected {\"text\": ...} or {\"hex\": ...}"));
    }
    const std::vector<int32_t> ids = tok->Encode(text);
    auto decoded = tok->Decode(ids);
    if (!decoded.ok()) return Fail(std::string(decoded.status().message()));
    std::cout << json({{"ids", ids}, {"decoded_hex", Hex(*decoded)}}).dump() << "\n";
  }
  return 0;
}
