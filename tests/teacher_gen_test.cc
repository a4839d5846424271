// distill/teacher_gen: with a tiny random target, batched greedy continuations equal
// core Generate's; the stored top-k log-probs equal a full forward's log_softmax; the rest
// mass closes the distribution; a resumed run writes the same file as an uninterrupted one;
// mismatched vocabularies, tokenizers and settings are refused.
#include "distill/teacher_gen.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <set>

#include "core/checkpoint.h"
#include "core/checkpoint_fingerprint.h"
#include "core/fs.h"
#include "core/model.h"
#include "core/sampling.h"
#include "core/tokenizer.h"
#include "datasets/corpus.h"
#include "datasets/token_store_writer.h"
#include "datasets/tokenizer_train.h"
#include "tests/data_test_util.h"
#include "tests/tiny_model.h"

namespace augur::distill {
namespace {

using testing_data::TempDir;

ModelConfig Tiny(int64_t vocab) {
  ModelConfig c;
  c.vocab_size = vocab;
  c.hidden_size = 32;
  c.intermediate_size = 64;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.max_position_embeddings = 64;
  c.eos_token_id = -1;
  return c;
}

// 3x the init spreads the logits: no near-ties in argmax.
LlamaModel Random(const ModelConfig& c, uint64_t seed) { return tiny::Random(c, seed, 3.0); }

// Documents BOS + a pattern + EOS: 40 in train, 6 in valid (vocab 61).
std::string PatternStore(const TempDir& tmp) {
  const std::string path = tmp / "corpus.h5";
  TokenStoreInfo meta;
  meta.tokenizer_fingerprint = "fake-tokenizer";
  meta.vocab_size = 61;
  meta.bos_id = 1;
  meta.eos_id = 2;
  auto w = TokenStoreWriter::Create(path, meta);
  EXPECT_TRUE(w.ok()) << w.status();
  for (int d = 0; d < 46; ++d) {
    std::vector<int32_t> doc = {1};
    int32_t cur = (d * 7) % 61;
    for (int t = 0; t < 60 + d; ++t) {
      doc.push_back(cur);
      cur = (3 * cur + 1 + t % 5) % 61;
    }
    doc.push_back(2);
    EXPECT_TRUE((*w)->Add(doc, d < 40 ? Split::kTrain : Split::kValid, "doc" + std::to_string(d)).ok());
  }
  EXPECT_TRUE((*w)->Finish().ok());
  return path;
}

TeacherGenOptions Options() {
  TeacherGenOptions o;
  o.top_k = 5;
  o.max_new = 12;
  o.batch = 3;
  o.eos_id = -1;
  o.flush_seconds = 0;
  o.progress = false;
  o.target_fingerprint = "target-fp";
  o.created_by = "teacher_gen_test";
  return o;
}

PromptSet Prompts(const std::string& store, int64_t n, int64_t prompt_len, int64_t window) {
  StorePromptOptions so;
  so.split = Split::kTrain;
  so.prompt_len = prompt_len;
  so.window = window;
  so.num_prompts = n;
  so.seed = 3;
  auto p = StorePrompts(store, so, nullptr);
  EXPECT_TRUE(p.ok()) << p.status();
  return p.ok() ? *p : PromptSet();
}

const TeacherPrompt& Find(const PromptSet& set, int64_t index) {
  for (const auto& p : set.prompts)
    if (p.index == index) return p;
  ADD_FAILURE() << "no prompt " << index;
  return set.prompts.front();
}

std::shared_ptr<const TeacherStore> Open(const std::string& path) {
  auto s = TeacherStore::Open(path);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *s : nullptr;
}

// The stored record of every position against a full single-sequence forward:
// log-probs at the stored ids (float16 rounding), the ids are a top-k set, and the rest
// is the log of the mass outside them.
void ExpectScoresMatchFullForward(LlamaModelImpl& model, const TeacherSequence& seq, int64_t k) {
  torch::NoGradGuard g;
  const int64_t L = seq.length();
  std::vector<int64_t> ids64(seq.tokens.begin(), seq.tokens.end());
  at::Tensor logp = torch::log_softmax(model.logits(torch::tensor(ids64).view({1, L}))[0].to(torch::kDouble), -1);
  for (int64_t i = 0; i < L; ++i) {
    at::Tensor row = logp[i];
    at::Tensor sorted = std::get<0>(row.sort(-1, /*descending=*/true));
    std::vector<bool> in_top(row.size(0), false);
    double top_mass = 0;
    for (int64_t j = 0; j < k; ++j) {
      const int32_t id = seq.topk_ids[i * k + j];
      const double want = row[id].item<double>(), got = seq.topk_logprobs[i * k + j];
      EXPECT_NEAR(got, want, std::abs(want) * 0x1p-11 + 1e-5) << "position " << i << " rank " << j;
      EXPECT_GE(want, sorted[k - 1].item<double>() - 1e-6) << "id " << id << " is not in the top " << k;
      EXPECT_FALSE(in_top[id]) << "id " << id << " twice";
      in_top[id] = true;
      top_mass += std::exp(want);
    }
    EXPECT_NEAR(seq.rest_logmass[i], std::log1p(-top_mass), 1e-4) << "position " << i;
    // The K+1 stored buckets make a distribution (float16 rounding of the log-probs).
    double total = std::exp(static_cast<double>(seq.rest_logmass[i]));
    for (int64_t j = 0; j < k; ++j) total += std::exp(static_cast<double>(seq.topk_logprobs[i * k + j]));
    EXPECT_NEAR(std::log(total), 0.0, 2e-3) << "position " << i;
  }
}

class TeacherGen : public ::testing::Test {
 protected:
  void SetUp() override {
    torch::set_num_threads(1);
    store = PatternStore(tmp);
  }
  TempDir tmp{"augur_teacher_gen_"};
  std::string store;
  LlamaModel model = Random(Tiny(61), 11);
};

TEST_F(TeacherGen, GreedyEqualsGenerateAndScoresEqualAFullForward) {
  const PromptSet prompts = Prompts(store, 7, 8, 20);
  ASSERT_EQ(prompts.prompts.size(), 7u);
  TeacherGenOptions o = Options();
  auto sum = GenerateTeacherData(*model, prompts, tmp / "t.h5", o);
  ASSERT_TRUE(sum.ok()) << sum.status();
  EXPECT_TRUE(sum->finished);
  EXPECT_EQ(sum->sequences, 7);
  EXPECT_EQ(sum->new_tokens, 7 * 12);
  EXPECT_EQ(sum->positions, 7 * 20);
  auto s = Open(tmp / "t.h5");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->info().mode, "greedy");
  EXPECT_EQ(s->info().generation, "max-new 12");
  EXPECT_EQ(s->info().source, prompts.source);
  EXPECT_EQ(s->info().target_fingerprint, "target-fp");
  EXPECT_EQ(s->info().tokenizer_fingerprint, "fake-tokenizer");
  EXPECT_EQ(s->info().vocab_size, 61);
  EXPECT_EQ(s->info().top_k, 5);
  ASSERT_EQ(s->num_sequences(), 7);
  for (int64_t i = 0; i < 7; ++i) {
    auto seq = s->Read(i);
    ASSERT_TRUE(seq.ok());
    const TeacherPrompt& p = Find(prompts, seq->prompt_index);
    EXPECT_EQ(seq->prompt_len, 8);
    ASSERT_EQ(seq->length(), 20);
    EXPECT_EQ(std::vector<int64_t>(seq->tokens.begin(), seq->tokens.begin() + 8), p.tokens);
    GenerateOptions go;
    go.max_new = 12;
    go.sampling.temperature = 0;
    go.eos_id = -1;
    auto ref = Generate(*model, p.tokens, go);
    ASSERT_TRUE(ref.ok());
    EXPECT_EQ(std::vector<int64_t>(seq->tokens.begin() + 8, seq->tokens.end()), ref->tokens) << "prompt " << p.index;
    ExpectScoresMatchFullForward(*model, *seq, 5);
  }
}

TEST_F(TeacherGen, SequencesStopAtEos) {
  const PromptSet prompts = Prompts(store, 4, 8, 20);
  // Make the 4th greedy token of the first prompt the EOS: that sequence ends there.
  GenerateOptions go;
  go.max_new = 12;
  go.sampling.temperature = 0;
  go.eos_id = -1;
  auto first = Generate(*model, prompts.prompts[0].tokens, go);
  ASSERT_TRUE(first.ok());
  TeacherGenOptions o = Options();
  o.eos_id = go.eos_id = first->tokens[3];
  ASSERT_TRUE(GenerateTeacherData(*model, prompts, tmp / "t.h5", o).ok());
  auto s = Open(tmp / "t.h5");
  ASSERT_TRUE(s);
  bool shortened = false;
  for (int64_t i = 0; i < s->num_sequences(); ++i) {
    auto seq = s->Read(i);
    ASSERT_TRUE(seq.ok());
    auto ref = Generate(*model, Find(prompts, seq->prompt_index).tokens, go);
    ASSERT_TRUE(ref.ok());
    std::vector<int64_t> want = ref->tokens;
    if (ref->hit_eos) want.push_back(o.eos_id);  // the EOS is kept as the last token
    EXPECT_EQ(std::vector<int64_t>(seq->tokens.begin() + 8, seq->tokens.end()), want);
    shortened |= seq->length() < 20;
  }
  EXPECT_TRUE(shortened);
}

TEST_F(TeacherGen, SamplingDependsOnSeedNotOnBatching) {
  const PromptSet prompts = Prompts(store, 5, 8, 20);
  auto run = [&](const std::string& name, int64_t batch, uint64_t seed) {
    TeacherGenOptions o = Options();
    o.mode = TeacherGenMode::kSample;
    o.temperature = 1.0;
    o.batch = batch;
    o.seed = seed;
    auto sum = GenerateTeacherData(*model, prompts, tmp / name, o);
    EXPECT_TRUE(sum.ok()) << sum.status();
    std::map<int64_t, std::vector<int32_t>> tokens;
    auto s = Open(tmp / name);
    for (int64_t i = 0; s && i < s->num_sequences(); ++i) tokens[s->prompt_index(i)] = s->Read(i)->tokens;
    return tokens;
  };
  auto a = run("a.h5", 1, 5), b = run("b.h5", 4, 5), c = run("c.h5", 4, 6);
  EXPECT_EQ(a.size(), 5u);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  auto s = Open(tmp / "a.h5");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->info().mode, "sample");
  EXPECT_EQ(s->info().generation, "max-new 12 temperature 1 seed 5");
}

