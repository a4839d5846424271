// core/bpe_tokenizer: a hand-built byte-level tokenizer.json (ids 0..255 are the bytes, then a
// few merges and special tokens) with ids worked out by hand from the merge ranks; the GGUF
// path with llama.cpp's SmolLM pre-tokenizer; invalid UTF-8; round trips; one-line refusals.
#include "core/bpe_tokenizer.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace augur {
namespace {

using nlohmann::json;
using Ids = std::vector<int32_t>;

// GPT-2's byte -> character table, written out independently of the code under test: printable
// bytes map to themselves, the rest to U+0100.. in byte order.
std::string ByteChar(int b) {
  static std::vector<std::string> table = [] {
    std::vector<std::string> t(256);
    int next = 256;
    for (int c = 0; c < 256; ++c) {
      const bool printable = (c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || c >= 0xAE;
      const int cp = printable ? c : next++;
      std::string s;
      if (cp < 0x80) {
        s.push_back(static_cast<char>(cp));
      } else {
        s.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
      }
      t[c] = s;
    }
    return t;
  }();
  return table[b];
}

// Vocab: byte b has id b; merges (rank order) h+e=256, l+l=257, he+ll=258, hell+o=259,
// Ġ+w=260, o+r=261; 262 "hlo" has no merge (for ignore_merges). Specials 300, 301.
json TinyJson() {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[ByteChar(b)] = b;
  const std::vector<std::pair<std::string, std::string>> merges = {
      {"h", "e"}, {"l", "l"}, {"he", "ll"}, {"hell", "o"}, {ByteChar(' '), "w"}, {"o", "r"}};
  int id = 256;
  json merge_list = json::array();
  for (const auto& [a, b] : merges) {
    vocab[a + b] = id++;
    merge_list.push_back(a + " " + b);
  }
  vocab["hlo"] = 262;
  json j;
  j["version"] = "1.0";
  j["added_tokens"] = json::array(
      {{{"id", 300}, {"content", "<|im_start|>"}, {"special", true}, {"normalized", false}},
       {{"id", 301}, {"content", "<|im_end|>"}, {"special", true}, {"normalized", false}}});
  j["normalizer"] = nullptr;
  j["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}};
  j["post_processor"] = {{"type", "ByteLevel"}};
  j["decoder"] = {{"type", "ByteLevel"}};
  j["model"] = {{"type", "BPE"}, {"vocab", vocab}, {"merges", merge_list}, {"ignore_merges", false}};
  return j;
}

BpeTokenizer Load(const json& j) {
  auto t = BpeTokenizer::FromTokenizerJson(j.dump(), "tiny.json");
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *t : BpeTokenizer();
}

std::string Error(const json& j) {
  auto t = BpeTokenizer::FromTokenizerJson(j.dump(), "tiny.json");
  return t.ok() ? "ok" : std::string(t.status().message());
}

TEST(BpeTokenizerTest, MergesByRank) {
  const BpeTokenizer t = Load(TinyJson());
  EXPECT_EQ(t.vocab_size(), 302);
  EXPECT_EQ(t.Encode("hello"), (Ids{259}));
  // " hello" is one pre-token; Ġ (id 32) has no merge with "h".
  EXPECT_EQ(t.Encode(" hello"), (Ids{32, 259}));
  EXPECT_EQ(t.Encode("hello world"), (Ids{259, 260, 261, 'l', 'd'}));
  // Equal ranks merge leftmost first: l l l -> ll l.
  EXPECT_EQ(t.Encode("lll"), (Ids{257, 'l'}));
  EXPECT_EQ(t.Encode("hlo"), (Ids{'h', 'l', 'o'}));
  EXPECT_EQ(t.Encode(""), Ids{});
}

TEST(BpeTokenizerTest, GptTwoSplitAndSpecialTokens) {
  const BpeTokenizer t = Load(TinyJson());
  EXPECT_EQ(t.Encode("<|im_start|>hello<|im_end|>"), (Ids{300, 259, 301}));
  EXPECT_EQ(t.Encode("x<|im_end|>y"), (Ids{'x', 301, 'y'}));
  EXPECT_TRUE(t.IsSpecial(300));
  EXPECT_FALSE(t.IsSpecial(259));
  // "a  b": the first space stays alone (\s+(?!\S)), the second joins "b" (" ?\p{L}+").
  EXPECT_EQ(t.Encode("a  b"), (Ids{'a', ' ', ' ', 'b'}));
  // Contractions split off: "it's" -> "it", "'s".
  EXPECT_EQ(t.Encode("it's"), (Ids{'i', 't', '\'', 's'}));
  EXPECT_EQ(t.IdToToken(259), "hello");
  EXPECT_EQ(t.TokenToId("<|im_end|>"), 301);
  EXPECT_EQ(t.TokenToId("nope"), -1);
  EXPECT_FALSE(t.add_bos());
}

TEST(BpeTokenizerTest, IgnoreMergesTakesWholeWords) {
  json j = TinyJson();
  j["model"]["ignore_merges"] = true;
  const BpeTokenizer t = Load(j);
  EXPECT_EQ(t.Encode("hlo"), (Ids{262}));
  EXPECT_NE(t.fingerprint(), Load(TinyJson()).fingerprint());
}

TEST(BpeTokenizerTest, SplitDigitsAndArrayMerges) {
  json j = TinyJson();
  json merges = json::array();
  for (const auto& m : j["model"]["merges"]) {
    const std::string s = m.get<std::string>();
    merges.push_back({s.substr(0, s.find(' ')), s.substr(s.find(' ') + 1)});
  }
  j["model"]["merges"] = merges;  // the [a, b] form gives the same tokenizer
  EXPECT_EQ(Load(j).fingerprint(), Load(TinyJson()).fingerprint());
  j["pre_tokenizer"] = {{"type", "Sequence"},
                        {"pretokenizers",
                         {{{"type", "Digits"}, {"individual_digits", true}},
                          {{"type", "Split"}, {"pattern", {{"String", "-"}}}, {"behavior", "Removed"}},
                          {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"use_regex", false}}}}};
  const BpeTokenizer t = Load(j);
  // Digits isolate each digit; "-" is removed; each remaining piece gets a leading space.
  EXPECT_EQ(t.Encode("a12-hello"), (Ids{' ', 'a', ' ', '1', ' ', '2', ' ', 259}));
}

TEST(BpeTokenizerTest, PostProcessorBos) {
  json j = TinyJson();
  j["post_processor"] = {{"type", "TemplateProcessing"},
                         {"single", {{{"SpecialToken", {{"id", "<|im_start|>"}, {"type_id", 0}}}},
                                     {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}}};
  const BpeTokenizer t = Load(j);
  EXPECT_TRUE(t.add_bos());
  EXPECT_EQ(t.bos_id(), 300);
  EXPECT_EQ(t.Encode("hello"), (Ids{259}));  // Encode never adds it
}

TEST(BpeTokenizerTest, RoundTripsAndInvalidUtf8) {
  const BpeTokenizer t = Load(TinyJson());
  for (const std::string s : {"hello world", "  \t\n\r\n x", "héllo 世界 🐍 👨‍👩‍👧", "<|im_start|>user\n1234567"}) {
    const Ids ids = t.Encode(s);
    auto back = t.Decode(ids);
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, s);
  }
  // A lone continuation byte and a truncated sequence become U+FFFD (EF BF BD), one per byte
  // that cannot start a sequence, as llama.cpp does; an overlong NUL decodes to NUL.
  EXPECT_EQ(t.Encode("\x80"), (Ids{0xEF, 0xBF, 0xBD}));
  EXPECT_EQ(t.Encode("a\xE2\x82"), (Ids{'a', 0xEF, 0xBF, 0xBD, 0xEF, 0xBF, 0xBD}));
  EXPECT_EQ(t.Encode("\xC0\x80"), (Ids{0}));
  EXPECT_EQ(t.Encode(std::string("\xF4\x90\x80\x80", 4)), (Ids{0xEF, 0xBF, 0xBD}));
  auto bad = t.Decode(Ids{302});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            "bpe tokenizer: tiny.json: token id 302 at position 0 is outside the vocabulary [0, 302)");
}

TEST(BpeTokenizerTest, ToTokenizerJsonReloadsTheSame) {
  const BpeTokenizer t = Load(TinyJson());
  auto again = BpeTokenizer::FromTokenizerJson(t.ToTokenizerJson(), "again.json");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->fingerprint(), t.fingerprint());
  EXPECT_EQ(again->Encode("<|im_start|>hello world"), t.Encode("<|im_start|>hello world"));
}

