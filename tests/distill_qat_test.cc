// Quantization-aware distillation (distill/qat.h, --qat on augur distill ar|nat): a short QAT
// run trains through fake-quantized linears (its weights differ from the same run without
// QAT), resumes exactly, refuses a changed scheme on resume, and exports a quantized drafter
// whose logits equal the fake-quant model's within 1e-4, whose augur.json keeps kind / gamma /
// mask id, whose held-out alpha equals the one training selected it by, and which runs as a
// drafter. Tiny random models in a temp dir; each test takes seconds.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <random>
#include <string>

#include "core/checkpoint.h"
#include "core/checkpoint_fingerprint.h"
#include "core/fs.h"
#include "core/sampling.h"
#include "distill/ar_distill.h"
#include "distill/nat_distill.h"
#include "distill/qat.h"
#include "distill/teacher_gen.h"
#include "eval/ar_drafter.h"
#include "eval/nat_drafter.h"
#include "quantize/fake_quant.h"
#include "runtime/kernels/kernels_cpu.h"
#include "runtime/qmodel.h"
#include "tests/tiny_model.h"
#include "tests/exact_kernels.h"

namespace augur::distill {
namespace {

[[maybe_unused]] const auto* const kExact = ::testing::AddGlobalTestEnvironment(new ExactKernels);

constexpr char kTok[] = "tok-Q-0123456789abcdef";
constexpr int64_t kMask = 4;

ModelConfig Config(int64_t hidden, int64_t layers) {
  ModelConfig c;
  c.vocab_size = 64;
  c.hidden_size = hidden;
  c.intermediate_size = 2 * hidden;
  c.num_hidden_layers = layers;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.max_position_embeddings = 96;
  c.eos_token_id = -1;
  return c;
}

class DistillQat : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    torch::set_num_threads(1);
    root_ = MakeTempDir("augur_distill_qat_");
    LlamaModel target(Config(32, 2));
    target->init_weights(1);
    {
      torch::NoGradGuard g;
      target->model->embed_tokens->weight.mul_(40.0);  // peaked: room for alpha to move
    }
    AugurMeta meta;
    meta.tokenizer_fingerprint = kTok;
    ASSERT_TRUE(SaveCheckpoint(target, meta, root_ + "/target").ok());
    PromptSet prompts;
    prompts.source = "test prompts";
    prompts.tokenizer_fingerprint = kTok;
    prompts.vocab_size = 64;
    std::mt19937_64 rng(7);
    for (int64_t i = 0; i < 32; ++i) {
      TeacherPrompt p;
      p.index = i;
      for (int j = 0; j < 8; ++j) p.tokens.push_back(5 + static_cast<int64_t>(rng() % 59));
      prompts.prompts.push_back(p);
    }
    TeacherGenOptions o;
    o.top_k = 8;
    o.max_new = 16;
    o.eos_id = -1;
    o.progress = false;
    o.target_fingerprint = *CheckpointFingerprint(root_ + "/target");
    o.target_tokenizer_fingerprint = kTok;
    ASSERT_TRUE(GenerateTeacherData(*target, prompts, root_ + "/teacher.h5", o).ok());
    // Student width 32: the int4 groups of 32 cover each input row exactly.
    ASSERT_TRUE(WriteFileAtomic(root_ + "/student.json", Config(32, 1).ToJson().dump()).ok());
  }
  static void TearDownTestSuite() { RemoveTree(root_); }

  static train::TrainOptions Train(const std::string& out, int64_t steps) {
    train::TrainOptions t;
    t.out_dir = root_ + "/" + out;
    t.steps = steps;
    t.batch = 4;
    t.seq_len = 16;
    t.lr = 1e-2;
    t.warmup = 1;
    t.eval_every = 2;  // several validations: out/best is a real selection
    t.save_every = 0;
    t.progress = false;
    t.seed = 3;
    return t;
  }
  static ArDistillOptions Ar(const std::string& out, const std::string& qat, int64_t steps = 6) {
    ArDistillOptions o;
    o.target = root_ + "/target";
    o.teacher = root_ + "/teacher.h5";
    o.student = root_ + "/student.json";
    o.eval_sequences = 6;
    o.qat = qat;
    o.train = Train(out, steps);
    return o;
  }
  static NatDistillOptions Nat(const std::string& out, const std::string& qat) {
    NatDistillOptions o;
    o.target = root_ + "/target";
    o.teacher = root_ + "/teacher.h5";
    o.student = root_ + "/student.json";
    o.gamma = 3;
    o.mask_id = kMask;
    o.groups_per_seq = 4;
    o.eval_sequences = 6;
    o.qat = qat;
    o.train = Train(out, 6);
    return o;
  }