TEST_F(TeacherGen, TeacherForcedScoresTheWindowsThemselves) {
  const PromptSet windows = Prompts(store, 6, 16, 16);
  TeacherGenOptions o = Options();
  o.mode = TeacherGenMode::kTeacherForced;
  o.top_k = 7;
  auto sum = GenerateTeacherData(*model, windows, tmp / "tf.h5", o);
  ASSERT_TRUE(sum.ok()) << sum.status();
  EXPECT_EQ(sum->new_tokens, 0);
  auto s = Open(tmp / "tf.h5");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->info().mode, "teacher-forced");
  ASSERT_EQ(s->num_sequences(), 6);
  for (int64_t i = 0; i < 6; ++i) {
    auto seq = s->Read(i);
    ASSERT_TRUE(seq.ok());
    EXPECT_EQ(seq->prompt_len, 16);
    EXPECT_EQ(std::vector<int64_t>(seq->tokens.begin(), seq->tokens.end()), Find(windows, seq->prompt_index).tokens);
    ExpectScoresMatchFullForward(*model, *seq, 7);
  }
}

TEST_F(TeacherGen, ResumedRunEqualsUninterruptedRun) {
  const PromptSet prompts = Prompts(store, 7, 8, 20);
  TeacherGenOptions o = Options();
  o.mode = TeacherGenMode::kSample;
  o.batch = 2;
  ASSERT_TRUE(GenerateTeacherData(*model, prompts, tmp / "full.h5", o).ok());

  o.stop_after_batches = 2;  // as if killed after the second batch's segment
  auto part = GenerateTeacherData(*model, prompts, tmp / "resumed.h5", o);
  ASSERT_TRUE(part.ok()) << part.status();
  EXPECT_FALSE(part->finished);
  EXPECT_EQ(part->sequences, 4);
  EXPECT_FALSE(FileExists(tmp / "resumed.h5"));
  EXPECT_TRUE(IsDirectory(TeacherPartsDir(tmp / "resumed.h5")));
  o.stop_after_batches = 0;
  auto again = GenerateTeacherData(*model, prompts, tmp / "resumed.h5", o);
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.status().message().find("--resume"), std::string::npos) << again.status();
  o.resume = true;
  auto rest = GenerateTeacherData(*model, prompts, tmp / "resumed.h5", o);
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_TRUE(rest->finished);
  EXPECT_EQ(rest->skipped, 4);
  EXPECT_EQ(rest->sequences, 3);

  auto a = Open(tmp / "full.h5"), b = Open(tmp / "resumed.h5");
  ASSERT_TRUE(a && b);
  ASSERT_EQ(a->num_sequences(), 7);
  ASSERT_EQ(b->num_sequences(), 7);
  EXPECT_EQ(a->num_positions(), b->num_positions());
  for (int64_t i = 0; i < 7; ++i) {
    auto x = a->Read(i), y = b->Read(i);
    ASSERT_TRUE(x.ok() && y.ok());
    EXPECT_EQ(x->prompt_index, y->prompt_index);
    EXPECT_EQ(x->tokens, y->tokens);
    EXPECT_EQ(x->topk_ids, y->topk_ids);
    EXPECT_EQ(x->topk_logprobs, y->topk_logprobs);
    EXPECT_EQ(x->rest_logmass, y->rest_logmass);
  }
  // Resuming a finished store with more prompts extends it; the same prompts add nothing.
  auto more = GenerateTeacherData(*model, Prompts(store, 9, 8, 20), tmp / "resumed.h5", o);
  ASSERT_TRUE(more.ok()) << more.status();
  EXPECT_EQ(more->skipped, 7);
  EXPECT_EQ(more->sequences, 2);
  EXPECT_EQ(Open(tmp / "resumed.h5")->num_sequences(), 9);
}

