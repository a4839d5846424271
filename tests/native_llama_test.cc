// The native CPU decode runtime (runtime/native_llama.h) against its reference, LlamaModel's
// KV-cache forward through LibTorch (runtime/decode_model.h TorchDecodeModel), on tiny random
// models: fp32 (GQA, MHA, tied and untied head, attention bias, Mistral's window), prefill then
// one-token steps, rollback, NAT positions + mask, and int8/int4 models with the same packed
// kernels on both sides. Plus the fp32 kernels against their scalar references, refusals, and
// the AR / NAT drafters drafting the same greedy tokens on either engine.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "eval/ar_drafter.h"
#include "eval/nat_drafter.h"
#include "eval/nat_layout.h"
#include "runtime/kernels/kernels_f32.h"
#include "runtime/native_llama.h"
#include "runtime/qlinear.h"
#include "runtime/qmodel.h"
#include "quantize/quantize_model.h"

namespace augur {
namespace {

ModelConfig Tiny(const std::string& arch = "LlamaForCausalLM", bool tied = true, int64_t kv_heads = 2) {
  ModelConfig c;
  c.architecture = arch;
  c.vocab_size = 97;
  c.hidden_size = 64;
  c.intermediate_size = 96;  // not a multiple of 64: int4 pads down_proj's input
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = kv_heads;
  c.max_position_embeddings = 128;
  c.rope_theta = 500.0;  // fast-turning rotations, so position errors would show
  c.tie_word_embeddings = tied;
  c.attention_bias = arch == "Qwen2ForCausalLM";
  return c;
}

LlamaModel Random(const ModelConfig& c, uint64_t seed = 7, double scale = 2.5) {
  LlamaModel m(c);
  m->init_weights(seed);
  torch::NoGradGuard g;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed + 100);
  for (auto& p : m->named_parameters()) {
    p.value().mul_(scale);  // logits of order 1
    // Biases and norm weights away from their init (0 and 1), so that a dropped one shows.
    if (p.key().find("norm") != std::string::npos || p.key().find("bias") != std::string::npos)
      p.value().add_(at::randn(p.value().sizes(), gen) * 0.1);
  }
  m->eval();
  return m;
}

std::vector<int64_t> Tokens(int64_t n, int64_t vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int64_t> out(n);
  for (auto& t : out) t = static_cast<int64_t>(rng() % vocab);
  return out;
}

// max |a - b| <= tol * max(1, max |b|): fp32 summation order differs (MKL vs our kernels), so
// the bound is relative to the logit scale.
void ExpectClose(const at::Tensor& native, const at::Tensor& ref, double tol, const std::string& what) {
  ASSERT_EQ(native.sizes(), ref.sizes()) << what;
  const double scale = std::max(1.0, ref.abs().max().item<double>());
  const double diff = (native - ref).abs().max().item<double>();
  EXPECT_LE(diff, tol * scale) << what << ": max |diff| " << diff << " at logit scale " << scale;
}

constexpr double kFp32Tol = 1e-4;

std::unique_ptr<NativeLlama> Native(LlamaModel m, int64_t capacity) {
  auto n = NativeLlama::Create(m, capacity);
  EXPECT_TRUE(n.ok()) << n.status();
  return n.ok() ? std::move(n).value() : nullptr;
}

// Prefill `prompt` (all logits), then `steps` one-token steps, both engines, same tokens. The
// 9-token prefill runs once on the row-tiled kernels (gemm_rows 0 = never ATen's GEMM) and once
// on the GEMM route (from 8 rows here; the defaults, runtime/qlinear.h, take it only from 64 rows
// or never), on both engines alike.
void CompareDecode(LlamaModel m, double tol, const std::string& what) {
  const int64_t v = m->config().vocab_size;
  for (int64_t gemm_rows : {int64_t{0}, int64_t{8}}) {
    SetDequantGemmMinRows(gemm_rows);
    const std::string label = what + " (gemm rows " + std::to_string(gemm_rows) + ")";
    TorchDecodeModel ref(m, 32);
    auto native = Native(m, 32);
    ASSERT_NE(native, nullptr);
    const auto prompt = Tokens(9, v, 1);
    DecodeOptions all;
    all.logits_last = 0;
    all.prefill = true;  // the native engine may take the GEMM route only in a prefill
    ExpectClose(native->forward(prompt, all), ref.forward(prompt, all), tol, label + " prefill");
    for (int64_t s = 0; s < 6; ++s) {
      const std::vector<int64_t> tok = {Tokens(1, v, 10 + s)[0]};
      ExpectClose(native->forward(tok), ref.forward(tok), tol, label + " step " + std::to_string(s));
    }
    EXPECT_EQ(native->length(), ref.length());
  }
  SetDequantGemmMinRows(-1);  // back to the default of the kernel in use
}

TEST(NativeLlama, Fp32MatchesTorchGqaTiedHead) { CompareDecode(Random(Tiny()), kFp32Tol, "gqa tied"); }
TEST(NativeLlama, Fp32MatchesTorchUntiedHead) {
  CompareDecode(Random(Tiny("LlamaForCausalLM", false)), kFp32Tol, "untied");
}
TEST(NativeLlama, Fp32MatchesTorchMultiHeadAttention) {
  CompareDecode(Random(Tiny("LlamaForCausalLM", true, 4)), kFp32Tol, "mha");
}
TEST(NativeLlama, Fp32MatchesTorchQwen2Bias) {
  CompareDecode(Random(Tiny("Qwen2ForCausalLM", false)), kFp32Tol, "qwen2 q/k/v bias");
}
TEST(NativeLlama, Fp32MatchesTorchLlamaBiasOnEveryProjection) {
  ModelConfig c = Tiny();
  c.attention_bias = true;  // Llama: o_proj gets one too
  CompareDecode(Random(c), kFp32Tol, "llama attention_bias");
}
TEST(NativeLlama, Fp32MatchesTorchExplicitHeadDim) {
  ModelConfig c = Tiny();
  c.head_dim = 24;  // H*D = 96 != hidden 64
  CompareDecode(Random(c), kFp32Tol, "head_dim 24");
}
TEST(NativeLlama, Fp32MatchesTorchSlidingWindow) {
  ModelConfig c = Tiny("MistralForCausalLM");
  c.sliding_window = 5;  // the 9-token prefill and the steps all cross it
  CompareDecode(Random(c), kFp32Tol, "mistral window 5");
}

TEST(NativeLlama, TruncateThenRefeedMatchesTorch) {
  LlamaModel m = Random(Tiny());
  TorchDecodeModel ref(m, 32);
  auto native = Native(m, 32);
  ASSERT_NE(native, nullptr);
  const auto prompt = Tokens(12, 97, 2);
  native->forward(prompt);
  ref.forward(prompt);
  // Roll back over a rejected draft and feed another continuation (the drafters' pattern).
  native->truncate(7);
  ref.truncate(7);
  const auto more = Tokens(3, 97, 3);
  DecodeOptions all;
  all.logits_last = 0;
  ExpectClose(native->forward(more, all), ref.forward(more, all), kFp32Tol, "after truncate");
  EXPECT_EQ(native->length(), 10);
  // A reset forgets everything: the same prompt gives the same logits as a fresh model.
  native->reset();
  auto fresh = Native(m, 32);
  ExpectClose(native->forward(prompt), fresh->forward(prompt).clone(), 0.0, "after reset");
}

TEST(NativeLlama, NatPositionsAndMaskMatchTorch) {
  LlamaModel m = Random(Tiny());
  const int64_t mask_id = 4, gamma = 4;
  TorchDecodeModel ref(m, 40);
  auto native = Native(m, 40);
  ASSERT_NE(native, nullptr);
  auto context = Tokens(6, 97, 4);
  for (int round = 0; round < 3; ++round) {
    // As NatDrafter: cached real tokens, the uncached ones + gamma-1 masks in one forward.
    const int64_t cached = native->length();
    const std::vector<int64_t> real(context.begin() + cached, context.end());
    const NatInput in = NatDraftInput(real, cached, gamma, mask_id);
    DecodeOptions o;
    o.positions = in.positions;
    o.attn_mask = in.attn_mask;
    o.logits_last = gamma;
    ExpectClose(native->forward(in.ids, o), ref.forward(in.ids, o), kFp32Tol, "nat round " + std::to_string(round));
    native->truncate(native->length() - (gamma - 1));
    ref.truncate(ref.length() - (gamma - 1));
    const auto extra = Tokens(2, 97, 20 + round);
    context.insert(context.end(), extra.begin(), extra.end());
  }
}

TEST(NativeLlama, NonCausalLocalMaskMatchesTorch) {
  // A mask that lets a token see a later one (not causal) and hides some earlier ones.
  LlamaModel m = Random(Tiny());
  TorchDecodeModel ref(m, 32);
  auto native = Native(m, 32);
  ASSERT_NE(native, nullptr);
  const auto prompt = Tokens(5, 97, 5);
  native->forward(prompt);
  ref.forward(prompt);
  at::Tensor mask = at::eye(4, at::kBool);
  mask[0][2] = true;
  mask[3][1] = true;
  mask[2][0] = true;
  DecodeOptions o;
  o.attn_mask = mask;
  o.positions = std::vector<int64_t>{5, 7, 6, 9};
  o.logits_last = 0;
  const auto ids = Tokens(4, 97, 6);
  ExpectClose(native->forward(ids, o), ref.forward(ids, o), kFp32Tol, "non-causal mask");
}

// Quantized linears: the torch model with QuantLinearBackends and the native runtime call the
// same packed kernels (and, for the prefill with the default gemm rows, the same
// dequantize-then-GEMM route), so only the fp32 parts differ.
class NativeQuantized : public ::testing::TestWithParam<std::tuple<std::string, bool>> {};

TEST_P(NativeQuantized, MatchesTorchWithTheSameBackends) {
  const auto& [scheme_name, keep_head] = GetParam();
  for (bool tied : {true, false}) {
    LlamaModel m = Random(Tiny("Qwen2ForCausalLM", tied));
    QuantizeModelOptions o;
    o.scheme = ParseScheme(scheme_name).value();
    o.keep_head = keep_head;
    o.progress = false;
    auto q = QuantizeModel(m, o, at::Tensor());
    ASSERT_TRUE(q.ok()) << q.status();
    InstallQuantized(m, *q);
    auto native = Native(m, 32);
    ASSERT_NE(native, nullptr);
    EXPECT_EQ(native->precision(),
              keep_head ? scheme_name + " + fp32 head" : scheme_name) << "tied " << tied;
    const std::string what = scheme_name + (keep_head ? " head fp32" : " head quantized") + (tied ? " tied" : "");
    // The float-activation kernel (avx2): both engines do the same arithmetic up to fp32
    // summation order, so the fp32 bound applies (x10 for the longer chain of packed kernels).
    qkernels::SetDefaultCpuKernel(qkernels::CpuKernel::kAvx2);
    CompareDecode(m, 1e-3, what + " avx2");
    // The default kernel rounds activations to int8 per 32 columns: a last-bit difference in
    // an fp32 input (the two engines sum in different orders) can move one code across a
    // rounding boundary, which shifts the output by |W| x the block's step and then travels
    // through the later layers (seen: 0.025 at logit scale 2.5). The bound catches a wrong
    // scale, zero point or layout (errors of the logit scale's order), not a moved code.
    qkernels::SetDefaultCpuKernel(qkernels::CpuKernel::kAuto);
    CompareDecode(m, 2e-2, what + " " + qkernels::CpuKernelName(qkernels::DefaultCpuKernel()));
  }
}

INSTANTIATE_TEST_SUITE_P(Schemes, NativeQuantized,
                         ::testing::Combine(::testing::Values("int8", "int4-g32", "int4-g128"), ::testing::Bool()));

TEST(NativeLlama, RefusesAnUnknownBackend) {
  struct Doubler : LinearBackend {
    at::Tensor forward(const at::Tensor& x) override { return x * 2; }
  };
  LlamaModel m = Random(Tiny());
  m->model->layers->ptr<DecoderLayerImpl>(1)->mlp->up_backend = std::make_shared<Doubler>();
  auto n = NativeLlama::Create(m, 16);
  ASSERT_FALSE(n.ok());
  EXPECT_NE(n.status().message().find("model.layers.1.mlp.up_proj"), std::string::npos) << n.status();
  EXPECT_EQ(n.status().message().find('\n'), std::string::npos);
}

// Each vector GEMM called by name (a CPU without it skips, saying so), and the dispatch with
// its OpenMP split (out = 1003 rows crosses the threading threshold at in = 128).
class NativeF32Gemm : public ::testing::TestWithParam<fkernels::F32Kernel> {};

TEST_P(NativeF32Gemm, MatchesScalarReference) {
  const fkernels::F32Kernel kernel = GetParam();
  if (kernel == fkernels::F32Kernel::kAvx2 && !fkernels::F32Avx2Available())
    GTEST_SKIP() << "this CPU or compiler has no AVX2/FMA; F32GemmAvx2 would run the scalar reference";
  if (kernel == fkernels::F32Kernel::kAvx512 && !fkernels::F32Avx512Available())
    GTEST_SKIP() << "this CPU or compiler has no AVX-512 F/BW/VL; F32GemmAvx512 would run the scalar reference";
  const int threads = at::get_num_threads();
  at::set_num_threads(2);
  std::mt19937 rng(3);
  std::normal_distribution<float> nd;
  for (int64_t in : {8, 37, 128}) {
    for (int64_t out : {13, 1003}) {
      std::vector<float> w(out * in), bias(out), x(19 * in);
      for (auto* vec : {&w, &bias, &x})
        for (auto& f : *vec) f = nd(rng);
      for (int64_t m = 1; m <= 19; ++m) {
        std::vector<float> ref(m * out), got(m * out);
        fkernels::F32GemmScalar(x.data(), m, w.data(), out, in, bias.data(), ref.data());
        if (kernel == fkernels::F32Kernel::kAvx2) fkernels::F32GemmAvx2(x.data(), m, w.data(), out, in, bias.data(), got.data());
        else if (kernel == fkernels::F32Kernel::kAvx512)
          fkernels::F32GemmAvx512(x.data(), m, w.data(), out, in, bias.data(), got.data());
        else fkernels::F32GemmCpu(x.data(), m, w.data(), out, in, bias.data(), got.data());
        for (int64_t i = 0; i < m * out; ++i)
          ASSERT_NEAR(got[i], ref[i], 1e-4f * std::sqrt(in)) << fkernels::F32KernelName(kernel) << " M=" << m << " ["
                                                              << out << "," << in << "]";
      }
    }
  }
  at::set_num_threads(threads);
}

INSTANTIATE_TEST_SUITE_P(Kernels, NativeF32Gemm,
                         ::testing::Values(fkernels::F32Kernel::kAvx2, fkernels::F32Kernel::kAvx512,
                                           fkernels::F32Kernel::kAuto),
                         [](const auto& info) { return std::string(fkernels::F32KernelName(info.param)); });

TEST(NativeKernels, AttentionLoopsMatchScalarReference) {
  if (!fkernels::F32Avx2Available())
    GTEST_SKIP() << "this CPU or compiler has no AVX2/FMA; the attention loops run their scalar references";
  std::mt19937 rng(4);
  std::normal_distribution<float> nd;
  for (int64_t d : {8, 32, 20}) {
    const int64_t s = 11;
    std::vector<float> q(d), k(s * d), v(s * d), p(s);
    for (auto* vec : {&q, &k, &v, &p})
      for (auto& f : *vec) f = nd(rng);
    std::vector<float> ref(s), got(s), oref(d), ogot(d);
    fkernels::AttentionScoresScalar(q.data(), k.data(), s, d, 0.3f, ref.data());
    fkernels::AttentionScoresAvx2(q.data(), k.data(), s, d, 0.3f, got.data());
    for (int64_t j = 0; j < s; ++j) EXPECT_NEAR(got[j], ref[j], 1e-5f) << d;
    fkernels::WeightedValuesScalar(p.data(), v.data(), s, d, oref.data());
    fkernels::WeightedValuesAvx2(p.data(), v.data(), s, d, ogot.data());
    for (int64_t c = 0; c < d; ++c) EXPECT_NEAR(ogot[c], oref[c], 1e-5f) << d;
  }
}

// The drafters on either engine propose the same greedy tokens over a generation with
// accepted and rejected drafts (the context grows by a mix of drafted and other tokens).
template <typename MakeDrafter>
void CompareDrafters(MakeDrafter make, int64_t gamma) {
  std::unique_ptr<Drafter> torch_d = make(false), native_d = make(true);
  auto context = Tokens(7, 97, 8);
  ASSERT_TRUE(torch_d->Begin(context).ok());
  ASSERT_TRUE(native_d->Begin(context).ok());
  Sampler s1(1), s2(1);
  SamplingParams greedy;
  greedy.temperature = 0;
  for (int round = 0; round < 8; ++round) {
    const Draft a = torch_d->Propose({context, gamma, greedy, s1});
    const Draft b = native_d->Propose({context, gamma, greedy, s2});
    ASSERT_EQ(a.tokens, b.tokens) << "round " << round;
    ExpectClose(b.probs, a.probs, 1e-4, "draft probs round " + std::to_string(round));
    // Keep a prefix of the draft (round % gamma tokens) plus one token of "the target's".
    const size_t keep = static_cast<size_t>(round) % a.tokens.size();
    context.insert(context.end(), a.tokens.begin(), a.tokens.begin() + keep);
    context.push_back(Tokens(1, 97, 30 + round)[0]);
  }
}

TEST(NativeLlama, ArDrafterDraftsTheSameGreedyTokens) {
  LlamaModel m = Random(Tiny(), 11, 4.0);
  CompareDrafters(
      [&](bool native) -> std::unique_ptr<Drafter> {
        if (!native) return std::make_unique<ArDrafter>(m, 96);
        return std::make_unique<ArDrafter>(Native(m, 96));
      },
      4);
}

TEST(NativeLlama, NatDrafterDraftsTheSameGreedyTokens) {
  LlamaModel m = Random(Tiny(), 12, 4.0);
  const int64_t gamma = 4, mask_id = 4;
  CompareDrafters(
      [&](bool native) -> std::unique_ptr<Drafter> {
        if (!native) return std::make_unique<NatDrafter>(m, gamma, mask_id, 96);
        return std::make_unique<NatDrafter>(Native(m, NatDrafter::CacheCapacity(96, gamma)), gamma, mask_id);
      },
      gamma);
}

}  // namespace
}  // namespace augur
