// eval/ngram_index: the suffix array against a brute-force sort, lookups and continuation
// counts against brute-force counting, the retrieval drafter proposing the true
// continuation of a repeated n-gram, and the on-disk datastore (round trip, bad files).
#include "eval/ngram_index.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <random>

#include "core/h5.h"
#include "data_test_util.h"
#include "datasets/token_store_writer.h"
#include "eval/prompt_lookup.h"

namespace augur {
namespace {

using ::testing::HasSubstr;
using testing_data::TempDir;

std::vector<int32_t> RandomTokens(int64_t n, int32_t vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> t(n);
  for (auto& x : t) x = static_cast<int32_t>(rng() % vocab);
  return t;
}

TEST(SuffixArray, PrefixDoublingEqualsBruteForce) {
  std::vector<std::vector<int32_t>> cases = {{}, {7}, {3, 3, 3, 3, 3, 3, 3}, {2, 1, 2, 1, 2, 1, 2}};
  for (uint32_t seed = 0; seed < 6; ++seed) cases.push_back(RandomTokens(300 + seed * 50, 2 + seed, seed));
  // Long exact repeats (duplicated documents) take the most doubling rounds.
  auto doc = RandomTokens(120, 50, 99);
  std::vector<int32_t> dup;
  for (int r = 0; r < 5; ++r) dup.insert(dup.end(), doc.begin(), doc.end());
  cases.push_back(dup);
  for (const auto& c : cases) EXPECT_EQ(BuildSuffixArray(c), BuildSuffixArrayReference(c)) << "n=" << c.size();
}

// Brute force: for every start where `pattern` occurs, the token that follows (or -1).
std::map<int32_t, int64_t> FollowerCounts(const std::vector<int32_t>& t, const std::vector<int64_t>& pattern) {
  std::map<int32_t, int64_t> counts;
  const int64_t n = static_cast<int64_t>(pattern.size());
  for (int64_t s = 0; s + n <= static_cast<int64_t>(t.size()); ++s) {
    bool match = true;
    for (int64_t j = 0; j < n && match; ++j) match = t[s + j] == pattern[j];
    if (match) ++counts[s + n < static_cast<int64_t>(t.size()) ? t[s + n] : -1];
  }
  return counts;
}

TEST(NgramIndex, RangesAndContinuationCountsEqualBruteForce) {
  const auto tokens = RandomTokens(3000, 5, 7);
  const NgramIndex index = NgramIndex::FromTokens(tokens, 5);
  std::mt19937 rng(3);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<int64_t> pattern(1 + rng() % 4);
    for (auto& x : pattern) x = rng() % 5;
    const auto brute = FollowerCounts(tokens, pattern);
    int64_t total = 0;
    for (const auto& [tok, c] : brute) total += c;
    const auto range = index.Range(pattern.data(), pattern.size());
    ASSERT_EQ(range.second - range.first, total);
    // Depth-1 continuations: every follower with its count, most frequent first.
    const auto kids = index.Continuations(range, pattern.size(), 1, 100, 100);
    int64_t listed = 0;
    for (size_t i = 0; i < kids.size(); ++i) {
      EXPECT_EQ(kids[i].parent, -1);
      EXPECT_EQ(kids[i].count, brute.at(kids[i].token));
      if (i > 0) {
        EXPECT_GE(kids[i - 1].count, kids[i].count);
      }
      listed += kids[i].count;
    }
    EXPECT_EQ(listed, total - (brute.count(-1) ? brute.at(-1) : 0));
  }
}

TEST(NgramIndex, TreeNodesCountTheirPaths) {
  const auto tokens = RandomTokens(4000, 4, 11);
  const NgramIndex index = NgramIndex::FromTokens(tokens, 4);
  const std::vector<int64_t> ctx = {1, 2, 3};
  std::pair<int64_t, int64_t> range;
  const int64_t n = index.LongestMatch(ctx, 3, 1, &range);
  ASSERT_EQ(n, 3);
  const auto nodes = index.Continuations(range, n, 3, 2, 10);
  ASSERT_EQ(nodes.size(), 10u);
  for (size_t i = 0; i < nodes.size(); ++i) {
    // A node's count = occurrences of context + its path, counted by brute force.
    std::vector<int64_t> path;
    for (int32_t a = static_cast<int32_t>(i); a >= 0; a = nodes[a].parent) path.insert(path.begin(), nodes[a].token);
    std::vector<int64_t> pattern = ctx;
    pattern.insert(pattern.end(), path.begin(), path.end());
    int64_t occurrences = 0;
    for (const auto& [tok, c] : FollowerCounts(tokens, pattern)) occurrences += c;
    EXPECT_EQ(nodes[i].count, occurrences) << "node " << i;
    EXPECT_LT(nodes[i].parent, static_cast<int32_t>(i));  // parents first
    EXPECT_LE(path.size(), 3u);
  }
}

TEST(NgramDrafter, ProposesTheTrueContinuationOfARepeatedNgram) {
  // The datastore holds "... 40 41 42 43 44 45 46 47 ..." twice and "40 41 42 9" once: the
  // context ending in 40 41 42 must continue with the majority 43 44 45.
  auto tokens = RandomTokens(500, 30, 5);
  const std::vector<int32_t> phrase = {40, 41, 42, 43, 44, 45, 46, 47};
  tokens.insert(tokens.begin() + 100, phrase.begin(), phrase.end());
  tokens.insert(tokens.begin() + 300, phrase.begin(), phrase.end());
  const std::vector<int32_t> minority = {40, 41, 42, 9};
  tokens.insert(tokens.begin() + 400, minority.begin(), minority.end());
  auto index = std::make_shared<const NgramIndex>(NgramIndex::FromTokens(tokens, 50));
  NgramDrafter drafter(index, {});
  Sampler sampler(0);
  const std::vector<int64_t> context = {3, 7, 40, 41, 42};
  Draft d = drafter.Propose({context, 3, {}, sampler});
  EXPECT_EQ(d.tokens, (std::vector<int64_t>{43, 44, 45}));
  EXPECT_FALSE(d.probs.defined());
  // As a tree: both continuations under the context, the majority first.
  Draft tree = drafter.ProposeTree({context, 2, {}, sampler});
  ASSERT_GE(tree.tokens.size(), 3u);
  EXPECT_EQ(tree.tokens[0], 43);
  EXPECT_EQ(tree.parents[0], -1);
  EXPECT_EQ(tree.tokens[1], 44);  // count 2 beats the sibling 9 (count 1)
  EXPECT_EQ(tree.parents[1], 0);
  EXPECT_EQ(tree.tokens[2], 9);
  EXPECT_EQ(tree.parents[2], -1);
  // Nothing to propose for an unseen context.
  EXPECT_TRUE(drafter.Propose({{48, 49}, 3, {}, sampler}).tokens.empty());
  // The same phrase repeated in the prompt: prompt lookup finds it there.
  std::vector<int64_t> prompt(phrase.begin(), phrase.end());
  prompt.insert(prompt.end(), {5, 40, 41});
  EXPECT_EQ(PromptLookupDrafter::Lookup(prompt, 3, 3, 1), (std::vector<int64_t>{42, 43, 44}));
}

TokenStoreInfo Meta(int64_t vocab) {
  TokenStoreInfo m;
  m.tokenizer_fingerprint = "feedface";
  m.vocab_size = vocab;
  m.bos_id = 1;
  m.eos_id = 2;
  m.sources = "[\"unit test\"]";
  m.valid_fraction = 0.5;
  m.created_by = "ngram_test";
  return m;
}

TEST(NgramDatastore, BuildsFromTheTrainSplitAndRoundTrips) {
  TempDir dir("augur_ngram_");
  const std::string store = dir / "store.h5", out = dir / "ds.h5";
  {
    auto w = TokenStoreWriter::Create(store, Meta(100));
    ASSERT_TRUE(w.ok()) << w.status();
    ASSERT_TRUE((*w)->Add({1, 10, 11, 12, 13, 2}, Split::kTrain, "a").ok());
    ASSERT_TRUE((*w)->Add({1, 90, 91, 2}, Split::kValid, "b").ok());
    ASSERT_TRUE((*w)->Add({1, 10, 11, 14, 2}, Split::kTrain, "c").ok());
    ASSERT_TRUE((*w)->Finish().ok());
  }
  int64_t docs = 0;
  auto built = BuildNgramIndex(store, {}, &docs);
  ASSERT_TRUE(built.ok()) << built.status();
  EXPECT_EQ(docs, 2);
  EXPECT_EQ(built->tokens(), (std::vector<int32_t>{1, 10, 11, 12, 13, 2, 1, 10, 11, 14, 2}));  // valid left out
  ASSERT_TRUE(built->Save(out, store, "ngram_test").ok());
  EXPECT_EQ(ListDir(dir.path()), (std::set<std::string>{"ds.h5", "store.h5"}));  // no temp file left
  auto opened = NgramIndex::Open(out);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ((*opened)->tokens(), built->tokens());
  EXPECT_EQ((*opened)->suffix_array(), built->suffix_array());
  EXPECT_EQ((*opened)->vocab_size(), 100);
  // --max-tokens truncates.
  NgramBuildOptions opts;
  opts.max_tokens = 4;
  auto small = BuildNgramIndex(store, opts);
  ASSERT_TRUE(small.ok());
  EXPECT_EQ(small->size(), 4);

  // Bad inputs: a token store is not a datastore; a broken suffix array is refused.
  auto wrong = NgramIndex::Open(store);
  ASSERT_FALSE(wrong.ok());
  EXPECT_THAT(std::string(wrong.status().message()), HasSubstr("not an augur n-gram datastore"));
  {
    auto f = h5::File::Open(out, true);
    ASSERT_TRUE(f.ok());
    auto sa = h5::Dataset::Open(f->id(), "suffix_array");
    ASSERT_TRUE(sa.ok());
    const uint32_t twice[2] = {0, 0};
    ASSERT_TRUE(sa->WriteRows(0, 2, h5::DType::kU32, twice).ok());
  }
  auto broken = NgramIndex::Open(out);
  ASSERT_FALSE(broken.ok());
  EXPECT_THAT(std::string(broken.status().message()), HasSubstr("not a permutation"));
  EXPECT_FALSE(NgramIndex::Open(dir / "missing.h5").ok());
  opts.split = "test";
  EXPECT_FALSE(BuildNgramIndex(store, opts).ok());
}

}  // namespace
}  // namespace augur
