// The EAGLE-3 feature drafter end to end on tiny models: training-time test equals drafting
// (the unrolled step k at anchor t is exactly what drafting k tokens past t computes); the
// native engine equals the LibTorch module (fp32, int8, int4); checkpoints round-trip and bad
// ones are refused in one line; distillation raises held-out tau and resumes exactly; greedy
// speculative output with the drafter (chain and dynamic tree, both engines) equals the
// target's own; tree sampling keeps the target's distribution (chi-square).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <array>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "core/checkpoint.h"
#include "core/checkpoint_fingerprint.h"
#include "core/eagle_head.h"
#include "core/fs.h"
#include "core/h5.h"
#include "core/safetensors.h"
#include "distill/eagle_distill.h"
#include "distill/eagle_features.h"
#include "distill/teacher_gen.h"
#include "eval/drafter_registry.h"
#include "eval/eagle_drafter.h"
#include "eval/harness.h"
#include "eval/speculative.h"
#include "runtime/kernels/kernels_cpu.h"
#include "runtime/native_eagle.h"
#include "runtime/native_llama.h"
#include "tests/tiny_model.h"

namespace augur {
namespace {

constexpr char kTok[] = "tok-eagle-0123456789";

ModelConfig TargetConfig(int64_t vocab = 64) {
  ModelConfig c = tiny::Config(4, 32, vocab);
  c.max_position_embeddings = 128;
  return c;
}

// A random head for a target of `t`, scaled so its distributions are not flat.
EagleHead RandomHead(const ModelConfig& t, int64_t draft_vocab, uint64_t seed, const LlamaModel& target) {
  auto cfg = EagleConfig::ForTarget(t, {}, draft_vocab);
  EXPECT_TRUE(cfg.ok()) << cfg.status();
  EagleHead h(*cfg);
  h->init_weights(seed);
  torch::NoGradGuard g;
  for (auto& p : h->parameters())
    if (p.dim() == 2) p.mul_(4.0);
  if (draft_vocab < t.vocab_size) {
    std::vector<int64_t> ids;
    for (int64_t i = 0; i < draft_vocab; ++i) ids.push_back(i * t.vocab_size / draft_vocab);
    h->set_draft_ids(torch::tensor(ids, torch::kInt64));
  }
  h->set_embedding(target->model->embed_tokens->weight.detach());
  h->eval();
  return h;
}

// The target's taps of `ids` [1, L] concatenated: [1, L, 3d].
at::Tensor Taps(LlamaModel& target, const at::Tensor& ids, const std::vector<int64_t>& layers) {
  ForwardOptions fo;
  fo.hidden_layers = layers;
  return at::cat(target->forward(ids, nullptr, fo).hidden, -1);
}

double MaxRel(const at::Tensor& a, const at::Tensor& b) {
  return ((a - b).abs().max() / (b.abs().max() + 1e-12)).item<double>();
}

// The largest elementwise difference between the parameters of two saved eagle heads
// (infinity when either does not load).
double MaxHeadDiff(const std::string& dir_a, const std::string& dir_b) {
  auto a = LoadEagleHead(dir_a), b = LoadEagleHead(dir_b);
  EXPECT_TRUE(a.ok() && b.ok());
  if (!a.ok() || !b.ok()) return INFINITY;
  const auto pb = b->head->named_parameters();
  double diff = 0;
  for (const auto& p : a->head->named_parameters())
    diff = std::max(diff, (p.value() - pb[p.key()]).abs().max().item<double>());
  return diff;
}

class TempDir {
 public:
  TempDir() : path_(MakeTempDir("augur_eagle_test_")) {}
  ~TempDir() { RemoveTree(path_); }
  std::string sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

TEST(EagleHead, UnrolledStepsEqualDraftingOnTheDrafterOwnOutputs) {
  torch::NoGradGuard g;
  const ModelConfig tc = TargetConfig();
  LlamaModel target = tiny::Random(tc, 1, 3.0);
  EagleHead head = RandomHead(tc, 40, 2, target);
  const int64_t L = 12, K = 4;
  const at::Tensor ids = tiny::Ids(1, L, tc.vocab_size, 3);
  const at::Tensor taps = Taps(target, ids, head->config().target_layers);
  const std::vector<at::Tensor> unrolled = head->Unroll(ids, taps, K);
  ASSERT_EQ(unrolled.size(), static_cast<size_t>(K));
  for (int64_t t = 0; t + K + 1 < L; ++t) {
    // Drafting from anchor t: the verified pairs 0..t, then K-1 steps on the drafter's outputs,
    // each reading the next true token (the training-time test's teacher-forced tokens).
    KVCache cache = NewEagleCache(*head, 64);
    const at::Tensor tok = ids.narrow(1, 1, t + 1);
    at::Tensor out = head->Step(tok, head->Fuse(taps.narrow(1, 0, t + 1)), at::arange(t + 1), &cache);
    at::Tensor g_prev = out.narrow(1, t, 1);
    EXPECT_LT(MaxRel(head->Logits(g_prev)[0][0], unrolled[0][0][t]), 1e-5) << "anchor " << t << " step 0";
    for (int64_t k = 1; k < K; ++k) {
      const at::Tensor next = ids.narrow(1, t + 1 + k, 1);
      g_prev = head->Step(next, g_prev, torch::tensor({t + k}), &cache);
      EXPECT_LT(MaxRel(head->Logits(g_prev)[0][0], unrolled[k][0][t]), 1e-5) << "anchor " << t << " step " << k;
    }
  }
}

// Runs the same sequence of pair batches (a prefill, chain steps, a tree step with a mask that
// hides a cached branch) through two decoders; returns the largest relative difference of the
// outputs and logits.
double CompareDecoders(EagleDecoder& a, EagleDecoder& b, const at::Tensor& taps, const std::vector<int64_t>& tokens) {
  double worst = 0;
  auto both = [&](const std::vector<int64_t>& tok, const at::Tensor& g, bool fuse, const std::vector<int64_t>& pos,
                  const at::Tensor& mask) {
    at::Tensor la, lb;
    const at::Tensor oa = a.Step(tok, g, fuse, pos, mask, &la).clone();
    const at::Tensor ob = b.Step(tok, g, fuse, pos, mask, &lb).clone();
    worst = std::max({worst, MaxRel(oa, ob), MaxRel(la, lb)});
    return oa;
  };
  const int64_t n = taps.size(0);
  std::vector<int64_t> pre(tokens.begin(), tokens.begin() + n);
  at::Tensor out = both(pre, taps, true, {}, {});
  at::Tensor g = out.narrow(0, n - 1, 1).clone();
  for (int i = 0; i < 3; ++i) g = both({tokens[n + i]}, g, false, {}, {}).clone();
  // A tree step: 3 pairs at depth 1..2 whose rows see the prefix, not the chain just drafted.
  a.truncate(n);
  b.truncate(n);
  const int64_t past = a.length();
  at::Tensor mask = at::zeros({3, past + 3}, torch::kBool);
  mask.narrow(1, 0, n).fill_(true);
  mask[0][past] = mask[1][past + 1] = true;
  mask[2][past + 1] = mask[2][past + 2] = true;  // node 2 is node 1's child
  both({tokens[1], tokens[2], tokens[3]}, at::cat({g, g, g}, 0), false, {n, n, n + 1}, mask);
  return worst;
}

TEST(NativeEagle, MatchesTheLibTorchModuleInFp32) {
  torch::NoGradGuard g;
  const ModelConfig tc = TargetConfig();
  LlamaModel target = tiny::Random(tc, 4, 3.0);
  EagleHead head = RandomHead(tc, 48, 5, target);
  const at::Tensor ids = tiny::Ids(1, 16, tc.vocab_size, 6);
  const at::Tensor taps = Taps(target, ids, head->config().target_layers)[0].narrow(0, 0, 10);
  std::vector<int64_t> tokens(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + 16);
  auto native = NativeEagle::Create(*head, "", 64);
  ASSERT_TRUE(native.ok()) << native.status();
  TorchEagleDecoder torch_dec(head, 64);
  EXPECT_LT(CompareDecoders(**native, torch_dec, taps, tokens), 1e-4);
  EXPECT_EQ((*native)->precision(), "fp32");
}

TEST(NativeEagle, QuantizedMatchesTheModuleOnDequantizedWeights) {
  torch::NoGradGuard g;
  const ModelConfig tc = TargetConfig();
  LlamaModel target = tiny::Random(tc, 7, 3.0);
  const at::Tensor ids = tiny::Ids(1, 16, tc.vocab_size, 8);
  std::vector<int64_t> tokens(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + 16);
  // Float activations, so the only difference from the module is the weights' rounding.
  qkernels::SetDefaultCpuKernel(qkernels::CpuKernel::kAvx2);
  for (const char* scheme : {"int8", "int4-g32"}) {
    EagleHead head = RandomHead(tc, 48, 9, target);
    const at::Tensor taps = Taps(target, ids, head->config().target_layers)[0].narrow(0, 0, 10);
    auto native = NativeEagle::Create(*head, scheme, 64);
    ASSERT_TRUE(native.ok()) << native.status();
    EXPECT_EQ((*native)->precision(), scheme);
    auto parsed = ParseScheme(scheme);
    ASSERT_TRUE(parsed.ok());
    for (auto& p : head->named_parameters())
      if (p.value().dim() == 2) p.value().copy_(Dequantize(QuantizeRtn(p.value(), *parsed)));
    TorchEagleDecoder torch_dec(head, 64);
    EXPECT_LT(CompareDecoders(**native, torch_dec, taps, tokens), 1e-4) << scheme;
  }
  qkernels::SetDefaultCpuKernel(qkernels::CpuKernel::kAuto);
}

TEST(EagleCheckpoint, RoundTripsInTheServingLayoutAndRefusesBadFiles) {
  torch::NoGradGuard g;
  TempDir dir;
  const ModelConfig tc = TargetConfig();
  LlamaModel target = tiny::Random(tc, 10);
  EagleHead head = RandomHead(tc, 20, 11, target);
  AugurMeta meta;
  meta.tokenizer_fingerprint = kTok;
  ASSERT_TRUE(SaveEagleHead(*head, meta, dir.sub("e")).ok());
  auto st = SafetensorsCheckpoint::Open(dir.sub("e"));
  ASSERT_TRUE(st.ok());
  const std::vector<std::string> expected = {
      "d2t", "fc.weight", "lm_head.weight", "midlayer.hidden_norm.weight", "midlayer.input_layernorm.weight",
      "midlayer.mlp.down_proj.weight", "midlayer.mlp.gate_proj.weight", "midlayer.mlp.up_proj.weight",
      "midlayer.post_attention_layernorm.weight", "midlayer.self_attn.k_proj.weight", "midlayer.self_attn.o_proj.weight",
      "midlayer.self_attn.q_proj.weight", "midlayer.self_attn.v_proj.weight", "norm.weight", "t2d"};
  EXPECT_EQ(st->names(), expected);
  EXPECT_EQ(st->Find("d2t")->dtype, StDtype::kI64);
  EXPECT_EQ(st->Find("t2d")->dtype, StDtype::kBool);
  EXPECT_EQ(st->Find("midlayer.self_attn.q_proj.weight")->shape, (std::vector<int64_t>{32, 64}));
  EXPECT_EQ(st->Find("fc.weight")->shape, (std::vector<int64_t>{32, 96}));
  auto cfg = EagleConfig::FromFile(dir.sub("e/config.json"));
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->ToJson(), head->config().ToJson());
  auto back = LoadEagleHead(dir.sub("e"));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->meta.kind, kKindEagleDrafter);
  EXPECT_TRUE(torch::equal(back->head->draft_ids(), head->draft_ids()));
  const auto src = head->named_parameters();
  for (const auto& p : back->head->named_parameters()) EXPECT_TRUE(torch::equal(p.value(), src[p.key()])) << p.key();

