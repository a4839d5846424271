// The native engine as the speculative engine's target (runtime/decode_model.h contract): rows
// of a multi-token forward equal one-token forwards bit for bit (fp32, int8, int4), a tree
// forward compacted to one path continues exactly as that path decoded alone, hidden-state
// taps match LibTorch's, and greedy speculative output on a native target equals the same
// engine's target-only output token for token with no near-tie recompute. The drafter request
// (eval/drafter.h) carries the target's hidden states of exactly the kept tokens, on either
// engine, chain or tree, and each step's verdict adds up to the engine's statistics.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstring>
#include <random>

#include "core/fs.h"
#include "eval/ar_drafter.h"
#include "eval/draft_vocab.h"
#include "eval/harness.h"
#include "eval/prompt_lookup.h"
#include "eval/speculative.h"
#include "eval/token_tree.h"
#include "core/checkpoint.h"
#include "runtime/llama_weights.h"
#include "runtime/native_llama.h"
#include "runtime/qmodel.h"
#include "runtime/scheme.h"

namespace augur {
namespace {

ModelConfig Small(int64_t layers = 2) {
  ModelConfig c;
  c.vocab_size = 131;
  c.hidden_size = 64;
  c.intermediate_size = 160;
  c.num_hidden_layers = layers;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.max_position_embeddings = 256;
  c.rope_theta = 500.0;
  c.tie_word_embeddings = true;
  return c;
}

LlamaModel Random(const ModelConfig& c, uint64_t seed) {
  LlamaModel m(c);
  m->init_weights(seed);
  torch::NoGradGuard g;
  for (auto& p : m->named_parameters()) p.value().mul_(2.5);  // logits of order 1
  m->eval();
  return m;
}

// "" = fp32; else every linear (head included) quantized round-to-nearest.
LlamaModel Quantized(LlamaModel m, const std::string& scheme) {
  if (scheme.empty()) return m;
  torch::NoGradGuard g;
  QuantizedLinears linears;
  for (const LinearSlot& s : ModelLinears(m, /*with_head=*/true))
    linears.emplace(s.name, QuantizeRtn(s.weight.detach(), ParseScheme(scheme).value()));
  InstallQuantized(m, linears);
  return m;
}

std::vector<int64_t> Tokens(int64_t n, int64_t vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int64_t> out(n);
  for (auto& t : out) t = static_cast<int64_t>(rng() % vocab);
  return out;
}

bool BitEqual(const at::Tensor& a, const at::Tensor& b) {
  const at::Tensor x = a.contiguous(), y = b.contiguous();
  return x.sizes() == y.sizes() && std::memcmp(x.data_ptr<float>(), y.data_ptr<float>(), x.numel() * 4) == 0;
}

class NativeTarget : public ::testing::TestWithParam<std::string> {};

TEST_P(NativeTarget, RowsOfAMultiTokenForwardEqualOneTokenForwards) {
  LlamaModel m = Quantized(Random(Small(), 3), GetParam());
  auto a = NativeLlama::Create(m, 96).value();
  auto b = NativeLlama::Create(m, 96).value();
  ASSERT_TRUE(a->rows_exact());
  const auto prompt = Tokens(20, 131, 1);
  DecodeOptions pre;
  pre.prefill = true;
  a->forward(prompt, pre);
  b->forward(prompt, pre);
  for (int64_t t : {2, 3, 5, 8, 9, 16, 17}) {
    SCOPED_TRACE(t);
    const auto ids = Tokens(t, 131, 100 + t);
    DecodeOptions all;
    all.logits_last = 0;
    const at::Tensor rows = a->forward(ids, all).clone();
    for (int64_t i = 0; i < t; ++i)
      EXPECT_TRUE(BitEqual(rows[i], b->forward({ids[i]}).clone()[0])) << "row " << i;
    a->truncate(20);
    b->truncate(20);
  }
}

TEST_P(NativeTarget, TreeForwardCompactedToAPathContinuesExactly) {
  LlamaModel m = Quantized(Random(Small(), 4), GetParam());
  auto tree_model = NativeLlama::Create(m, 96).value();
  auto chain_model = NativeLlama::Create(m, 96).value();
  const auto prompt = Tokens(12, 131, 2);
  DecodeOptions pre;
  pre.prefill = true;
  tree_model->forward(prompt, pre);
  chain_model->forward(prompt, pre);
  // Root 5 with two branches: 5 -> 7 -> 9 and 5 -> 11 -> 13 -> 17.
  TokenTree tree(5, 16);
  Draft a;
  a.tokens = {7, 9};
  Draft b;
  b.tokens = {11, 13, 17};
  tree.AddDraft(a, 0, 4);
  const std::vector<int32_t> nodes_b = tree.AddDraft(b, 1, 4);
  const std::vector<int64_t> positions = tree.Positions(tree_model->length());
  DecodeOptions fo;
  fo.logits_last = 0;
  fo.attn_mask = tree.Mask();
  fo.positions = positions;
  const at::Tensor tree_logits = tree_model->forward(tree.Tokens(), fo).clone();
  DecodeOptions all;
  all.logits_last = 0;
  const at::Tensor chain_logits = chain_model->forward({5, 11, 13, 17}, all).clone();
  // The branch's rows in the tree forward are the chain's rows, bit for bit.
  std::vector<int64_t> keep = {12};
  for (int32_t n : nodes_b) keep.push_back(12 + n);
  for (size_t i = 0; i < keep.size(); ++i)
    EXPECT_TRUE(BitEqual(tree_logits[keep[i] - 12], chain_logits[static_cast<int64_t>(i)])) << "path node " << i;
  tree_model->compact(12, keep);
  EXPECT_EQ(tree_model->length(), 16);
  EXPECT_TRUE(BitEqual(tree_model->forward({19}).clone(), chain_model->forward({19}).clone()));
}

INSTANTIATE_TEST_SUITE_P(Precisions, NativeTarget, ::testing::Values("", "int8", "int4-g32"),
                         [](const auto& info) { return info.param.empty() ? std::string("fp32") : [&] {
                           std::string s = info.param;
                           for (char& ch : s) if (ch == '-') ch = '_';
                           return s;
                         }(); });

TEST(NativeTarget, HiddenStateTapsMatchTorch) {
  LlamaModel m = Random(Small(3), 5);
  auto native = NativeLlama::Create(m, 64).value();
  TorchDecodeModel ref(m, 64);
  const auto ids = Tokens(7, 131, 3);
  DecodeOptions o;
  o.hidden_layers = {0, 1, 3};
  native->forward(ids, o);
  ref.forward(ids, o);
  for (size_t j = 0; j < 3; ++j) {
    const at::Tensor a = native->hidden(j), b = ref.hidden(j);
    ASSERT_EQ(a.sizes(), b.sizes()) << j;
    EXPECT_LE((a - b).abs().max().item<double>(), 1e-4 * std::max(1.0, b.abs().max().item<double>())) << "tap " << j;
  }
}

TEST(NativeTarget, GreedySpeculativeOutputEqualsTargetOnlyWithoutNearTieRecomputes) {
  LlamaModel target_model = Random(Small(2), 6);
  LlamaModel draft_model = Random(Small(1), 8);
  auto target = NativeLlama::Create(target_model, 160).value();
  ArDrafter ar(NativeLlama::Create(draft_model, 160).value(), "ar");
  PromptLookupDrafter pl;
  NullDrafter none;
  for (uint64_t seed : {1, 2, 3}) {
    auto prompt = Tokens(16, 131, seed);
    prompt.insert(prompt.end(), prompt.begin(), prompt.begin() + 8);  // a repeat for prompt lookup
    SpecOptions o;
    o.max_new = 40;
    o.sampling.temperature = 0;  // greedy
    o.eos_id = -1;
    o.gamma = 0;
    auto base = SpeculativeGenerate(*target, none, prompt, o);
    ASSERT_TRUE(base.ok()) << base.status();
    for (int64_t gamma : {1, 4, 7}) {
      o.gamma = gamma;
      auto spec = SpeculativeGenerate(*target, ar, prompt, o);
      ASSERT_TRUE(spec.ok()) << spec.status();
      EXPECT_EQ(spec->tokens, base->tokens) << "seed " << seed << " gamma " << gamma;
      EXPECT_EQ(spec->stats.near_ties, 0);
      auto tree = SpeculativeGenerateTree(*target, {&ar, &pl}, prompt, o);
      ASSERT_TRUE(tree.ok()) << tree.status();
      EXPECT_EQ(tree->tokens, base->tokens) << "tree, seed " << seed << " gamma " << gamma;
    }
  }
}

// Wraps a real drafter and records what the engine hands it: the target features of each
// request and each step's verdict (the request object of eval/drafter.h).
class Recording : public Drafter {
 public:
  Recording(Drafter& inner, std::vector<int64_t> layers) : inner_(inner), layers_(std::move(layers)) {}
  std::string name() const override { return "recording"; }
  absl::Status Begin(const std::vector<int64_t>& prompt) override {
    begins.clear(), ends.clear(), rows.assign(layers_.size(), {}), steps.clear();
    return inner_.Begin(prompt);
  }
  std::vector<int64_t> target_layers() const override { return layers_; }
  Draft Propose(const DraftRequest& req) override { return inner_.Propose(Record(req)); }
  Draft ProposeTree(const DraftRequest& req) override { return inner_.ProposeTree(Record(req)); }
  void Accepted(const Verified& step) override { steps.push_back(step); }