GgufBpeVocab TinyGguf() {
  GgufBpeVocab v;
  v.model = "gpt2";
  v.pre = "smollm";
  for (int b = 0; b < 256; ++b) v.tokens.push_back(ByteChar(b));
  v.tokens.push_back("12");      // 256, reachable only without digit splitting
  v.tokens.push_back("<a>");     // 257 control
  v.tokens.push_back("<a><b>");  // 258 control, longer: found first
  v.merges = {"1 2"};
  v.token_types.assign(v.tokens.size(), 1);
  v.token_types[257] = v.token_types[258] = 3;
  v.eos_id = 257;
  return v;
}

TEST(BpeTokenizerTest, GgufSmolLmSplitsDigitsAndMatchesSpecials) {
  auto t = BpeTokenizer::FromGgufVocab(TinyGguf(), "tiny.gguf");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->Encode("12"), (Ids{'1', '2'}));
  EXPECT_EQ(t->Encode("x<a><b>y<a>"), (Ids{'x', 258, 'y', 257}));
  EXPECT_EQ(t->eos_id(), 257);
  EXPECT_TRUE(t->IsSpecial(258));
  GgufBpeVocab gpt2 = TinyGguf();
  gpt2.pre = "gpt-2";
  auto g = BpeTokenizer::FromGgufVocab(gpt2, "tiny.gguf");
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->Encode("12"), (Ids{256}));
  EXPECT_NE(g->fingerprint(), t->fingerprint());
  // Its tokenizer.json keeps the digit split (a Split step before ByteLevel).
  auto j = BpeTokenizer::FromTokenizerJson(t->ToTokenizerJson(), "tiny.json");
  ASSERT_TRUE(j.ok()) << j.status();
  EXPECT_EQ(j->Encode("a 12<a><b>"), t->Encode("a 12<a><b>"));
}