  // Max |logits(quantized checkpoint) - logits(fake-quant fp32 source)| on random ids, and
  // the fake-quant model's distance from plain fp32 (so the comparison has teeth).
  static std::pair<double, double> CompareExport(const QatExport& q, const std::string& scheme) {
    auto quant = LoadQuantizedModel(q.dir, torch::kCPU, scheme);
    EXPECT_TRUE(quant.ok()) << quant.status();
    auto fp = LoadCheckpoint(q.source);
    EXPECT_TRUE(fp.ok()) << fp.status();
    if (!quant.ok() || !fp.ok()) return {1e9, 0};
    torch::NoGradGuard g;
    auto gen = at::make_generator<at::CPUGeneratorImpl>(11);
    const at::Tensor ids = at::randint(64, {2, 20}, gen, torch::kInt64);
    const at::Tensor fp32 = fp->model->logits(ids);
    EXPECT_TRUE(EnableFakeQuant(fp->model, scheme).ok());
    const at::Tensor fake = fp->model->logits(ids);
    const at::Tensor real = quant->model->logits(ids);
    return {(real - fake).abs().max().item<double>(), (fake - fp32).abs().max().item<double>()};
  }

  static std::string root_;
};
std::string DistillQat::root_;

TEST_F(DistillQat, ArExportEqualsFakeQuantModelAndKeepsTheSelectedAlpha) {
  auto r = DistillAr(Ar("ar_qat", "int4-g32"));
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_GE(r->best_step, 0);
  auto q = ExportQatDrafter(root_ + "/ar_qat", "int4-g32");
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(q->dir, root_ + "/ar_qat/quantized");
  EXPECT_EQ(q->source, root_ + "/ar_qat/best");
  EXPECT_EQ(q->step, r->best_step);

  const auto [err, fq_vs_fp32] = CompareExport(*q, "int4-g32");
  std::printf("ar int4-g32: max |quantized - fake-quant| %.3g, max |fake-quant - fp32| %.3g\n", err, fq_vs_fp32);
  EXPECT_LT(err, 1e-4);
  EXPECT_GT(fq_vs_fp32, 1e-3);

  // augur.json: a quantized ar-drafter made by QAT from best, with the target's provenance.
  auto meta_text = ReadFile(q->dir + "/augur.json");
  ASSERT_TRUE(meta_text.ok());
  const auto meta = nlohmann::json::parse(*meta_text);
  EXPECT_EQ(meta["kind"], "ar-drafter");
  EXPECT_EQ(meta["quantization"], "int4-g32");
  EXPECT_EQ(meta["extra"]["quantization"]["method"], "qat");
  EXPECT_EQ(meta["extra"]["qat"]["source"], root_ + "/ar_qat/best");

  // The held-out alpha of the exported drafter (--eval-only loads quantized checkpoints) is
  // the fake-quant alpha that chose best.
  ArDistillOptions ev = Ar("", "");
  ev.student = q->dir;
  ev.train.out_dir.clear();
  auto m = EvaluateAr(ev);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_NEAR(train::MetricOr(*m, "alpha", -1), r->best_value, 1e-4);

  // It runs as a drafter: greedy proposals are the quantized model's argmax chain.
  auto loaded = LoadAnyCheckpoint(q->dir);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ArDrafter drafter(loaded->model, 64);
  Sampler sampler(0);
  const std::vector<int64_t> ctx = {5, 9, 17, 33};
  ASSERT_TRUE(drafter.Begin(ctx).ok());
  const Draft d = drafter.Propose({ctx, 3, SamplingParams{0.0}, sampler});
  ASSERT_EQ(d.tokens.size(), 3u);
  torch::NoGradGuard g;
  std::vector<int64_t> seq = ctx;
  for (int64_t k = 0; k < 3; ++k) {
    const at::Tensor ids = torch::tensor(seq, torch::kInt64).view({1, -1});
    const int64_t next = loaded->model->logits(ids)[0][-1].argmax().item<int64_t>();
    EXPECT_EQ(d.tokens[k], next) << k;
    seq.push_back(next);
  }
}