  std::vector<int64_t> begins, ends;          // per request: features' first row, context size - 1
  std::vector<std::vector<at::Tensor>> rows;  // per layer: each request's rows
  std::vector<Verified> steps;

 private:
  const DraftRequest& Record(const DraftRequest& req) {
    EXPECT_NE(req.features, nullptr);
    if (req.features == nullptr) return req;
    begins.push_back(req.features->begin);
    ends.push_back(static_cast<int64_t>(req.context.size()) - 1);
    EXPECT_EQ(req.features->layers.size(), layers_.size());
    for (size_t j = 0; j < layers_.size() && j < req.features->layers.size(); ++j)
      rows[j].push_back(req.features->layers[j].clone());
    return req;
  }
  Drafter& inner_;
  std::vector<int64_t> layers_;
};

TEST(DraftRequest, FeaturesAreTheTargetsHiddenStatesOfEachKeptTokenAndVerdictsAddUp) {
  const ModelConfig cfg = Small(3);
  LlamaModel target_model = Random(cfg, 11);
  LlamaModel draft_model = Random(Small(1), 12);
  const std::vector<int64_t> layers = {3, 0, 2};  // after the final norm, embeddings, a middle layer
  for (const std::string engine : {"native", "torch"}) {
    SCOPED_TRACE(engine);
    std::unique_ptr<DecodeModel> target;
    if (engine == "native") target = NativeLlama::Create(target_model, 160).value();
    else target = std::make_unique<TorchDecodeModel>(target_model, 160);
    // The target itself as a drafter (most guesses kept) and a random one (most rejected).
    ArDrafter self(NativeLlama::Create(target_model, 160).value(), "self");
    ArDrafter random(NativeLlama::Create(draft_model, 160).value(), "random");
    Recording rec_self(self, layers), rec_random(random, {2});
    auto prompt = Tokens(12, 131, 4);
    prompt.insert(prompt.end(), prompt.begin(), prompt.begin() + 6);
    SpecOptions o;
    o.max_new = 30;
    o.gamma = 4;
    o.sampling.temperature = 0;
    o.eos_id = -1;
    NullDrafter none;
    SpecOptions o0 = o;
    o0.gamma = 0;
    const auto base = SpeculativeGenerate(*target, none, prompt, o0);
    ASSERT_TRUE(base.ok()) << base.status();
    for (const std::string mode : {"chain self", "chain random", "tree"}) {
      SCOPED_TRACE(mode);
      Recording& rec = mode == "chain random" ? rec_random : rec_self;
      const std::vector<int64_t> rec_layers = rec.target_layers();
      const auto r = mode == "tree" ? SpeculativeGenerateTree(*target, {&rec_self, &rec_random}, prompt, o)
                                    : SpeculativeGenerate(*target, rec, prompt, o);
      ASSERT_TRUE(r.ok()) << r.status();
      EXPECT_EQ(r->tokens, base->tokens);  // the taps change nothing
      // The requests' rows tile the context from 0, each ending before its pending token.
      ASSERT_FALSE(rec.begins.empty());
      EXPECT_EQ(rec.begins.front(), 0);
      for (size_t k = 0; k < rec.begins.size(); ++k) {
        EXPECT_EQ(rec.begins[k] + rec.rows[0][k].size(0), rec.ends[k]) << "request " << k;
        if (k > 0) EXPECT_EQ(rec.begins[k], rec.ends[k - 1]) << "request " << k;
      }
      // They equal the hidden states of one fresh forward over the whole context.
      std::vector<int64_t> full = prompt;
      full.insert(full.end(), r->tokens.begin(), r->tokens.end());
      TorchDecodeModel ref(target_model, 160);
      DecodeOptions fo;
      fo.hidden_layers = rec_layers;
      ref.forward(full, fo);
      for (size_t j = 0; j < rec_layers.size(); ++j) {
        const at::Tensor got = at::cat(rec.rows[j]);
        const at::Tensor want = ref.hidden(j).narrow(0, 0, got.size(0));
        ASSERT_EQ(got.sizes(), want.sizes()) << "layer " << rec_layers[j];
        EXPECT_LE((got - want).abs().max().item<double>(), 1e-4 * std::max(1.0, want.abs().max().item<double>()))
            << "layer " << rec_layers[j];
      }
      // In the tree the second drafter's one layer is the first's layer 2, row for row.
      if (mode == "tree") {
        ASSERT_EQ(rec_random.rows[0].size(), rec_self.rows[2].size());
        for (size_t k = 0; k < rec_random.rows[0].size(); ++k)
          EXPECT_TRUE(BitEqual(rec_random.rows[0][k], rec_self.rows[2][k])) << "request " << k;
      }
      // Verdicts: one per step; what was kept is the output; acceptance adds up to the stats.
      ASSERT_EQ(static_cast<int64_t>(rec.steps.size()), r->stats.target_forwards);
      std::vector<int64_t> kept;
      int64_t accepted = 0, offered = 0;
      for (const Verified& v : rec.steps) {
        kept.insert(kept.end(), v.kept.begin(), v.kept.end());
        accepted += v.accepted, offered += v.offered;
        EXPECT_LE(v.accepted, v.offered);
      }
      EXPECT_EQ(kept, r->tokens);
      EXPECT_EQ(accepted, r->stats.drafter_accepted[0]);
      if (mode != "tree") EXPECT_EQ(offered, r->stats.proposed);
      if (&rec == &rec_self) EXPECT_GT(accepted, r->stats.target_forwards);  // more than one a step
    }
  }
}

TEST(DraftRequest, ADrafterAskingForALayerTheTargetLacksIsRefused) {
  auto target = NativeLlama::Create(Random(Small(2), 13), 64).value();
  PromptLookupDrafter pl;
  Recording rec(pl, {3});
  SpecOptions o;
  o.max_new = 4;
  auto r = SpeculativeGenerate(*target, rec, Tokens(8, 131, 2), o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(std::string(r.status().message()).find("reads target layer 3; the target has layers 0..2"),
            std::string::npos)
      << r.status();
}

TEST(NativeTarget, RefusesAPromptLongerThanItsCache) {
  auto target = NativeLlama::Create(Random(Small(1), 9), 32).value();
  NullDrafter none;
  SpecOptions o;
  o.max_new = 20;
  auto r = SpeculativeGenerate(*target, none, Tokens(20, 131, 1), o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(std::string(r.status().message()).find("cache holds 32"), std::string::npos) << r.status();
}

TEST(DraftVocab, HeadRestrictedToASubsetGivesThoseColumns) {
  for (const std::string scheme : {"", "int8", "int4-g32"}) {
    SCOPED_TRACE(scheme);
    LlamaModel m = Quantized(Random(Small(1), 11), scheme);
    auto full = NativeLlama::Create(m, 64).value();
    auto part = NativeLlama::Create(m, 64).value();
    TorchDecodeModel torch_part(m, 64);
    const std::vector<int64_t> ids = {7, 130, 0, 64, 65, 3, 99, 12, 13};
    ASSERT_TRUE(part->RestrictHead(ids).ok());
    ASSERT_TRUE(torch_part.RestrictHead(ids).ok());
    const auto prompt = Tokens(9, 131, 4);
    DecodeOptions all;
    all.logits_last = 0;
    const at::Tensor want = full->forward(prompt, all).index_select(1, torch::tensor(ids, torch::kInt64));
    const at::Tensor got = part->forward(prompt, all).clone();
    ASSERT_EQ(got.sizes(), want.sizes());
    EXPECT_LE((got - want).abs().max().item<double>(), 1e-5);
    EXPECT_EQ(torch_part.forward(prompt, all).sizes(), want.sizes());
  }
  auto n = NativeLlama::Create(Random(Small(1), 12), 16).value();
  EXPECT_FALSE(n->RestrictHead({1, 1}).ok());    // twice
  EXPECT_FALSE(n->RestrictHead({131}).ok());     // outside the vocabulary
  EXPECT_FALSE(n->RestrictHead({}).ok());
}

TEST(DraftVocab, ReducedAnArDrafterStaysExactAndDraftsOnlyItsSubset) {
  LlamaModel target_model = Random(Small(2), 6);
  auto target = NativeLlama::Create(target_model, 160).value();
  // The drafter is the target itself: with the full head it would guess every token.
  ArDrafter ar(NativeLlama::Create(target_model, 160).value(), "ar");
  NullDrafter none;
  auto prompt = Tokens(16, 131, 5);
  SpecOptions o;
  o.max_new = 40;
  o.sampling.temperature = 0;
  o.eos_id = -1;
  o.gamma = 0;
  auto base = SpeculativeGenerate(*target, none, prompt, o);
  ASSERT_TRUE(base.ok());
  // The subset: the tokens the target says most (what --draft-vocab would pick), minus one.
  std::vector<int64_t> counts(131, 0);
  for (int64_t t : base->tokens) ++counts[t];
  std::vector<int64_t> ranked = RankByCount(counts);
  std::vector<int64_t> ids(ranked.begin(), ranked.begin() + 8);
  const int64_t left_out = ids.back();
  ids.pop_back();
  ASSERT_TRUE(ar.SetDraftVocab(ids).ok());
  EXPECT_EQ(ar.draft_vocab(), 7);
  o.gamma = 4;
  auto spec = SpeculativeGenerate(*target, ar, prompt, o);
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(spec->tokens, base->tokens);
  EXPECT_GT(spec->stats.accepted, 0);
  // Every accepted token is in the subset, so a token outside it is never accepted.
  EXPECT_LT(spec->stats.accepted, static_cast<int64_t>(spec->tokens.size()));
  // Sampling: q is zero outside the subset and sums to 1 inside.
  Sampler sampler(3);
  SamplingParams sp{0.8, 0, 1.0};
  ar.Begin(prompt);
  Draft d = ar.Propose({prompt, 3, sp, sampler});
  ASSERT_EQ(d.probs.size(1), 131);
  for (int64_t i = 0; i < static_cast<int64_t>(d.tokens.size()); ++i) {
    EXPECT_NEAR(d.probs[i].sum().item<double>(), 1.0, 1e-5);
    EXPECT_EQ(d.probs[i][left_out].item<float>(), 0.f);
    EXPECT_GT(d.probs[i][d.tokens[i]].item<float>(), 0.f);
    EXPECT_NE(std::find(ids.begin(), ids.end(), d.tokens[i]), ids.end());
  }
}

TEST(DraftVocab, RankingFileRoundTripsAndBadFilesAreRefused) {
  EXPECT_EQ(RankByCount({0, 5, 2, 5, 0}), (std::vector<int64_t>{1, 3, 2, 0, 4}));
  const std::string dir = MakeTempDir("draft_vocab");
  EXPECT_FALSE(ReadDraftVocab(dir, 5).value().has_value());  // absent: none
  DraftVocab v;
  v.source = "t.h5";
  v.size = 2;
  v.ranked = {1, 3, 2, 0, 4};
  ASSERT_TRUE(WriteDraftVocab(dir, v).ok());
  auto back = ReadDraftVocab(dir, 5);
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_TRUE(back->has_value());
  EXPECT_EQ((*back)->Top(2), (std::vector<int64_t>{1, 3}));
  EXPECT_FALSE(ReadDraftVocab(dir, 6).ok());  // another vocabulary size
  v.ranked = {1, 3, 3, 0, 4};                 // not a permutation
  ASSERT_TRUE(WriteDraftVocab(dir, v).ok());
  auto bad = ReadDraftVocab(dir, 5);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(std::string(bad.status().message()).find("draft_vocab.json"), std::string::npos);
  ASSERT_TRUE(WriteFileAtomic(dir + "/draft_vocab.json", "{not json").ok());
  EXPECT_FALSE(ReadDraftVocab(dir, 5).ok());
  RemoveTree(dir);
}

// A checkpoint read straight into plain weights (no LibTorch module) runs exactly as the
// module it was saved from: fp32 (tied and untied, with attention bias, bf16 on disk) and
// quantized checkpoints, and RTN on load equals RTN of the module.
TEST(LlamaWeights, ReadFromACheckpointRunsAsTheModule) {
  const std::string dir = MakeTempDir("llama_weights");
  auto logits_of = [](DecodeModel& m) {
    DecodeOptions all;
    all.logits_last = 0;
    return m.forward(Tokens(11, 131, 8), all).clone();
  };
  for (bool tied : {true, false}) {
    ModelConfig c = Small(2);
    c.tie_word_embeddings = tied;
    c.architecture = tied ? "LlamaForCausalLM" : "Qwen2ForCausalLM";
    c.attention_bias = !tied;
    LlamaModel m = Random(c, 13);
    const std::string d = dir + (tied ? "/tied" : "/untied");
    ASSERT_TRUE(SaveCheckpoint(m, AugurMeta{}, d).ok());
    auto w = ReadLlamaWeights(d);
    ASSERT_TRUE(w.ok()) << w.status();
    auto from_file = NativeLlama::Create(std::move(*w), 32).value();
    auto from_module = NativeLlama::Create(m, 32).value();
    EXPECT_TRUE(BitEqual(logits_of(*from_file), logits_of(*from_module))) << "tied " << tied;

    auto wq = ReadLlamaWeights(d).value();
    ASSERT_TRUE(QuantizeWeightsRtn(wq, ParseScheme("int4-g32").value(), true).ok());
    auto q_file = NativeLlama::Create(std::move(wq), 32).value();
    auto q_module = NativeLlama::Create(Quantized(m, "int4-g32"), 32).value();
    EXPECT_EQ(q_file->precision(), "int4-g32");
    EXPECT_TRUE(BitEqual(logits_of(*q_file), logits_of(*q_module))) << "rtn on load, tied " << tied;
  }
  // Bad files: a tensor missing, an unexpected one, a wrong shape; each names the tensor.
  LlamaModel m = Random(Small(1), 14);
  const std::string bad = dir + "/bad";
  ASSERT_TRUE(SaveCheckpoint(m, AugurMeta{}, bad).ok());
  ModelConfig wider = Small(1);
  wider.intermediate_size = 192;
  ASSERT_TRUE(WriteFileAtomic(bad + "/config.json", wider.ToJson().dump()).ok());
  auto r = ReadLlamaWeights(bad);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(std::string(r.status().message()).find("mlp.gate_proj.weight has shape"), std::string::npos) << r.status();
  ModelConfig deeper = Small(2);
  ASSERT_TRUE(WriteFileAtomic(bad + "/config.json", deeper.ToJson().dump()).ok());
  r = ReadLlamaWeights(bad);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(std::string(r.status().message()).find("missing tensor model.layers.1."), std::string::npos) << r.status();
  EXPECT_FALSE(ReadLlamaWeights(dir + "/nothing").ok());
  RemoveTree(dir);
}

}  // namespace
}  // namespace augur
