// datasets/token_store*: writer/reader round trip (tokens, offsets, splits, attributes,
// names; uint16 and uint32), building from a corpus with a trained tokenizer, the window
// samplers (pure in (seed, index), confined to their split, in-memory == hyperslab), and
// one test per bad store.
#include "datasets/token_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <numeric>
#include <set>

#include "core/h5.h"
#include "core/tokenizer.h"
#include "data_test_util.h"
#include "datasets/build_store.h"
#include "datasets/corpus.h"
#include "datasets/token_store_writer.h"
#include "datasets/token_windows.h"
#include "datasets/tokenizer_train.h"

namespace augur {
namespace {

using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using testing_data::TempDir;
using testing_data::WriteText;

std::string Message(const absl::Status& st) { return std::string(st.message()); }

TokenStoreInfo Meta(int64_t vocab, const std::string& fingerprint = "feedface") {
  TokenStoreInfo m;
  m.tokenizer_fingerprint = fingerprint;
  m.vocab_size = vocab;
  m.bos_id = 1;
  m.eos_id = 2;
  m.sources = "[\"unit test\"]";
  m.valid_fraction = 0.25;
  m.created_by = "data_token_store_test";
  return m;
}

// Documents whose tokens tell their split apart: train ids in [10, 500), valid in [500, 990).
struct Synthetic {
  std::vector<std::vector<int32_t>> docs;
  std::vector<Split> splits;
};

Synthetic MakeDocs(int n, uint32_t seed) {
  Synthetic s;
  std::mt19937 rng(seed);
  for (int d = 0; d < n; ++d) {
    Split split = (d % 4 == 1 || d == n - 1) ? Split::kValid : Split::kTrain;
    int base = split == Split::kTrain ? 10 : 500;
    std::vector<int32_t> doc = {1};
    int len = 1 + static_cast<int>(rng() % 60);
    for (int i = 0; i < len; ++i) doc.push_back(base + static_cast<int32_t>(rng() % 490));
    doc.push_back(2);
    s.docs.push_back(doc);
    s.splits.push_back(split);
  }
  return s;
}

void WriteStore(const std::string& path, const Synthetic& s, const TokenStoreInfo& meta) {
  auto w = TokenStoreWriter::Create(path, meta);
  ASSERT_TRUE(w.ok()) << w.status();
  for (size_t d = 0; d < s.docs.size(); ++d) {
    ASSERT_TRUE((*w)->Add(s.docs[d], s.splits[d], "doc" + std::to_string(d)).ok());
  }
  ASSERT_TRUE((*w)->Finish().ok());
}

// The split's tokens concatenated in document order (what the samplers read from).
std::vector<int64_t> SplitStreamOf(const Synthetic& s, Split split) {
  std::vector<int64_t> out;
  for (size_t d = 0; d < s.docs.size(); ++d)
    if (s.splits[d] == split) out.insert(out.end(), s.docs[d].begin(), s.docs[d].end());
  return out;
}

std::vector<int64_t> Row(const at::Tensor& t, int64_t r) {
  at::Tensor row = t[r].contiguous();
  return std::vector<int64_t>(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + row.numel());
}

class StoreRoundTrip : public ::testing::TestWithParam<int64_t> {};

TEST_P(StoreRoundTrip, TokensOffsetsSplitsAttributes) {
  const int64_t vocab = GetParam();
  TempDir dir;
  Synthetic s = MakeDocs(37, 7);
  WriteStore(dir / "s.h5", s, Meta(vocab));
  auto store = TokenStore::Open(dir / "s.h5");
  ASSERT_TRUE(store.ok()) << store.status();
  const TokenStore& st = **store;
  EXPECT_EQ(st.token_dtype(), vocab <= 65535 ? h5::DType::kU16 : h5::DType::kU32);
  EXPECT_EQ(st.num_docs(), 37);
  int64_t total = 0;
  std::vector<int64_t> train, valid;
  for (size_t d = 0; d < s.docs.size(); ++d) {
    EXPECT_EQ(st.doc_offsets()[d], total);
    total += static_cast<int64_t>(s.docs[d].size());
    auto tokens = st.DocumentTokens(static_cast<int64_t>(d));
    ASSERT_TRUE(tokens.ok());
    EXPECT_EQ(*tokens, s.docs[d]);
    EXPECT_EQ(*st.DocumentName(static_cast<int64_t>(d)), "doc" + std::to_string(d));
    (s.splits[d] == Split::kTrain ? train : valid).push_back(static_cast<int64_t>(d));
  }
  EXPECT_EQ(st.doc_offsets().back(), total);
  EXPECT_EQ(st.num_tokens(), total);
  EXPECT_EQ(st.split_docs(Split::kTrain), train);
  EXPECT_EQ(st.split_docs(Split::kValid), valid);
  EXPECT_EQ(st.split_tokens(Split::kTrain), static_cast<int64_t>(SplitStreamOf(s, Split::kTrain).size()));
  EXPECT_EQ(st.split_tokens(Split::kValid), static_cast<int64_t>(SplitStreamOf(s, Split::kValid).size()));
  const TokenStoreInfo& m = st.info();
  EXPECT_EQ(m.format_version, kTokenStoreVersion);
  EXPECT_EQ(m.tokenizer_fingerprint, "feedface");
  EXPECT_EQ(m.vocab_size, vocab);
  EXPECT_EQ(m.bos_id, 1);
  EXPECT_EQ(m.eos_id, 2);
  EXPECT_EQ(m.sources, "[\"unit test\"]");
  EXPECT_DOUBLE_EQ(m.valid_fraction, 0.25);
  EXPECT_EQ(m.created_by, "data_token_store_test");
  // A raw hyperslab read across documents.
  std::vector<int64_t> raw(10);
  ASSERT_TRUE(st.ReadTokens(st.doc_offsets()[3] - 5, 10, raw.data()).ok());
  std::vector<int64_t> expect(s.docs[2].end() - 5, s.docs[2].end());
  expect.insert(expect.end(), s.docs[3].begin(), s.docs[3].begin() + 5);
  EXPECT_EQ(raw, expect);
  EXPECT_FALSE(st.ReadTokens(total - 2, 3, raw.data()).ok());
  EXPECT_FALSE(st.DocumentTokens(37).ok());
}

INSTANTIATE_TEST_SUITE_P(Vocab, StoreRoundTrip, ::testing::Values(1000, 70000));

TEST(StoreWriter, AbandonedWriterLeavesNothing) {
  TempDir dir;
  {
    auto w = TokenStoreWriter::Create(dir / "s.h5", Meta(100));
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Add({1, 5, 2}, Split::kTrain, "a").ok());
  }
  EXPECT_NE(::access((dir / "s.h5").c_str(), F_OK), 0);
  auto open = TokenStore::Open(dir / "s.h5");
  EXPECT_FALSE(open.ok());
}

TEST(StoreWriter, RejectsIdsOutsideVocab) {
  TempDir dir;
  auto w = TokenStoreWriter::Create(dir / "s.h5", Meta(100));
  ASSERT_TRUE(w.ok());
  auto st = (*w)->Add({1, 100, 2}, Split::kTrain, "bad.py");
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(Message(st), HasSubstr("bad.py: token id 100 outside the vocabulary [0, 100)"));
}

TEST(StoreOpen, MissingStore) {
  TempDir dir;
  auto st = TokenStore::Open(dir / "none.h5");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(Message(st.status()), "token store: " + (dir / "none.h5") +
                                      ": no such file (build one with `augur data build`)");
}

TEST(StoreOpen, NotHdf5) {
  TempDir dir;
  WriteText(dir / "x.h5", "plain text");
  auto st = TokenStore::Open(dir / "x.h5");
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(Message(st.status()), HasSubstr("x.h5: not an HDF5 file"));
}

TEST(StoreOpen, Hdf5ButNotAStore) {
  TempDir dir;
  {
    auto f = h5::File::Create(dir / "x.h5");
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE(h5::WriteAttr(f->id(), "hello", int64_t{1}).ok());
  }
  auto st = TokenStore::Open(dir / "x.h5");
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(Message(st.status()), HasSubstr("not an augur token store"));
}

TEST(StoreOpen, WrongFormatVersion) {
  TempDir dir;
  WriteStore(dir / "s.h5", MakeDocs(5, 1), Meta(1000));
  {
    auto f = h5::File::Open(dir / "s.h5", /*writable=*/true);
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE(h5::WriteAttr(f->id(), "format_version", int64_t{99}).ok());
  }
  auto st = TokenStore::Open(dir / "s.h5");
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(Message(st.status()), HasSubstr("format version 99 is not supported (this augur reads version 1)"));
}

TEST(StoreOpen, InconsistentCounts) {
  TempDir dir;
  WriteStore(dir / "s.h5", MakeDocs(5, 1), Meta(1000));
  {
    auto f = h5::File::Open(dir / "s.h5", true);
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE(h5::WriteAttr(f->id(), "num_tokens", int64_t{3}).ok());
  }
  auto st = TokenStore::Open(dir / "s.h5");
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(Message(st.status()), HasSubstr("but num_tokens says 3"));
}

TEST(Windows, PureFunctionOfSeedAndIndex) {
  TempDir dir;
  Synthetic s = MakeDocs(40, 3);
  WriteStore(dir / "s.h5", s, Meta(1000));
  auto store = TokenStore::Open(dir / "s.h5");
  ASSERT_TRUE(store.ok());
  auto a = WindowSampler::Create(*store, Split::kTrain, /*seed=*/11);
  auto b = WindowSampler::Create(*store, Split::kTrain, /*seed=*/11);
  auto c = WindowSampler::Create(*store, Split::kTrain, /*seed=*/12);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  auto a3 = a->Batch(3, 4, 16);
  ASSERT_TRUE(a3.ok()) << a3.status();
  EXPECT_EQ(a3->sizes(), (std::vector<int64_t>{4, 17}));
  EXPECT_EQ(a3->scalar_type(), torch::kLong);
  // Same (seed, index) -> same batch, whatever was drawn before (resume needs nothing else).
  ASSERT_TRUE(b->Batch(7, 4, 16).ok());
  EXPECT_TRUE(torch::equal(*a3, *b->Batch(3, 4, 16)));
  EXPECT_TRUE(torch::equal(*a3, *a->Batch(3, 4, 16)));
  EXPECT_FALSE(torch::equal(*a3, *a->Batch(4, 4, 16)));
  EXPECT_FALSE(torch::equal(*a3, *c->Batch(3, 4, 16)));
  // A larger batch extends a smaller one row by row.
  auto a3big = a->Batch(3, 6, 16);
  EXPECT_TRUE(torch::equal(*a3, a3big->slice(0, 0, 4)));
}

TEST(Windows, StayInsideTheirSplitAndMatchTheStream) {
  TempDir dir;
  Synthetic s = MakeDocs(60, 5);
  WriteStore(dir / "s.h5", s, Meta(1000));
  auto store = TokenStore::Open(dir / "s.h5");
  ASSERT_TRUE(store.ok());
  for (Split split : {Split::kTrain, Split::kValid}) {
    std::vector<int64_t> stream = SplitStreamOf(s, split);
    const int64_t n = static_cast<int64_t>(stream.size());
    auto mem = WindowSampler::Create(*store, split, 5);
    SplitStreamOptions no_memory;
    no_memory.max_memory_tokens = 0;
    auto disk = WindowSampler::Create(*store, split, 5, no_memory);
    ASSERT_TRUE(mem.ok() && disk.ok());
    EXPECT_TRUE(mem->stream().in_memory());
    EXPECT_FALSE(disk->stream().in_memory());
    EXPECT_EQ(mem->stream().size(), n);
    const int64_t T = 40;
    std::set<int64_t> starts;
    for (int64_t index = 0; index < 30; ++index) {
      auto bm = mem->Batch(index, 8, T);
      auto bd = disk->Batch(index, 8, T);
      ASSERT_TRUE(bm.ok() && bd.ok()) << bd.status();
      EXPECT_TRUE(torch::equal(*bm, *bd));
      for (int64_t r = 0; r < 8; ++r) {
        int64_t start = mem->WindowStart(index, r);
        ASSERT_GE(start, 0);
        ASSERT_LT(start, n);
        starts.insert(start);
        std::vector<int64_t> expect;
        for (int64_t j = 0; j <= T; ++j) expect.push_back(stream[(start + j) % n]);
        EXPECT_EQ(Row(*bm, r), expect);
        for (int64_t v : expect) {
          if (v <= 2) continue;  // BOS/EOS
          if (split == Split::kTrain) EXPECT_LT(v, 500);
          else EXPECT_GE(v, 500);
        }
      }
    }
    // Starts spread over the stream: 240 uniform draws from n positions hit about
    // n (1 - e^(-240/n)) distinct ones.
    EXPECT_GT(static_cast<double>(starts.size()), 0.85 * n * (1 - std::exp(-240.0 / n)));
  }
}

TEST(Windows, SplitSmallerThanWindow) {
  TempDir dir;
  WriteStore(dir / "s.h5", MakeDocs(8, 2), Meta(1000));
  auto store = TokenStore::Open(dir / "s.h5");
  ASSERT_TRUE(store.ok());
  auto w = WindowSampler::Create(*store, Split::kValid, 0);
  ASSERT_TRUE(w.ok());
  auto b = w->Batch(0, 2, 100000);
  ASSERT_FALSE(b.ok());
  EXPECT_THAT(Message(b.status()), HasSubstr("the valid split has"));
  EXPECT_THAT(Message(b.status()), HasSubstr("fewer than seq_len+1 = 100001"));
}

TEST(Windows, EmptySplit) {
  TempDir dir;
  Synthetic s = MakeDocs(6, 4);
  for (auto& split : s.splits) split = Split::kTrain;
  WriteStore(dir / "s.h5", s, Meta(1000));
  auto store = TokenStore::Open(dir / "s.h5");
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_TRUE((*store)->split_docs(Split::kValid).empty());
  EXPECT_EQ((*store)->split_tokens(Split::kValid), 0);
  auto w = WindowSampler::Create(*store, Split::kValid, 0);
  ASSERT_FALSE(w.ok());
  EXPECT_THAT(Message(w.status()), HasSubstr("the valid split is empty"));
  EXPECT_TRUE(WindowSampler::Create(*store, Split::kTrain, 0).ok());
}

TEST(Sequential, NonOverlappingWindowsInOrder) {
  TempDir dir;
  Synthetic s = MakeDocs(50, 9);
  WriteStore(dir / "s.h5", s, Meta(1000));
  auto store = TokenStore::Open(dir / "s.h5");
  ASSERT_TRUE(store.ok());
  std::vector<int64_t> stream = SplitStreamOf(s, Split::kValid);
  const int64_t T = 12;
  for (int64_t max_mem : {int64_t{0}, int64_t{1} << 20}) {
    SplitStreamOptions o;
    o.max_memory_tokens = max_mem;
    auto r = SequentialReader::Create(*store, Split::kValid, T, o);
    ASSERT_TRUE(r.ok()) << r.status();
    const int64_t n = r->num_windows();
    EXPECT_EQ(n, (static_cast<int64_t>(stream.size()) - 1) / T);
    auto all = r->Batch(0, n + 5);
    ASSERT_TRUE(all.ok());
    EXPECT_EQ(all->size(0), n);
    for (int64_t i = 0; i < n; ++i) {
      std::vector<int64_t> expect(stream.begin() + i * T, stream.begin() + i * T + T + 1);
      EXPECT_EQ(Row(*all, i), expect);
    }
    auto tail = r->Batch(n - 2, 4);
    ASSERT_TRUE(tail.ok());
    EXPECT_EQ(tail->size(0), 2);
    EXPECT_FALSE(r->Batch(n, 1).ok());
    // Individual documents for prompts.
    EXPECT_EQ(r->documents(), (*store)->split_docs(Split::kValid));
    auto doc = (*store)->DocumentTokens(r->documents()[0]);
    ASSERT_TRUE(doc.ok());
    EXPECT_EQ(*doc, s.docs[r->documents()[0]]);
  }
}

// End to end: a corpus and a trained tokenizer into a store; the store decodes back.
class BuildStore : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir("augur_build_");
    testing_data::WritePythonCorpus(dir_->path() + "/corpus", 24);
    CorpusOptions co;
    co.inputs = {dir_->path() + "/corpus"};
    auto corpus = Corpus::Open(co);
    ASSERT_TRUE(corpus.ok());
    TokenizerTrainOptions o;
    o.vocab_size = 400;
    o.progress = false;
    auto summary = TrainTokenizer(*corpus, o, dir_->path() + "/tok");
    ASSERT_TRUE(summary.ok()) << summary.status();
  }
  static void TearDownTestSuite() { delete dir_; }
  static TempDir* dir_;
};
TempDir* BuildStore::dir_ = nullptr;