TEST(BpeTokenizerTest, OneLineRefusals) {
  json j = TinyJson();
  j["model"]["type"] = "Unigram";
  EXPECT_EQ(Error(j), "bpe tokenizer: tiny.json: model type 'Unigram' is not supported (byte-level BPE only)");
  auto bad = BpeTokenizer::FromTokenizerJson("{\"model\": ", "tiny.json");
  EXPECT_EQ(bad.status().message(), "bpe tokenizer: tiny.json: not a JSON object (tokenizer.json expected)");
  j = TinyJson();
  j["model"].erase("merges");
  EXPECT_EQ(Error(j), "bpe tokenizer: tiny.json: model.merges is missing");
  j = TinyJson();
  j["model"]["merges"].push_back("q z");
  EXPECT_EQ(Error(j), "bpe tokenizer: tiny.json: model.merges[6] 'q z' uses a token that is not in model.vocab");
  j = TinyJson();
  j["normalizer"] = {{"type", "Lowercase"}};
  EXPECT_EQ(Error(j), "bpe tokenizer: tiny.json: normalizer 'Lowercase' is not supported (null or NFC)");
  j = TinyJson();
  j["pre_tokenizer"] = {{"type", "Whitespace"}};
  EXPECT_EQ(Error(j), "bpe tokenizer: tiny.json: pre_tokenizer 'Whitespace' is not supported (ByteLevel, Split, Digits, Sequence)");
  j = TinyJson();
  j["pre_tokenizer"] = {{"type", "Digits"}};
  EXPECT_EQ(Error(j), "bpe tokenizer: tiny.json: pre_tokenizer has no ByteLevel step (byte-level BPE only)");
  j = TinyJson();
  j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(a"}}}, {"behavior", "Isolated"}};
  EXPECT_EQ(Error(j).substr(0, 40), "bpe tokenizer: tiny.json: regex /(a/ at ");

  GgufBpeVocab v = TinyGguf();
  v.pre = "foo";
  auto g = BpeTokenizer::FromGgufVocab(v, "m.gguf");
  EXPECT_EQ(g.status().message(),
            "bpe tokenizer: m.gguf: tokenizer.ggml.pre 'foo' is not supported (known: default, "
            "gpt-2, llama-bpe, qwen2, smollm, starcoder, deepseek-coder and aliases)");
  v = TinyGguf();
  v.model = "llama";
  g = BpeTokenizer::FromGgufVocab(v, "m.gguf");
  EXPECT_EQ(g.status().message(), "bpe tokenizer: m.gguf: tokenizer.ggml.model 'llama' is not supported (gpt2 only)");
  v = TinyGguf();
  v.merges.clear();
  g = BpeTokenizer::FromGgufVocab(v, "m.gguf");
  EXPECT_EQ(g.status().message(), "bpe tokenizer: m.gguf: tokenizer.ggml.merges is missing");
}

}  // namespace
}  // namespace augur
