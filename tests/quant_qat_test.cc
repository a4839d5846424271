// QAT pieces: the fake-quant forward uses exactly the RTN-dequantized weights, its gradient
// (straight-through) equals the gradient of the fp32 linear at those weights, and the exported
// quantized checkpoint reproduces the fake-quant model's logits.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/fs.h"
#include "quantize/fake_quant.h"
#include "runtime/qlinear.h"
#include "runtime/qmodel.h"
#include "tests/exact_kernels.h"

namespace augur {
namespace {

[[maybe_unused]] const auto* const kExact = ::testing::AddGlobalTestEnvironment(new ExactKernels);

TEST(FakeQuant, ForwardIsRtnDequantized) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1);
  const at::Tensor w = at::randn({24, 70}, gen, torch::kFloat32) * 0.05;
  for (const auto& e : SchemeTable()) {
    const at::Tensor fq = FakeQuantize(w, e.scheme);
    EXPECT_TRUE(at::equal(fq, Dequantize(QuantizeRtn(w, e.scheme)))) << e.name;
  }
}

TEST(FakeQuant, SteGradientEqualsFp32GradientAtDequantizedWeights) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(2);
  for (const auto& e : SchemeTable()) {
    const at::Tensor w = (at::randn({24, 70}, gen, torch::kFloat32) * 0.05).requires_grad_(true);
    const at::Tensor x = at::randn({5, 70}, gen, torch::kFloat32).requires_grad_(true);
    const at::Tensor up = at::randn({5, 24}, gen, torch::kFloat32);
    (at::linear(x, FakeQuantize(w, e.scheme)) * up).sum().backward();

    const at::Tensor wd = Dequantize(QuantizeRtn(w.detach(), e.scheme)).requires_grad_(true);
    const at::Tensor x2 = x.detach().clone().requires_grad_(true);
    (at::linear(x2, wd) * up).sum().backward();
    EXPECT_TRUE(at::allclose(w.grad(), wd.grad(), 0, 1e-6)) << e.name;
    EXPECT_TRUE(at::allclose(x.grad(), x2.grad(), 0, 1e-6)) << e.name;
    EXPECT_GT(w.grad().abs().max().item<float>(), 0.f);
  }
}

ModelConfig TinyConfig() {
  ModelConfig c;
  c.vocab_size = 97;
  c.hidden_size = 64;
  c.intermediate_size = 96;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.max_position_embeddings = 64;
  c.tie_word_embeddings = true;
  return c;
}

TEST(FakeQuant, ModelTrainsThroughFakeQuantAndExportMatches) {
  const std::string dir = MakeTempDir("augur_qat_");
  for (const std::string scheme : {"int4-g32", "int8", "int4-g128"})
    for (bool keep_head : {true, false}) {
      LlamaModel m(TinyConfig());
      m->init_weights(3);
      {
        torch::NoGradGuard g;
        for (auto& p : m->parameters()) p.mul_(2.5);
      }
      auto gen = at::make_generator<at::CPUGeneratorImpl>(4);
      const at::Tensor ids = at::randint(97, {2, 10}, gen, torch::kInt64);
      const at::Tensor fp32 = m->logits(ids).detach();
      ASSERT_TRUE(EnableFakeQuant(m, scheme, keep_head).ok());
      const at::Tensor fq = m->logits(ids);
      EXPECT_GT((fq - fp32).abs().max().item<float>(), 1e-4) << scheme;  // fake-quant is active

      // Gradients reach the fp32 weights through the fake-quant linears.
      fq.logsumexp(-1).sum().backward();
      auto attn = m->model->layers->ptr<DecoderLayerImpl>(0)->self_attn;
      ASSERT_TRUE(attn->q_proj->weight.grad().defined());
      EXPECT_GT(attn->q_proj->weight.grad().abs().max().item<float>(), 0.f);

      const std::string out = dir + "/" + scheme + (keep_head ? "-keep" : "-head");
      AugurMeta meta;
      meta.kind = "ar-drafter";
      ASSERT_TRUE(ExportQuantized(m, meta, scheme, out, "", keep_head).ok());
      auto loaded = LoadQuantizedModel(out, torch::kCPU, scheme);
      ASSERT_TRUE(loaded.ok()) << loaded.status();
      EXPECT_EQ(loaded->meta.extra["quantization"]["method"], "qat");
      torch::NoGradGuard g;
      const float diff = (loaded->model->logits(ids) - fq.detach()).abs().max().item<float>();
      EXPECT_LT(diff, 1e-4) << scheme << " keep_head " << keep_head;

      DisableFakeQuant(m);
      EXPECT_TRUE(at::allclose(m->logits(ids), fp32, 0, 1e-6));  // fp32 weights were never changed
    }
  RemoveTree(dir);
  LlamaModel m(TinyConfig());
  EXPECT_EQ(std::string(EnableFakeQuant(m, "int4-g16").message()),
            "quantize: unknown scheme 'int4-g16' (one of int8, int4-g32, int4-g64, int4-g128)");
}

}  // namespace
}  // namespace augur