TEST_F(BuildStore, DocumentsDecodeBackAndSplitsFollowTheHash) {
  auto tok = Tokenizer::Load(dir_->path() + "/tok");
  ASSERT_TRUE(tok.ok());
  CorpusOptions co;
  co.inputs = {dir_->path() + "/corpus"};
  auto corpus = Corpus::Open(co);
  ASSERT_TRUE(corpus.ok());
  BuildStoreOptions bo;
  bo.valid_fraction = 0.3;
  bo.progress = false;
  bo.num_threads = 2;
  const std::string path = dir_->path() + "/s.h5";
  auto summary = BuildTokenStore(*corpus, *tok, path, bo);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->docs, 24);
  auto store = TokenStore::Open(path);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_TRUE((*store)->Check(*tok).ok());
  EXPECT_EQ((*store)->info().tokenizer_path.front(), '/');
  EXPECT_THAT((*store)->info().tokenizer_path, ::testing::EndsWith("/tok/tokenizer.model"));
  EXPECT_EQ((*store)->num_tokens(), summary->tokens);
  EXPECT_EQ((*store)->token_dtype(), h5::DType::kU16);
  EXPECT_GT(summary->split_docs[1], 0);
  EXPECT_EQ(summary->split_docs[0] + summary->split_docs[1], 24);
  for (int64_t d = 0; d < 24; ++d) {
    const CorpusFile& f = corpus->files()[d];
    auto ids = (*store)->DocumentTokens(d);
    ASSERT_TRUE(ids.ok());
    ASSERT_GE(ids->size(), 2u);
    EXPECT_EQ(ids->front(), 1);
    EXPECT_EQ(ids->back(), 2);
    std::vector<int32_t> body(ids->begin() + 1, ids->end() - 1);
    EXPECT_EQ(body, tok->Encode(testing_data::ReadText(f.path)));
    EXPECT_EQ(*tok->Decode(*ids), testing_data::ReadText(f.path));
    EXPECT_EQ(*(*store)->DocumentName(d), f.path);
    const auto& valid = (*store)->split_docs(Split::kValid);
    bool in_valid = std::binary_search(valid.begin(), valid.end(), d);
    EXPECT_EQ(in_valid, IsValidSplit(f.split_key, 0.3)) << f.split_key;
  }
  // The thread count does not change the store.
  bo.num_threads = 1;
  ASSERT_TRUE(BuildTokenStore(*corpus, *tok, dir_->path() + "/s1.h5", bo).ok());
  auto one = TokenStore::Open(dir_->path() + "/s1.h5");
  ASSERT_TRUE(one.ok());
  EXPECT_EQ((*one)->doc_offsets(), (*store)->doc_offsets());
  std::vector<int64_t> x((*store)->num_tokens()), y((*store)->num_tokens());
  ASSERT_TRUE((*store)->ReadTokens(0, x.size(), x.data()).ok());
  ASSERT_TRUE((*one)->ReadTokens(0, y.size(), y.data()).ok());
  EXPECT_EQ(x, y);
}

