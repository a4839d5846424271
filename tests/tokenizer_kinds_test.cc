// core/tokenizer's two kinds behind one class, and core/chat_prompt: a byte-level BPE
// tokenizer.json made here (256 byte tokens, a few merges, ChatML specials) loads through
// Tokenizer::Load with its special tokens named by tokenizer_config.json; the tokenizer files
// travel with a checkpoint; prompt objects ("prompt" / "messages") encode to asserted ids.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <fstream>
#include <string>

#include "core/bpe_tokenizer_impl.h"
#include "core/chat_prompt.h"
#include "core/fs.h"
#include "core/tokenizer.h"

namespace augur {
namespace {

using ::testing::HasSubstr;
using json = nlohmann::json;

constexpr int kSpecials = 3;  // <|endoftext|> <|im_start|> <|im_end|>

std::string ByteToken(unsigned char b) {
  std::string s;
  bpe::AppendUtf8(bpe::ByteToChar()[b], &s);
  return s;
}

// ids: 0..2 specials, 3..258 the bytes in order, then the merges' results.
json TinyTokenizerJson() {
  json vocab = json::object();
  const char* specials[kSpecials] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
  for (int i = 0; i < kSpecials; ++i) vocab[specials[i]] = i;
  for (int b = 0; b < 256; ++b) vocab[ByteToken(static_cast<unsigned char>(b))] = kSpecials + b;
  const std::vector<std::pair<std::string, std::string>> merges = {
      {"h", "e"}, {"l", "l"}, {"he", "ll"}, {"hell", "o"}, {ByteToken(' '), "w"}};
  json merge_list = json::array();
  int next = kSpecials + 256;
  for (const auto& [a, b] : merges) {
    vocab[a + b] = next++;
    merge_list.push_back(a + " " + b);
  }
  json added = json::array();
  for (int i = 0; i < kSpecials; ++i)
    added.push_back({{"id", i}, {"content", specials[i]}, {"single_word", false}, {"lstrip", false},
                     {"rstrip", false}, {"normalized", false}, {"special", true}});
  return {{"version", "1.0"},
          {"truncation", nullptr},
          {"padding", nullptr},
          {"added_tokens", added},
          {"normalizer", nullptr},
          {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}}},
          {"post_processor", nullptr},
          {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
          {"model", {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"continuing_subword_prefix", nullptr},
                     {"end_of_word_suffix", nullptr}, {"fuse_unk", false}, {"byte_fallback", false},
                     {"ignore_merges", false}, {"vocab", vocab}, {"merges", merge_list}}}};
}

const char kChatml[] =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + "
    "'\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

class TokenizerKindsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("augur_tokkinds_");
    ASSERT_FALSE(dir_.empty());
    ASSERT_TRUE(WriteFileAtomic(dir_ + "/tokenizer.json", TinyTokenizerJson().dump()).ok());
    json cfg = {{"bos_token", "<|im_start|>"}, {"eos_token", "<|im_end|>"}, {"pad_token", "<|im_end|>"},
                {"add_bos_token", false}, {"chat_template", kChatml}};
    ASSERT_TRUE(WriteFileAtomic(dir_ + "/tokenizer_config.json", cfg.dump()).ok());
    ASSERT_TRUE(WriteFileAtomic(dir_ + "/generation_config.json", "{\"eos_token_id\": 2}").ok());
  }
  void TearDown() override { RemoveTree(dir_); }
  std::string dir_;
};