TEST_F(TeacherGen, RefusesMismatches) {
  PromptSet prompts = Prompts(store, 3, 8, 20);
  TeacherGenOptions o = Options();
  PromptSet wide = prompts;
  wide.vocab_size = 100;
  auto r = GenerateTeacherData(*model, wide, tmp / "a.h5", o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("vocabulary of 100 but the target's has 61"), std::string::npos) << r.status();

  o.target_tokenizer_fingerprint = "another-tokenizer";
  r = GenerateTeacherData(*model, prompts, tmp / "a.h5", o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("tokenized with tokenizer fake-tokeni"), std::string::npos) << r.status();
  o.target_tokenizer_fingerprint = "";

  o.max_new = 60;  // 8 + 60 > max_position_embeddings 64
  r = GenerateTeacherData(*model, prompts, tmp / "a.h5", o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("max_position_embeddings 64"), std::string::npos) << r.status();
  o.max_new = 12;
  o.top_k = 62;
  r = GenerateTeacherData(*model, prompts, tmp / "a.h5", o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("--top-k 62"), std::string::npos) << r.status();
  o.top_k = 5;
  EXPECT_FALSE(FileExists(tmp / "a.h5"));

  // Resuming with other settings names what differs.
  ASSERT_TRUE(GenerateTeacherData(*model, prompts, tmp / "a.h5", o).ok());
  o.resume = true;
  o.top_k = 6;
  r = GenerateTeacherData(*model, prompts, tmp / "a.h5", o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("top-k 5 but this run has 6"), std::string::npos) << r.status();
  o.top_k = 5;
  o.max_new = 10;
  r = GenerateTeacherData(*model, prompts, tmp / "a.h5", o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("generation settings 'max-new 12'"), std::string::npos) << r.status();

  // A store split too short for one window.
  StorePromptOptions so;
  so.split = Split::kValid;
  so.window = 5000;
  so.prompt_len = 8;
  auto p = StorePrompts(store, so, nullptr);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("fewer than one window of 5000"), std::string::npos) << p.status();
}