TEST_F(BuildStore, FingerprintMismatchIsRefused) {
  TempDir dir;
  WriteStore(dir / "s.h5", MakeDocs(5, 1), Meta(1000, "0123456789abcdef0123"));
  auto tok = Tokenizer::Load(dir_->path() + "/tok");
  ASSERT_TRUE(tok.ok());
  auto store = TokenStore::Open(dir / "s.h5");
  ASSERT_TRUE(store.ok());
  absl::Status st = (*store)->Check(*tok);
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(st));
  EXPECT_THAT(Message(st), HasSubstr("made with tokenizer 0123456789ab (vocab 1000) but"));
  EXPECT_THAT(Message(st), HasSubstr(tok->fingerprint().substr(0, 12)));
  EXPECT_EQ(Message(st).find('\n'), std::string::npos);
}

TEST_F(BuildStore, EmptyCorpus) {
  TempDir dir;
  WriteText(dir / "c/a.py", "");
  WriteText(dir / "c/b.py", "");
  auto tok = Tokenizer::Load(dir_->path() + "/tok");
  CorpusOptions co;
  co.inputs = {dir / "c"};
  auto corpus = Corpus::Open(co);
  ASSERT_TRUE(corpus.ok());
  BuildStoreOptions bo;
  bo.progress = false;
  auto st = BuildTokenStore(*corpus, *tok, dir / "s.h5", bo);
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(Message(st.status()), HasSubstr("no documents"));
  EXPECT_NE(::access((dir / "s.h5").c_str(), F_OK), 0);  // nothing left behind
}

TEST_F(BuildStore, BadJsonlStopsTheBuild) {
  TempDir dir;
  WriteText(dir / "d.jsonl", "{\"text\": \"x = 1\"}\n{\"txt\": \"y\"}\n");
  auto tok = Tokenizer::Load(dir_->path() + "/tok");
  CorpusOptions co;
  co.inputs = {dir / "d.jsonl"};
  auto corpus = Corpus::Open(co);
  ASSERT_TRUE(corpus.ok());
  BuildStoreOptions bo;
  bo.progress = false;
  auto st = BuildTokenStore(*corpus, *tok, dir / "s.h5", bo);
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(Message(st.status()), HasSubstr("d.jsonl:2: no \"text\" field"));
  EXPECT_NE(::access((dir / "s.h5").c_str(), F_OK), 0);
}

}  // namespace
}  // namespace augur
