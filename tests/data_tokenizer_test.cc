// core/tokenizer + datasets/tokenizer_train: train on a small generated Python corpus,
// then exact round trips (tabs, blank lines, unicode, literal U+2581), special ids,
// cheap whitespace, fingerprints, and each bad input.
#include "core/tokenizer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "data_test_util.h"
#include "datasets/corpus.h"
#include "datasets/tokenizer_train.h"

namespace augur {
namespace {

using ::testing::HasSubstr;
using testing_data::ReadText;
using testing_data::TempDir;
using testing_data::WriteText;

class TokenizerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir("augur_tok_");
    testing_data::WritePythonCorpus(dir_->path() + "/corpus", 40);
    CorpusOptions co;
    co.inputs = {dir_->path() + "/corpus"};
    auto corpus = Corpus::Open(co);
    ASSERT_TRUE(corpus.ok()) << corpus.status();
    TokenizerTrainOptions o;
    o.vocab_size = 400;
    o.progress = false;
    auto summary = TrainTokenizer(*corpus, o, dir_->path() + "/tok");
    ASSERT_TRUE(summary.ok()) << summary.status();
    summary_ = new TokenizerTrainSummary(*summary);
  }
  static void TearDownTestSuite() {
    delete dir_;
    delete summary_;
  }
  static Tokenizer Load() {
    auto t = Tokenizer::Load(dir_->path() + "/tok");
    EXPECT_TRUE(t.ok()) << t.status();
    return t.ok() ? *t : Tokenizer();
  }
  static TempDir* dir_;
  static TokenizerTrainSummary* summary_;
};
TempDir* TokenizerTest::dir_ = nullptr;
TokenizerTrainSummary* TokenizerTest::summary_ = nullptr;

TEST_F(TokenizerTest, WritesModelAndCompanions) {
  EXPECT_EQ(summary_->vocab_size, 400);
  EXPECT_EQ(summary_->roundtrip_failed, 0);
  EXPECT_GT(summary_->roundtrip_checked, 0);
  EXPECT_GT(summary_->docs, 30);  // ~5% of the 40 documents go to the valid split
  EXPECT_LT(summary_->docs, 40);
  auto cfg = nlohmann::json::parse(ReadText(dir_->path() + "/tok/tokenizer_config.json"));
  EXPECT_EQ(cfg["tokenizer_class"], "LlamaTokenizer");
  EXPECT_EQ(cfg["add_prefix_space"], false);
  EXPECT_EQ(cfg["pad_token"], "<pad>");
  EXPECT_EQ(cfg["mask_token"], "<mask>");
  auto prov = nlohmann::json::parse(ReadText(dir_->path() + "/tok/augur_tokenizer.json"));
  EXPECT_EQ(prov["fingerprint"], summary_->fingerprint);
}

TEST_F(TokenizerTest, SpecialIds) {
  Tokenizer t = Load();
  EXPECT_EQ(t.vocab_size(), 400);
  EXPECT_EQ(t.unk_id(), 0);
  EXPECT_EQ(t.bos_id(), 1);
  EXPECT_EQ(t.eos_id(), 2);
  EXPECT_EQ(t.pad_id(), 3);
  EXPECT_EQ(t.mask_id(), 4);
  EXPECT_EQ(t.IdToPiece(3), "<pad>");
  EXPECT_EQ(t.IdToPiece(4), "<mask>");
  EXPECT_TRUE(t.IsControl(1));
  EXPECT_TRUE(t.IsControl(3));
  EXPECT_TRUE(t.IsControl(4));
  EXPECT_FALSE(t.IsControl(300));
  EXPECT_TRUE(t.verbatim());
  EXPECT_EQ(t.IdToPiece(5), "<0x00>");  // byte fallback follows the specials
  // Control pieces decode to nothing; they are never produced from text.
  EXPECT_EQ(*t.Decode({1, 3, 4, 2}), "");
  for (int32_t id : t.Encode("<pad> <mask> <s> </s>")) EXPECT_FALSE(t.IsControl(id));
}

TEST_F(TokenizerTest, RoundTripIsExact) {
  Tokenizer t = Load();
  const std::vector<std::string> texts = {
      "",
      " ",
      "\n",
      "\n\n\n",
      "    ",
      "x",
      "  leading spaces and trailing  ",
      "def f(x):\n    return x\n",
      "class A:\n\tdef g(self):\n\t\treturn 1\t# tab comment\n\n\n",
      "if a:\n        deep = 1\n\n\n\n    back = 2\n",
      "   \n\t \n  \t\n",                           // whitespace-only lines
      "s = 'héllo wörld 世界 🐍 ñ'\n",                 // unicode, in and out of the vocabulary
      "x = 'a\xe2\x96\x81" "b'  # literal U+2581\n",     // SentencePiece's own space mark
      "\xe2\x96\x81\xe2\x96\x81 start and end \xe2\x96\x81",
      "unk mark \xe2\x81\x87 here",                    // U+2047, SentencePiece's unknown surface
      "line\r\nwindows\r\n",
      "<pad> <mask> <s> </s> <unk>",
      "digits 1234567890 0x1F 3.14e-10",
      "\x01\x02 control bytes \x7f",
      testing_data::PythonModule(999),
  };
  for (const std::string& text : texts) {
    std::vector<int32_t> ids = t.Encode(text);
    auto back = t.Decode(ids);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(*back, text) << "ids " << ids.size();
    for (int32_t id : ids) {
      EXPECT_GE(id, 0);
      EXPECT_LT(id, 400);
      EXPECT_NE(id, t.unk_id());
    }
  }
}

