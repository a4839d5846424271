// Single-thread encode throughput of BpeTokenizer over a list of files (one Encode per file),
// the same work scripts/bench_tokenizer.py gives Hugging Face `tokenizers`.
//
//   tokenizer_encode (--tokenizer-json F | --gguf-vocab V.json) --files LIST [--max-kb N]
//                    [--repeats R]
// LIST holds one path per line. Prints one JSON line: bytes, tokens, seconds (median of R
// passes after a warm-up pass that also fills the word cache), MB/s.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "core/bpe_tokenizer.h"
#include "core/fs.h"

namespace {

absl::StatusOr<augur::BpeTokenizer> Load(const std::string& json_path, const std::string& gguf_path) {
  using nlohmann::json;
  if (!json_path.empty()) {
    AUGUR_ASSIGN_OR_RETURN(std::string text, augur::ReadFile(json_path));
    return augur::BpeTokenizer::FromTokenizerJson(text, json_path);
  }
  AUGUR_ASSIGN_OR_RETURN(std::string text, augur::ReadFile(gguf_path));
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return absl::InvalidArgumentError(gguf_path + ": not JSON");
  augur::GgufBpeVocab v;
  v.model = j.value("model", std::string());
  v.pre = j.value("pre", std::string());
  v.tokens = j.value("tokens", std::vector<std::string>());
  v.merges = j.value("merges", std::vector<std::string>());
  v.token_types = j.value("token_types", std::vector<int32_t>());
  return augur::BpeTokenizer::FromGgufVocab(v, gguf_path);
}

}  // namespace

int main(int argc, char** argv) {
  std::string json_path, gguf_path, list;
  size_t max_kb = 0;
  int repeats = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--tokenizer-json") json_path = v;
    else if (a == "--gguf-vocab") gguf_path = v;
    else if (a == "--files") list = v;
    else if (a == "--max-kb") max_kb = std::stoul(v);
    else if (a == "--repeats") repeats = std::stoi(v);
    else { std::fprintf(stderr, "tokenizer_encode: unknown flag %s\n", a.c_str()); return 1; }
  }
  auto tok = Load(json_path, gguf_path);
  if (!tok.ok()) { std::fprintf(stderr, "tokenizer_encode: %s\n", std::string(tok.status().message()).c_str()); return 1; }
  std::ifstream in(list);
  if (!in) { std::fprintf(stderr, "tokenizer_encode: %s: cannot open\n", list.c_str()); return 1; }
  std::vector<std::string> texts;
  size_t bytes = 0;
  for (std::string path; std::getline(in, path);) {
    auto text = augur::ReadFile(path);
    if (!text.ok()) continue;
    if (max_kb > 0 && text->size() > max_kb * 1024) text->resize(max_kb * 1024);
    bytes += text->size();
    texts.push_back(*std::move(text));
  }
  size_t tokens = 0;
  std::vector<double> secs;
  for (int r = 0; r <= repeats; ++r) {
    const auto t0 = augur::bench::Clock::now();
    size_t n = 0;
    for (const std::string& t : texts) n += tok->Encode(t).size();
    const double s = std::chrono::duration<double>(augur::bench::Clock::now() - t0).count();
    if (r > 0) secs.push_back(s);  // pass 0 warms the caches
    tokens = n;
  }
  const double s = augur::bench::Median(secs);
  std::cout << nlohmann::json({{"files", texts.size()}, {"bytes", bytes}, {"tokens", tokens},
                               {"seconds", s}, {"mb_per_s", bytes / s / 1e6}})
                   .dump()
            << "\n";
  return 0;
}