TEST_F(TokenizerKindsTest, LoadsBpeFromDirectoryWithSpecialsFromConfig) {
  auto tok = Tokenizer::Load(dir_);
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_EQ(tok->kind(), TokenizerKind::kBpe);
  EXPECT_EQ(tok->kind_name(), "bpe");
  EXPECT_STREQ(tok->file_name(), "tokenizer.json");
  EXPECT_EQ(tok->vocab_size(), kSpecials + 256 + 5);
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  EXPECT_EQ(tok->pad_id(), 2);
  EXPECT_FALSE(tok->add_bos());
  EXPECT_TRUE(tok->verbatim());
  EXPECT_TRUE(tok->IsControl(1));
  EXPECT_FALSE(tok->IsControl(kSpecials + 'a'));
  EXPECT_EQ(tok->source(), dir_ + "/tokenizer.json");
  // "hello" merges to one token; " w" merges; "orld" stays bytes.
  const int hello = kSpecials + 256 + 3, space_w = kSpecials + 256 + 4;
  EXPECT_EQ(tok->Encode("hello world"),
            (std::vector<int32_t>{hello, space_w, kSpecials + 'o', kSpecials + 'r', kSpecials + 'l', kSpecials + 'd'}));
  // Special tokens inside text are tokens.
  EXPECT_EQ(tok->Encode("<|im_start|>hello"), (std::vector<int32_t>{1, hello}));
  const std::string text = "tabs\t\tand  spaces \n\n é 中文 🙂";
  auto back = tok->Decode(tok->Encode(text));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, text);
  auto out_of_range = tok->Decode(std::vector<int32_t>{5, 999});
  EXPECT_THAT(std::string(out_of_range.status().message()), HasSubstr("id 999 at position 1 outside [0, 264)"));
}

TEST_F(TokenizerKindsTest, FingerprintIgnoresJsonFormattingButNotContent) {
  auto a = Tokenizer::Load(dir_);
  ASSERT_TRUE(a.ok());
  auto b = Tokenizer::FromSerialized(TinyTokenizerJson().dump(2), "pretty");
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(a->fingerprint(), b->fingerprint());
  json other = TinyTokenizerJson();
  other["model"]["merges"].erase(other["model"]["merges"].end() - 1);
  other["model"]["vocab"].erase(ByteToken(' ') + "w");
  auto c = Tokenizer::FromSerialized(other.dump(), "other");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_NE(a->fingerprint(), c->fingerprint());
}

TEST_F(TokenizerKindsTest, ConfigNamingAnUnknownTokenIsAnError) {
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/tokenizer_config.json", "{\"eos_token\": \"</s>\"}").ok());
  auto tok = Tokenizer::Load(dir_);
  ASSERT_FALSE(tok.ok());
  EXPECT_EQ(std::string(tok.status().message()),
            "tokenizer: " + dir_ + "/tokenizer.json: tokenizer_config.json names eos_token '</s>', which is not in the "
            "vocabulary");
}

TEST_F(TokenizerKindsTest, SentencePieceFileWinsAndIsFoundFirst) {
  EXPECT_EQ(FindTokenizerFile(dir_), dir_ + "/tokenizer.json");
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/tokenizer.model", "not a proto").ok());
  EXPECT_EQ(FindTokenizerFile(dir_), dir_ + "/tokenizer.model");
  auto tok = Tokenizer::Load(dir_);
  ASSERT_FALSE(tok.ok());
  EXPECT_THAT(std::string(tok.status().message()), HasSubstr("not a SentencePiece model"));
  EXPECT_EQ(FindTokenizerFile(dir_ + "/nope"), "");
}

TEST_F(TokenizerKindsTest, CopyTokenizerFilesTakesTheSiblings) {
  const std::string out = MakeTempDir("augur_tokcopy_");
  ASSERT_TRUE(CopyTokenizerFiles(dir_ + "/tokenizer.json", out).ok());
  EXPECT_EQ(ListDir(out), (std::set<std::string>{"generation_config.json", "tokenizer.json", "tokenizer_config.json"}));
  EXPECT_EQ(*ReadFile(out + "/tokenizer_config.json"), *ReadFile(dir_ + "/tokenizer_config.json"));
  auto tok = Tokenizer::Load(out);
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_EQ(tok->eos_id(), 2);
  RemoveTree(out);
}