  // Bad files, each refused in one line naming the problem.
  auto rewrite = [&](const std::string& name, const std::function<void(NamedTensors&)>& edit) {
    RemoveTree(dir.sub(name));
    ASSERT_TRUE(SaveEagleHead(*head, meta, dir.sub(name)).ok());
    NamedTensors t = EagleTensors(*head);
    edit(t);
    ASSERT_TRUE(WriteSafetensors(dir.sub(name + "/model.safetensors"), t).ok());
  };
  auto refused = [&](const std::string& name, const std::string& needle) {
    auto r = LoadEagleHead(dir.sub(name));
    ASSERT_FALSE(r.ok()) << name;
    const std::string msg(r.status().message());
    EXPECT_NE(msg.find(needle), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  };
  rewrite("missing", [](NamedTensors& t) { t.erase(t.begin()); });
  refused("missing", "has no tensor fc.weight");
  rewrite("shape", [](NamedTensors& t) { t[0].second = torch::zeros({3, 3}); });
  refused("shape", "config.json says");
  rewrite("d2t", [](NamedTensors& t) {
    for (auto& [n, v] : t)
      if (n == "d2t") v[0] = 1000;
  });
  refused("d2t", "outside the target vocabulary");
  rewrite("t2d", [](NamedTensors& t) {
    for (auto& [n, v] : t)
      if (n == "t2d") v.fill_(true);
  });
  refused("t2d", "t2d does not mark exactly");
  rewrite("extra", [](NamedTensors& t) { t.emplace_back("stray.weight", torch::zeros({2})); });
  refused("extra", "unexpected tensor stray.weight");
  auto other = EagleHead(*EagleConfig::ForTarget(TargetConfig(80), {}, 20));
  EXPECT_FALSE(other->config().CheckTarget(tc, "eagle:x").ok());
  EXPECT_TRUE(head->config().CheckTarget(tc, "eagle:x").ok());
}

// ---- distillation and the engine ---------------------------------------------------------------

class EagleDistillTest : public ::testing::Test {
 protected:
  void SetUp() override {
    torch::set_num_threads(1);
    LlamaModel m = tiny::Random(TargetConfig(), 21, 1.0);
    {
      torch::NoGradGuard g;
      m->model->embed_tokens->weight.mul_(30.0);
    }
    AugurMeta meta;
    meta.tokenizer_fingerprint = kTok;
    ASSERT_TRUE(SaveCheckpoint(m, meta, dir_.sub("target")).ok());
    auto target = LoadCheckpoint(dir_.sub("target"));
    ASSERT_TRUE(target.ok());
    distill::PromptSet prompts;
    prompts.source = "test prompts";
    prompts.tokenizer_fingerprint = kTok;
    prompts.vocab_size = 64;
    std::mt19937_64 rng(5);
    for (int64_t i = 0; i < 48; ++i) {
      distill::TeacherPrompt p;
      p.index = i;
      for (int j = 0; j < 6; ++j) p.tokens.push_back(static_cast<int64_t>(rng() % 64));
      prompts.prompts.push_back(p);
    }
    distill::TeacherGenOptions o;
    o.top_k = 8;
    o.max_new = 24;
    o.eos_id = -1;
    o.progress = false;
    o.target_fingerprint = *CheckpointFingerprint(dir_.sub("target"));
    o.target_tokenizer_fingerprint = kTok;
    ASSERT_TRUE(distill::GenerateTeacherData(*target->model, prompts, dir_.sub("teacher.h5"), o).ok());
  }
  distill::EagleDistillOptions Options(const std::string& out, int64_t steps) const {
    distill::EagleDistillOptions o;
    o.target = dir_.sub("target");
    o.teacher = dir_.sub("teacher.h5");
    o.draft_vocab = 48;
    o.ttt_steps = 3;
    o.eval_sequences = 8;
    o.train.out_dir = dir_.sub(out);
    o.train.steps = steps;
    o.train.batch = 8;
    o.train.seq_len = 24;
    o.train.lr = 1e-2;
    o.train.warmup = 2;
    o.train.eval_every = 0;
    o.train.save_every = 0;
    o.train.progress = false;
    o.train.seed = 3;
    return o;
  }
  TempDir dir_;
};

TEST_F(EagleDistillTest, RaisesHeldOutTauResumesExactlyAndDraftsExactly) {
  auto before = distill::DistillEagle(Options("zero", 1));
  ASSERT_TRUE(before.ok()) << before.status();
  auto trained = distill::DistillEagle(Options("eagle", 60));
  ASSERT_TRUE(trained.ok()) << trained.status();
  const double tau0 = train::MetricOr(before->valid_metrics, "tau", 0);
  const double tau = train::MetricOr(trained->valid_metrics, "tau", 0);
  EXPECT_GT(tau, tau0 + 0.3) << "tau before " << tau0 << " after " << tau;
  EXPECT_GT(train::MetricOr(trained->valid_metrics, "acc_0", 0), 0.5);
  EXPECT_TRUE(FileExists(dir_.sub("eagle/best/model.safetensors")));

  // 30 steps, then a resume to 60: the same weights as the uninterrupted run.
  auto half = Options("resumed", 60);
  half.train.stop_after = 30;
  ASSERT_TRUE(distill::DistillEagle(half).ok());
  auto rest = Options("resumed", 60);
  rest.train.resume = true;
  ASSERT_TRUE(distill::DistillEagle(rest).ok());
  EXPECT_LT(MaxHeadDiff(dir_.sub("eagle"), dir_.sub("resumed")), 1e-6);

  // Greedy speculative output equals the target's own: chain and tree, native and LibTorch.
  torch::NoGradGuard g;
  auto target = LoadCheckpoint(dir_.sub("target"));
  ASSERT_TRUE(target.ok());
  DrafterContext ctx;
  ctx.target_config = &target->model->config();
  ctx.target_dir = dir_.sub("target");
  ctx.target_tokenizer_fingerprint = kTok;
  ctx.capacity = 100;
  int64_t accepted = 0, proposed = 0;
  for (const std::string opt : {"", ",engine=torch", ",tree", ",tree,topk=3,nodes=8,engine=torch"}) {
    const std::string spec = "eagle:" + dir_.sub("eagle") + opt;
    ASSERT_EQ(DrafterSpecIsTree(spec), opt.find("tree") != std::string::npos);
    auto d = MakeDrafter(spec, ctx);
    ASSERT_TRUE(d.ok()) << d.status();
    for (uint64_t seed = 0; seed < 4; ++seed) {
      const std::vector<int64_t> prompt = tiny::Prompt(7, 40 + seed, 64);
      SpecOptions so;
      so.gamma = 4;
      so.max_new = 30;
      so.eos_id = -1;
      so.tree_max_nodes = 32;
      auto native = NativeLlama::Create(target->model, 160);
      ASSERT_TRUE(native.ok());
      GenerateOptions go;
      go.max_new = 30;
      go.eos_id = -1;
      auto ref = Generate(**native, prompt, go);
      ASSERT_TRUE(ref.ok());
      auto* set = dynamic_cast<DrafterSet*>(d->get());
      auto r = set != nullptr ? SpeculativeGenerateTree(**native, set->members(), prompt, so)
                              : SpeculativeGenerate(**native, **d, prompt, so);
      ASSERT_TRUE(r.ok()) << r.status();
      EXPECT_EQ(r->tokens, ref->tokens) << spec << " prompt " << seed;
      accepted += r->stats.accepted;
      proposed += r->stats.proposed;
    }
  }
  EXPECT_GT(accepted, proposed / 3) << accepted << " of " << proposed;

  // A target of another shape is refused in one line.
  LlamaModel wrong = tiny::Random(tiny::Config(3, 32, 64), 1);
  ASSERT_TRUE(SaveCheckpoint(wrong, AugurMeta{}, dir_.sub("wrong")).ok());
  ModelConfig wcfg = wrong->config();
  ctx.target_config = &wcfg;
  ctx.target_dir = dir_.sub("wrong");
  auto refused = MakeDrafter("eagle:" + dir_.sub("eagle"), ctx);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(std::string(refused.status().message()).find("made for a target"), std::string::npos);
}

// --cache-features: the cache holds the target's rows with the whole sequence as context (what
// online training computes), trains as online does (first-step loss within fp16 rounding when
// the cache keeps the whole vocabulary), resumes exactly, and refuses a cache made from
// anything else or a corrupt one, in one line.
TEST_F(EagleDistillTest, FeatureCacheHoldsTheTargetRowsTrainsAsOnlineAndRefusesOthers) {
  const std::string cache_path = dir_.sub("features.h5");
  auto cached = Options("cached", 60);
  cached.cache_features = cache_path;
  cached.cache_topk = 64;  // the whole tiny vocabulary: labels equal online's
  auto first = distill::DistillEagle(cached);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(FileExists(cache_path));
  auto zero = distill::DistillEagle(Options("zero", 1));
  ASSERT_TRUE(zero.ok()) << zero.status();
  EXPECT_GT(train::MetricOr(first->valid_metrics, "tau", 0), train::MetricOr(zero->valid_metrics, "tau", 0) + 0.3);

  // The first step's loss, online and cached: the same windows, the same labels; only the
  // float16 taps differ.
  auto online1 = distill::DistillEagle(Options("online1", 1));
  auto cached1_opts = Options("cached1", 1);
  cached1_opts.cache_features = cache_path;
  cached1_opts.cache_topk = 64;
  auto cached1 = distill::DistillEagle(cached1_opts);
  ASSERT_TRUE(online1.ok() && cached1.ok());
  EXPECT_NEAR(cached1->losses.at(0), online1->losses.at(0), 2e-3 * online1->losses.at(0));

  // The rows themselves: a whole-sequence target forward, read back in full and as a slice.
  auto store = TeacherStore::Open(dir_.sub("teacher.h5"));
  auto target = LoadCheckpoint(dir_.sub("target"));
  ASSERT_TRUE(store.ok() && target.ok());
  auto head = LoadEagleHead(dir_.sub("cached"));
  ASSERT_TRUE(head.ok()) << head.status();
  distill::FeatureCacheKey key;
  key.target_fingerprint = *CheckpointFingerprint(dir_.sub("target"));
  key.teacher_hash = *distill::TeacherTokensHash(**store);
  key.layers = head->head->config().target_layers;
  key.hidden = 32;
  key.vocab = 64;
  key.top_k = 64;
  auto cache = distill::FeatureCache::Open(cache_path, key, **store);
  ASSERT_TRUE(cache.ok()) << cache.status();
  for (int64_t s : {int64_t{0}, (*store)->num_sequences() - 1}) {
    torch::NoGradGuard no_grad;
    auto seq = (*store)->Read(s);
    ASSERT_TRUE(seq.ok());
    const int64_t L = seq->length();
    const at::Tensor ids =
        torch::tensor(std::vector<int64_t>(seq->tokens.begin(), seq->tokens.end()), torch::kInt64).reshape({1, L});
    const at::Tensor taps = Taps(target->model, ids, key.layers)[0];
    const at::Tensor logp = at::log_softmax(target->model->logits(ids)[0], -1);
    auto rows = (*cache)->Read(s, 0, L);
    ASSERT_TRUE(rows.ok()) << rows.status();
    EXPECT_LT(MaxRel(rows->taps, taps), 1e-3) << "sequence " << s;  // float16
    EXPECT_TRUE(rows->greedy.equal(logp.argmax(-1))) << "sequence " << s;
    EXPECT_LT((rows->topk_logp - std::get<0>(logp.topk(64, -1))).abs().max().item<double>(), 1e-5);
    auto slice = (*cache)->Read(s, 5, 4);
    ASSERT_TRUE(slice.ok());
    EXPECT_TRUE(slice->taps.equal(rows->taps.narrow(0, 5, 4)));
    EXPECT_TRUE(slice->topk_ids.equal(rows->topk_ids.narrow(0, 5, 4)));
    EXPECT_FALSE((*cache)->Read(s, L - 2, 3).ok());
  }

  // Resume from the cache: 30 steps, then to 60, equal to the uninterrupted cached run.
  auto half = cached;
  half.train.out_dir = dir_.sub("cached-resumed");
  half.train.stop_after = 30;
  auto halfway = distill::DistillEagle(half);
  ASSERT_TRUE(halfway.ok()) << halfway.status();
  auto rest = cached;
  rest.train.out_dir = dir_.sub("cached-resumed");
  rest.train.resume = true;
  ASSERT_TRUE(distill::DistillEagle(rest).ok());
  EXPECT_LT(MaxHeadDiff(dir_.sub("cached"), dir_.sub("cached-resumed")), 1e-6);

  // Refused, each in one line naming the file: other layers, another k, not a cache, a cache
  // whose offsets or ids (in the last, held-out sequence, read by validation) were tampered with.
  auto refused = [&](distill::EagleDistillOptions o, const std::string& path, const std::string& want) {
    o.cache_features = path;
    auto r = distill::DistillEagle(o);
    ASSERT_FALSE(r.ok()) << want;
    const std::string msg(r.status().message());
    EXPECT_NE(msg.find(want), std::string::npos) << msg;
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  };
  auto other_layers = Options("x1", 1);
  other_layers.layers = {1, 2, 3};
  other_layers.cache_topk = 64;
  refused(other_layers, cache_path, "holds layers");
  refused(Options("x2", 1), cache_path, "--cache-topk 32");
  ASSERT_TRUE(WriteFileAtomic(dir_.sub("not-a-cache.h5"), "plain text").ok());
  refused(Options("x3", 1), dir_.sub("not-a-cache.h5"), "not-a-cache.h5");
  auto bytes = ReadFile(cache_path);
  ASSERT_TRUE(bytes.ok());
  for (const char* dataset : {"offsets", "topk_ids"}) {
    const std::string bad = dir_.sub(std::string("bad-") + dataset + ".h5");
    ASSERT_TRUE(WriteFileAtomic(bad, *bytes).ok());
    {
      auto f = h5::File::Open(bad, /*writable=*/true);
      ASSERT_TRUE(f.ok());
      auto ds = h5::Dataset::Open(f->id(), dataset);
      ASSERT_TRUE(ds.ok());
      const int32_t huge = 1 << 30;
      const int64_t last_row = (*store)->sequence_offset((*store)->num_sequences() - 1);  // its first row
      const int64_t wrong = 3;
      ASSERT_TRUE((std::string(dataset) == "offsets" ? ds->WriteRows(1, 1, h5::DType::kI64, &wrong)
                                                     : ds->WriteRows(last_row, 1, h5::DType::kI32, &huge))
                      .ok());
      ASSERT_TRUE(f->Close().ok());
    }
    auto o = Options(std::string("x-") + dataset, 1);
    o.cache_topk = 64;
    refused(o, bad, std::string(dataset) == "offsets" ? "disagrees with the teacher store" : "outside the vocabulary");
  }
}

// chi-square survival function with 3 degrees of freedom.
double ChiSquareSf3(double x) { return std::erfc(std::sqrt(x / 2)) + std::sqrt(2 * x / M_PI) * std::exp(-x / 2); }

// Tree sampling with the eagle drafter's dynamic tree (deterministic nodes, one-hot draws):
// the first three tokens follow the target's exact marginals.
TEST(EagleSpeculative, TreeSamplingReproducesTheTargetMarginals) {
  torch::NoGradGuard no_grad;
  ModelConfig tc = tiny::Config(3, 32, 4);
  tc.max_position_embeddings = 64;
  LlamaModel target = tiny::Random(tc, 31, 4.0);
  EagleHead head = RandomHead(tc, 4, 32, target);
  const std::vector<int64_t> prompt = {1, 3, 0, 2, 1, 3};
  SamplingParams sp;
  sp.temperature = 1.0;
  auto probs = [&](const std::vector<int64_t>& ctx) {
    const at::Tensor l = target->logits(torch::tensor(ctx, torch::kInt64).view({1, -1}))[0][-1];
    return SamplingProbs(l, sp).to(at::kDouble);
  };
  const at::Tensor p1 = probs(prompt);
  std::vector<at::Tensor> marginal = {p1, at::zeros({4}, at::kDouble), at::zeros({4}, at::kDouble)};
  for (int64_t x = 0; x < 4; ++x) {
    std::vector<int64_t> cx = prompt;
    cx.push_back(x);
    const at::Tensor p2 = probs(cx);
    marginal[1] += p1[x] * p2;
    for (int64_t y = 0; y < 4; ++y) {
      std::vector<int64_t> cxy = cx;
      cxy.push_back(y);
      marginal[2] += p1[x] * p2[y] * probs(cxy);
    }
  }
  auto native = NativeEagle::Create(*head, "", 64);
  ASSERT_TRUE(native.ok());
  EagleDrafter drafter(std::move(native).value(), "eagle", {2, 4});
  SpecOptions so;
  so.gamma = 2;
  so.max_new = 3;
  so.sampling = sp;
  so.eos_id = -1;
  so.tree_max_nodes = 8;
  const int64_t n = 3000;
  std::vector<std::array<int64_t, 4>> counts(3, {0, 0, 0, 0});
  int64_t accepted = 0;
  for (int64_t trial = 0; trial < n; ++trial) {
    so.seed = 5000 + trial;
    auto r = SpeculativeGenerateTree(*target, {&drafter}, prompt, so);
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->tokens.size(), 3u);
    for (int pos = 0; pos < 3; ++pos) ++counts[pos][r->tokens[pos]];
    accepted += r->stats.accepted;
  }
  EXPECT_GT(accepted, n / 4);  // the tree's branches are taken, so acceptance paths are exercised
  for (int pos = 0; pos < 3; ++pos) {
    double x2 = 0;
    for (int x = 0; x < 4; ++x) {
      const double expected = n * marginal[pos][x].item<double>();
      x2 += (counts[pos][x] - expected) * (counts[pos][x] - expected) / expected;
    }
    EXPECT_GT(ChiSquareSf3(x2), 0.001) << "position " << pos << " chi2 " << x2;
  }
}

}  // namespace
}  // namespace augur