TEST_F(TokenizerTest, WhitespaceIsCheap) {
  Tokenizer t = Load();
  EXPECT_EQ(t.Encode("\n").size(), 1u);
  EXPECT_EQ(t.Encode("    ").size(), 1u);
  EXPECT_EQ(t.Encode("        ").size(), 1u);
  EXPECT_EQ(t.Encode("\t").size(), 1u);
  // Unicode outside the vocabulary falls back to its UTF-8 bytes.
  std::vector<int32_t> snake = t.Encode("🐍");
  EXPECT_LE(snake.size(), 4u);
  // Digits are split one per token.
  EXPECT_EQ(t.Encode("12345").size(), 5u);
}

TEST_F(TokenizerTest, FingerprintIdentifiesTheModel) {
  Tokenizer a = Load();
  Tokenizer b = Load();
  EXPECT_EQ(a.fingerprint(), b.fingerprint());
  EXPECT_EQ(a.fingerprint(), summary_->fingerprint);
  EXPECT_FALSE(a.fingerprint().empty());
  // The same bytes loaded from the file path give the same identity.
  auto c = Tokenizer::Load(dir_->path() + "/tok/tokenizer.model");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->fingerprint(), a.fingerprint());
  // A different vocabulary is a different tokenizer.
  CorpusOptions co;
  co.inputs = {dir_->path() + "/corpus"};
  auto corpus = Corpus::Open(co);
  ASSERT_TRUE(corpus.ok());
  TokenizerTrainOptions o;
  o.vocab_size = 350;
  o.progress = false;
  ASSERT_TRUE(TrainTokenizer(*corpus, o, dir_->path() + "/tok350").ok());
  auto d = Tokenizer::Load(dir_->path() + "/tok350");
  ASSERT_TRUE(d.ok());
  EXPECT_NE(d->fingerprint(), a.fingerprint());
}

TEST_F(TokenizerTest, DecodeRejectsOutOfRangeIds) {
  Tokenizer t = Load();
  auto st = t.Decode({5, 400});
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(std::string(st.status().message()), HasSubstr("id 400 at position 1 outside [0, 400)"));
  EXPECT_FALSE(t.Decode({-1}).ok());
}

TEST(TokenizerLoad, MissingDirectory) {
  TempDir dir;
  auto t = Tokenizer::Load(dir.path());
  ASSERT_FALSE(t.ok());
  EXPECT_THAT(std::string(t.status().message()), HasSubstr("no tokenizer.model"));
  auto u = Tokenizer::Load(dir / "nope");
  ASSERT_FALSE(u.ok());
  EXPECT_THAT(std::string(u.status().message()), HasSubstr("no such file"));
}

TEST(TokenizerLoad, NotAModel) {
  TempDir dir;
  WriteText(dir / "tokenizer.model", "this is not a protobuf");
  auto t = Tokenizer::Load(dir.path());
  ASSERT_FALSE(t.ok());
  EXPECT_THAT(std::string(t.status().message()), HasSubstr("not a SentencePiece model"));
}

TEST(TokenizerTrain, EmptyCorpus) {
  TempDir dir;
  WriteText(dir / "c/empty.py", "");
  CorpusOptions co;
  co.inputs = {dir / "c"};
  auto corpus = Corpus::Open(co);
  ASSERT_TRUE(corpus.ok());
  TokenizerTrainOptions o;
  o.progress = false;
  auto st = TrainTokenizer(*corpus, o, dir / "tok");
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(std::string(st.status().message()), HasSubstr("no training text"));
}

TEST(TokenizerTrain, VocabSizeOutOfRange) {
  TempDir dir;
  WriteText(dir / "a.py", "x = 1\n");
  CorpusOptions co;
  co.inputs = {dir / "a.py"};
  auto corpus = Corpus::Open(co);
  ASSERT_TRUE(corpus.ok());
  TokenizerTrainOptions o;
  o.progress = false;
  o.vocab_size = 100;
  auto st = TrainTokenizer(*corpus, o, dir / "tok");
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(std::string(st.status().message()), HasSubstr("vocab size 100 out of range"));
}

TEST(TokenizerTrain, VocabTooSmallForTheCorpus) {
  TempDir dir;
  testing_data::WritePythonCorpus(dir / "c", 10);
  CorpusOptions co;
  co.inputs = {dir / "c"};
  auto corpus = Corpus::Open(co);
  ASSERT_TRUE(corpus.ok());
  TokenizerTrainOptions o;
  o.progress = false;
  o.vocab_size = 300;
  auto st = TrainTokenizer(*corpus, o, dir / "tok");
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(std::string(st.status().message()), HasSubstr("vocab size 300 is too small for this corpus"));
  EXPECT_THAT(std::string(st.status().message()), HasSubstr("raise --vocab-size"));
}

TEST(TokenizerTrain, ChunkLinesKeepsTextAndLimits) {
  std::string text = "short\n" + std::string(50, 'a') + "\n" + "é" + std::string(30, 'b') + "ü\nend";
  for (size_t max : {8u, 16u, 64u, 1000u}) {
    auto chunks = ChunkLines(text, max);
    std::string joined;
    for (auto c : chunks) {
      EXPECT_LE(c.size(), max);
      EXPECT_FALSE(c.empty());
      EXPECT_NE(static_cast<unsigned char>(c[0]) & 0xC0, 0x80u) << "chunk starts inside a character";
      joined += std::string(c);
    }
    EXPECT_EQ(joined, text);
  }
  EXPECT_EQ(ChunkLines(text, 1000).size(), 1u);
  EXPECT_TRUE(ChunkLines("", 10).empty());
}

}  // namespace
}  // namespace augur