TEST_F(TokenizerKindsTest, PromptObjectsEncodeTextAndChats) {
  auto tok = Tokenizer::Load(dir_);
  ASSERT_TRUE(tok.ok());
  const OptionalChat chat = TryLoadChatSetup(*tok, tok->source());
  ASSERT_TRUE(chat.available) << chat.why_not;
  EXPECT_EQ(chat.setup.tmpl.family, "chatml");
  EXPECT_THAT(chat.setup.end_of_turn, ::testing::Contains(2));

  auto plain = EncodePromptObject(json{{"prompt", "hello"}}, *tok, chat, "p:1");
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(*plain, (std::vector<int64_t>{kSpecials + 256 + 3}));  // no BOS: add_bos_token false

  json msgs = json::array({{{"role", "user"}, {"content", "hello"}}});
  auto rendered = EncodePromptObject(json{{"messages", msgs}}, *tok, chat, "p:2");
  ASSERT_TRUE(rendered.ok()) << rendered.status();
  std::vector<int64_t> want = {1};
  for (int32_t id : tok->Encode("user\n")) want.push_back(id);
  want.push_back(kSpecials + 256 + 3);
  want.push_back(2);
  for (int32_t id : tok->Encode("\n")) want.push_back(id);
  want.push_back(1);
  for (int32_t id : tok->Encode("assistant\n")) want.push_back(id);
  EXPECT_EQ(*rendered, want);

  auto both = EncodePromptObject(json{{"prompt", "a"}, {"messages", msgs}}, *tok, chat, "p:3");
  EXPECT_EQ(std::string(both.status().message()),
            "prompts: p:3: needs exactly one of a string field \"prompt\" or a \"messages\" list");
  OptionalChat none;
  none.why_not = absl::NotFoundError("no template here");
  auto missing = EncodePromptObject(json{{"messages", msgs}}, *tok, none, "p:4");
  EXPECT_EQ(std::string(missing.status().message()),
            "prompts: p:4: a \"messages\" line needs a chat template: no template here");
}

TEST_F(TokenizerKindsTest, UnknownTemplateOnlyMattersForMessages) {
  json cfg = {{"eos_token", "<|im_end|>"}, {"chat_template", "{% for m in messages %}{{ m.text }}{% endfor %}"}};
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/tokenizer_config.json", cfg.dump()).ok());
  auto tok = Tokenizer::Load(dir_);
  ASSERT_TRUE(tok.ok());
  const OptionalChat chat = TryLoadChatSetup(*tok, tok->source());
  EXPECT_FALSE(chat.available);
  EXPECT_THAT(std::string(chat.why_not.message()), HasSubstr("unknown template"));
  EXPECT_TRUE(EncodePromptObject(json{{"prompt", "hello"}}, *tok, chat, "p:1").ok());
  // A named family overrides the unknown one.
  const OptionalChat named = TryLoadChatSetup(*tok, tok->source(), "chatml");
  EXPECT_TRUE(named.available);
}

TEST_F(TokenizerKindsTest, DraftTokenizerCheckAsLlamaCpp) {
  auto target = Tokenizer::Load(dir_);
  ASSERT_TRUE(target.ok());
  auto same = Tokenizer::FromSerialized(TinyTokenizerJson().dump(1), "copy");
  ASSERT_TRUE(same.ok());
  // Without a tokenizer_config.json the copy takes <|endoftext|> as EOS: refused, naming both sides.
  EXPECT_EQ(std::string(CheckDraftTokenizer(*target, *same, "T", "D").message()),
            "drafter D cannot draft for target T: EOS differs (target 2, drafter 0)");
  const std::string other = MakeTempDir("augur_tokdraft_");
  json j = TinyTokenizerJson();
  ASSERT_TRUE(WriteFileAtomic(other + "/tokenizer_config.json", *ReadFile(dir_ + "/tokenizer_config.json")).ok());
  ASSERT_TRUE(WriteFileAtomic(other + "/tokenizer.json", j.dump()).ok());
  auto twin = Tokenizer::Load(other);
  ASSERT_TRUE(twin.ok());
  EXPECT_TRUE(CheckDraftTokenizer(*target, *twin, "T", "D").ok());
  // Two byte tokens trade ids: the same vocabulary, other ids.
  j["model"]["vocab"]["a"] = kSpecials + 'b';
  j["model"]["vocab"]["b"] = kSpecials + 'a';
  ASSERT_TRUE(WriteFileAtomic(other + "/tokenizer.json", j.dump()).ok());
  auto changed = Tokenizer::Load(other);
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_EQ(std::string(CheckDraftTokenizer(*target, *changed, "T", "D").message()),
            "drafter D cannot draft for target T: token 100 differs (target 'a', drafter 'b')");
  RemoveTree(other);
}

}  // namespace
}  // namespace augur