TEST_F(TeacherGen, WindowOrderIsAPrefixStableShuffle) {
  const PromptSet a = Prompts(store, 5, 8, 20), b = Prompts(store, 9, 8, 20), all = Prompts(store, 0, 8, 20);
  std::set<int64_t> seen;
  for (size_t i = 0; i < all.prompts.size(); ++i) {
    if (i < 5) {
      EXPECT_EQ(a.prompts[i].index, all.prompts[i].index);
    }
    if (i < 9) {
      EXPECT_EQ(b.prompts[i].index, all.prompts[i].index);
    }
    seen.insert(all.prompts[i].index);
  }
  EXPECT_EQ(seen.size(), all.prompts.size());  // a permutation of all windows
  EXPECT_EQ(static_cast<int64_t>(all.prompts.size()), *seen.rbegin() + 1);
  bool shuffled = false;
  for (size_t i = 0; i < all.prompts.size(); ++i) shuffled |= all.prompts[i].index != static_cast<int64_t>(i);
  EXPECT_TRUE(shuffled);
}

TEST(TeacherGenJsonl, PromptsOfDifferentLengthsWithARealTokenizer) {
  torch::set_num_threads(1);
  TempDir tmp("augur_teacher_jsonl_");
  testing_data::WritePythonCorpus(tmp / "corpus", 40);
  CorpusOptions co;
  co.inputs = {tmp / "corpus"};
  auto corpus = Corpus::Open(co);
  ASSERT_TRUE(corpus.ok()) << corpus.status();
  TokenizerTrainOptions to;
  to.vocab_size = 400;
  to.progress = false;
  to.num_threads = 1;
  auto trained = TrainTokenizer(*corpus, to, tmp / "tok");
  ASSERT_TRUE(trained.ok()) << trained.status();
  auto tok = Tokenizer::Load(tmp / "tok");
  ASSERT_TRUE(tok.ok()) << tok.status();

  testing_data::WriteText(tmp / "p.jsonl",
                          "{\"prompt\": \"def get_value(self):\"}\n\n{\"prompt\": \"import os\"}\n"
                          "{\"prompt\": \"class Thing:\\n    pass\", \"id\": 3}\n{\"prompt\": \"import sys\"}\n");
  auto prompts = JsonlPrompts(tmp / "p.jsonl", *tok, 0);
  ASSERT_TRUE(prompts.ok()) << prompts.status();
  ASSERT_EQ(prompts->prompts.size(), 4u);
  std::vector<int64_t> want = {tok->bos_id()};
  for (int32_t id : tok->Encode("import os")) want.push_back(id);
  EXPECT_EQ(prompts->prompts[1].tokens, want);
  EXPECT_EQ(prompts->prompts[1].index, 1);
  EXPECT_EQ(prompts->tokenizer_fingerprint, tok->fingerprint());
  EXPECT_EQ(JsonlPrompts(tmp / "p.jsonl", *tok, 2)->prompts.size(), 2u);

  LlamaModel model = Random(Tiny(tok->vocab_size()), 5);
  TeacherGenOptions o = Options();
  o.batch = 4;
  o.max_new = 6;
  auto sum = GenerateTeacherData(*model, *prompts, tmp / "t.h5", o);
  ASSERT_TRUE(sum.ok()) << sum.status();
  auto s = Open(tmp / "t.h5");
  ASSERT_TRUE(s);
  ASSERT_EQ(s->num_sequences(), 4);
  for (int64_t i = 0; i < 4; ++i) {
    auto seq = s->Read(i);
    const TeacherPrompt& p = prompts->prompts[seq->prompt_index];
    GenerateOptions go;
    go.max_new = 6;
    go.sampling.temperature = 0;
    go.eos_id = -1;
    auto ref = Generate(*model, p.tokens, go);
    ASSERT_TRUE(ref.ok());
    std::vector<int64_t> full = p.tokens;
    full.insert(full.end(), ref->tokens.begin(), ref->tokens.end());
    EXPECT_EQ(std::vector<int64_t>(seq->tokens.begin(), seq->tokens.end()), full);
    EXPECT_EQ(seq->prompt_len, static_cast<int64_t>(p.tokens.size()));
  }

  testing_data::WriteText(tmp / "bad.jsonl", "{\"prompt\": \"ok\"}\n{\"text\": \"no prompt\"}\n");
  auto bad = JsonlPrompts(tmp / "bad.jsonl", *tok, 0);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("bad.jsonl:2: needs exactly one of a string field \"prompt\" or a \"messages\" list"),
            std::string::npos)
      << bad.status();
  // A store made with another tokenizer is refused when the tokenizer is known.
  TokenStoreInfo meta;
  meta.tokenizer_fingerprint = "fake-tokenizer";
  meta.vocab_size = tok->vocab_size();
  auto w = TokenStoreWriter::Create(tmp / "other.h5", meta);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Add(std::vector<int32_t>(200, 7), Split::kValid, "d").ok());
  ASSERT_TRUE((*w)->Finish().ok());
  auto other = StorePrompts(tmp / "other.h5", StorePromptOptions{}, &*tok);
  ASSERT_FALSE(other.ok());
  EXPECT_NE(other.status().message().find("made with tokenizer fake-tokeni"), std::string::npos) << other.status();
}