TEST_F(DistillQat, QatTrainsThroughFakeQuantResumesExactlyAndKeepsItsScheme) {
  ASSERT_TRUE(DistillAr(Ar("plain", "", 4)).ok());
  ASSERT_TRUE(DistillAr(Ar("full", "int8", 4)).ok());
  // Same data, init and schedule: only the fake-quant forward differs.
  const double qat_vs_plain = tiny::MaxParamDiff(root_ + "/plain", root_ + "/full");
  std::printf("max |qat - plain| weight difference: %.3g\n", qat_vs_plain);
  EXPECT_GT(qat_vs_plain, 1e-5);

  ArDistillOptions half = Ar("half", "int8", 4);
  half.train.stop_after = 2;
  ASSERT_TRUE(DistillAr(half).ok());
  half.train.stop_after = 0;
  half.train.resume = true;
  auto second = DistillAr(half);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->start_step, 2);
  EXPECT_LT(tiny::MaxParamDiff(root_ + "/full", root_ + "/half"), 1e-6);
  EXPECT_LT(tiny::MaxParamDiff(root_ + "/full/best", root_ + "/half/best"), 1e-6);

  ArDistillOptions changed = Ar("half", "int4-g32", 6);
  changed.train.resume = true;
  auto refused = DistillAr(changed);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(std::string(refused.status().message()).find("qat=\"int8\""), std::string::npos) << refused.status();

  ArDistillOptions bad = Ar("bad", "int3");
  auto st = DistillAr(bad);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(std::string(st.status().message()).find("--qat int3"), std::string::npos) << st.status();
}

TEST_F(DistillQat, NatExportKeepsGammaAndMaskAndEqualsFakeQuantModel) {
  auto r = DistillNat(Nat("nat_qat", "int8"));
  ASSERT_TRUE(r.ok()) << r.status();
  auto q = ExportQatDrafter(root_ + "/nat_qat", "int8");
  ASSERT_TRUE(q.ok()) << q.status();
  const auto [err, fq_vs_fp32] = CompareExport(*q, "int8");
  std::printf("nat int8: max |quantized - fake-quant| %.3g, max |fake-quant - fp32| %.3g\n", err, fq_vs_fp32);
  EXPECT_LT(err, 1e-4);
  EXPECT_GT(fq_vs_fp32, 1e-5);

  auto loaded = LoadAnyCheckpoint(q->dir);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->meta.kind, "nat-drafter");
  EXPECT_EQ(loaded->meta.gamma, 3);
  EXPECT_EQ(loaded->meta.mask_token_id, kMask);
  EXPECT_EQ(loaded->meta.quantization, "int8");
  ASSERT_TRUE(CheckNatMeta(loaded->meta, loaded->model->config(), q->dir).ok());

  NatDistillOptions ev = Nat("", "");
  ev.student = q->dir;
  auto m = EvaluateNat(ev);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_NEAR(train::MetricOr(*m, "alpha", -1), r->best_value, 1e-4);

  NatDrafter drafter(loaded->model, loaded->meta.gamma, loaded->meta.mask_token_id, 64);
  Sampler sampler(0);
  const std::vector<int64_t> ctx = {5, 9, 17, 33};
  ASSERT_TRUE(drafter.Begin(ctx).ok());
  EXPECT_EQ(drafter.Propose({ctx, 3, SamplingParams{0.0}, sampler}).tokens.size(), 3u);
}

}  // namespace
}  // namespace augur::distill