TEST(CheckpointFingerprint, NamesTheWeights) {
  TempDir tmp("augur_fp_");
  LlamaModel m = Random(Tiny(61), 1);
  ASSERT_TRUE(SaveCheckpoint(m, AugurMeta(), tmp / "a").ok());
  ASSERT_TRUE(SaveCheckpoint(m, AugurMeta(), tmp / "b").ok());
  auto a = CheckpointFingerprint(tmp / "a"), b = CheckpointFingerprint(tmp / "b");
  ASSERT_TRUE(a.ok() && b.ok()) << a.status();
  EXPECT_EQ(*a, *b);
  EXPECT_EQ(a->size(), 32u);
  {
    torch::NoGradGuard g;
    m->parameters()[0].view({-1})[0].add_(1e-3);
  }
  ASSERT_TRUE(SaveCheckpoint(m, AugurMeta(), tmp / "c").ok());
  EXPECT_NE(*a, *CheckpointFingerprint(tmp / "c"));
  EXPECT_FALSE(CheckpointFingerprint(tmp / "missing").ok());
}

// ---- the augur binary ------------------------------------------------------------------

struct ShellRun {
  int rc = -1;
  std::string err;
};

ShellRun Shell(const std::string& cmd, const TempDir& tmp) {
  ShellRun r;
  r.rc = std::system((cmd + " >" + (tmp / "out.txt") + " 2>" + (tmp / "err.txt")).c_str());
  r.err = ReadFile(tmp / "err.txt").value_or("");
  return r;
}

TEST(TeacherGenCli, WritesAStoreAndRefusesToOverwrite) {
  const char* bin = std::getenv("AUGUR_BIN");
  if (bin == nullptr || !FileExists(bin)) GTEST_SKIP() << "AUGUR_BIN is not set or not built (run through ctest)";
  TempDir tmp("augur_teacher_cli_");
  LlamaModel m = Random(Tiny(61), 2);
  ASSERT_TRUE(SaveCheckpoint(m, AugurMeta(), tmp / "target").ok());
  const std::string store = PatternStore(tmp);
  const std::string base = std::string(bin) + " distill gen --target " + (tmp / "target") + " --prompts " + store +
                           " --out " + (tmp / "t.h5") +
                           " --split train --num-prompts 5 --prompt-len 8 --max-new 6 --batch 2 --threads 1 --no-progress";
  const std::string gen = base + " --top-k 4";
  ShellRun r = Shell(gen, tmp);
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.err.find("5 sequences"), std::string::npos) << r.err;
  auto s = Open(tmp / "t.h5");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->num_sequences(), 5);
  EXPECT_EQ(s->num_positions(), 5 * 14);
  EXPECT_EQ(s->info().top_k, 4);
  EXPECT_EQ(s->info().target_fingerprint, *CheckpointFingerprint(tmp / "target"));
  EXPECT_NE(s->info().created_by.find("--max-new 6"), std::string::npos);

  r = Shell(gen, tmp);
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.err.find("already exists; pass --resume"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;  // one line
  r = Shell(gen + " --resume", tmp);
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.err.find("5 skipped as done"), std::string::npos) << r.err;
  r = Shell(base + " --resume --top-k 3", tmp);
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.err.find("top-k 4 but this run has 3"), std::string::npos) << r.err;
  r = Shell(gen + " --mode beam", tmp);
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.err.find("augur distill gen: unknown --mode 'beam'"), std::string::npos) << r.err;
  r = Shell(std::string(bin) + " distill gen --help", tmp);
  EXPECT_EQ(r.rc, 0);
}

}  // namespace
}  // namespace augur::distill
