// Every CPU kernel (scalar, AVX2, AVX2-q8, AVX-512 VNNI; int8 and int4 at each group size) against the reference
// (dequantize, then matmul in float64), for M = 1..5, 16 and 40 rows of x, odd widths, with
// and without bias, also through the threaded path.
//
// Tolerance: |y - ref| <= 1e-4 * sum_c |W[r,c] x[c]| + 1e-5, i.e. float32 accumulation error
// relative to the magnitude of the terms (the AVX2 int4 kernel sums q*x and z*sum(x)
// separately, whose terms are up to ~15x larger than |W x|); a wrong weight, group, zero or
// row gives errors of order the terms themselves.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <string>
#include <tuple>

#include "runtime/qlinear.h"

namespace augur {
namespace {

using qkernels::CpuKernel;

// dequant_gemm: test DequantGemmLinear (the route kAuto takes at M >= DequantGemmMinRows()).
void ExpectMatchesReference(const QuantizedWeight& q, int64_t m, bool with_bias, CpuKernel kernel, uint64_t seed,
                            bool dequant_gemm = false) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  const at::Tensor x = at::randn({m, q.in}, gen, torch::kFloat32);
  const at::Tensor bias = with_bias ? at::randn({q.out}, gen, torch::kFloat32) : at::Tensor();
  const at::Tensor y = dequant_gemm ? DequantGemmLinear(x, q, bias) : QuantizedLinear(x, q, bias, kernel);
  const at::Tensor ref = QuantizedLinearReference(x, q, bias);
  const at::Tensor scale = x.abs().to(torch::kFloat64).mm(Dequantize(q).abs().to(torch::kFloat64).t()).to(torch::kFloat32);
  at::Tensor bound = scale * 1e-4 + 1e-5;
  const CpuKernel ran = qkernels::ResolveCpuKernel(kernel);
  if (!dequant_gemm && (ran == CpuKernel::kAvx2Q8 || ran == CpuKernel::kAvx512Vnni)) {
    // x is quantized per block of 32 columns with step dx = max|x_block| / 127, so each
    // element moves by at most dx/2: the output by at most sum_c |W[r,c]| dx(c) / 2.
    const int64_t blocks = (q.in + 31) / 32;
    const at::Tensor xp = at::constant_pad_nd(x, {0, blocks * 32 - q.in}).view({m, blocks, 32});
    const at::Tensor dx = (xp.abs().amax(2) / 127.f).repeat_interleave(32, 1).narrow(1, 0, q.in);  // [m, in]
    bound = bound + (dx.to(torch::kFloat64) * 0.5).mm(Dequantize(q).abs().to(torch::kFloat64).t()).to(torch::kFloat32) *
                        (1 + 1e-5);
  }
  const at::Tensor excess = (y - ref).abs() - bound;
  EXPECT_LE(excess.max().item<float>(), 0.f)
      << q.scheme.name() << " " << (dequant_gemm ? "dequant+gemm" : qkernels::CpuKernelName(kernel)) << " [" << q.out << "," << q.in << "] M=" << m
      << " max |diff| " << (y - ref).abs().max().item<float>();
  ASSERT_EQ(y.sizes(), ref.sizes());
}

struct Shape {
  int64_t out, in;
};

void RunAll(CpuKernel kernel, bool dequant_gemm = false) {
  // Widths off multiples of 32/64/128: int4 padding, and for the AVX-512 kernel's 64-column
  // steps a half step at the end (96, 352 at g32; 96, 100, 200 for int8 tail masks).
  const std::vector<Shape> shapes = {{37, 64}, {64, 100}, {19, 256}, {5, 33}, {8, 7}, {130, 352}, {3, 96}, {21, 200}};
  const std::vector<QuantScheme> schemes = {{8, 0}, {4, 32}, {4, 64}, {4, 128}};
  uint64_t seed = 100;
  for (const auto& s : shapes)
    for (const auto& scheme : schemes) {
      auto gen = at::make_generator<at::CPUGeneratorImpl>(++seed);
      const QuantizedWeight q = QuantizeRtn(at::randn({s.out, s.in}, gen, torch::kFloat32) * 0.1, scheme);
      for (int64_t m : {1, 2, 3, 4, 5, 16, 40}) ExpectMatchesReference(q, m, m % 2 == 1, kernel, ++seed, dequant_gemm);
    }
}

TEST(QuantKernels, ScalarMatchesReference) { RunAll(CpuKernel::kScalar); }

TEST(QuantKernels, Avx2MatchesReference) {
  if (!qkernels::Avx2Available()) GTEST_SKIP() << "this CPU or compiler has no AVX2/FMA; the scalar path is tested";
  RunAll(CpuKernel::kAvx2);
}

TEST(QuantKernels, Avx2Q8WithinActivationQuantizationBound) {
  if (!qkernels::Avx2Available()) GTEST_SKIP() << "this CPU or compiler has no AVX2/FMA; the scalar path is tested";
  RunAll(CpuKernel::kAvx2Q8);
}

TEST(QuantKernels, Avx512VnniWithinActivationQuantizationBound) {
  if (!qkernels::Avx512VnniAvailable())
    GTEST_SKIP() << "this CPU or compiler has no AVX-512 F/BW/VL/VNNI; avx2-q8 and scalar are tested";
  RunAll(CpuKernel::kAvx512Vnni);
}

TEST(QuantKernels, Avx512QuantizerIsBitEqualToScalarQuantizer) {
  if (!qkernels::Avx512VnniAvailable()) GTEST_SKIP() << "this CPU or compiler has no AVX-512 VNNI";
  for (const auto& [in, blocks, group] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{
           {256, 8, 32}, {100, 4, 0}, {352, 12, 32}, {200, 8, 64}, {7, 2, 0}, {96, 4, 128}}) {
    for (const auto layout : {qkernels::Q8Layout::kPlain, qkernels::Q8Layout::kEvenOdd64}) {
      auto gen = at::make_generator<at::CPUGeneratorImpl>(in + blocks);
      const int64_t m = 3;
      at::Tensor x = at::randn({m, in}, gen, torch::kFloat32);
      x[1].zero_();  // an all-zero row: scale 0, codes 0
      qkernels::Q8Activations ref, fast;
      qkernels::QuantizeActivations(x.data_ptr<float>(), m, in, blocks, layout, group, true, &ref);
      qkernels::QuantizeActivationsAvx512(x.data_ptr<float>(), m, in, blocks, layout, group, &fast);
      const std::string what = "in " + std::to_string(in) + " group " + std::to_string(group);
      EXPECT_EQ(fast.q, ref.q) << what;
      EXPECT_EQ(fast.scale, ref.scale) << what;
      EXPECT_EQ(fast.lane_scale, ref.lane_scale) << what;
      EXPECT_EQ(fast.groups, ref.groups) << what;
      ASSERT_EQ(fast.group_sum.size(), ref.group_sum.size()) << what;
      // Block sums are exact (integers times the same scale); only their float addition order
      // may differ.
      for (size_t g = 0; g < ref.group_sum.size(); ++g) EXPECT_NEAR(fast.group_sum[g], ref.group_sum[g], 1e-5) << what;
      for (int64_t i = 0; i < m; ++i) EXPECT_NEAR(fast.row_sum[i], ref.row_sum[i], 1e-5) << what;
    }
  }
}

TEST(QuantKernels, AutoPicksAvx512VnniWhereAvailable) {
  if (std::getenv("AUGUR_QUANT_KERNEL")) GTEST_SKIP() << "AUGUR_QUANT_KERNEL overrides the automatic choice";
  if (!qkernels::Avx512VnniAvailable()) {
    // Asking for it falls back to the AVX2 q8 kernel (or scalar without AVX2).
    EXPECT_EQ(qkernels::ResolveCpuKernel(CpuKernel::kAvx512Vnni),
              qkernels::Avx2Available() ? CpuKernel::kAvx2Q8 : CpuKernel::kScalar);
    GTEST_SKIP() << "this CPU or compiler has no AVX-512 VNNI; checked only the fallback";
  }
  EXPECT_EQ(qkernels::ResolveCpuKernel(CpuKernel::kAuto), CpuKernel::kAvx512Vnni);
  EXPECT_STREQ(qkernels::CpuKernelName(qkernels::DefaultCpuKernel()), "avx512-vnni");
}

TEST(QuantKernels, DequantizeCpuIsBitEqualToReferenceDequantize) {
  const std::vector<Shape> shapes = {{37, 64}, {64, 100}, {5, 33}, {8, 7}, {130, 352}};
  uint64_t seed = 500;
  for (const auto& s : shapes)
    for (const QuantScheme scheme : {QuantScheme{8, 0}, QuantScheme{4, 32}, QuantScheme{4, 64}, QuantScheme{4, 128}}) {
      auto gen = at::make_generator<at::CPUGeneratorImpl>(++seed);
      const QuantizedWeight q = QuantizeRtn(at::randn({s.out, s.in}, gen, torch::kFloat32) * 0.1, scheme);
      const at::Tensor ref = Dequantize(q);
      at::Tensor out = at::full({q.out, q.in}, 7.f);
      if (scheme.bits == 8) {
        qkernels::DequantizeInt8Cpu({q.qweight.data_ptr<int8_t>(), q.scales.data_ptr<float>(), q.out, q.in},
                                    out.data_ptr<float>());
        EXPECT_TRUE(at::equal(out, ref)) << scheme.name() << " [" << s.out << "," << s.in << "]";
        continue;
      }
      const qkernels::Int4Weights view{q.qweight.data_ptr<uint8_t>(), q.scales.data_ptr<float>(),
                                       q.zeros.data_ptr<uint8_t>(), q.out, q.in, q.in_padded(), scheme.group};
      qkernels::DequantizeInt4RowsScalar(view, out.data_ptr<float>(), 0, q.out);
      EXPECT_TRUE(at::equal(out, ref)) << "scalar " << scheme.name() << " [" << s.out << "," << s.in << "]";
      out.fill_(7.f);
      qkernels::DequantizeInt4Cpu(view, out.data_ptr<float>());  // AVX2 where available
      EXPECT_TRUE(at::equal(out, ref)) << scheme.name() << " [" << s.out << "," << s.in << "]";
    }
}

TEST(QuantKernels, DequantGemmMatchesReference) { RunAll(CpuKernel::kAuto, /*dequant_gemm=*/true); }

TEST(QuantKernels, AutoDispatchesToDequantGemmFromTheThresholdRows) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(12);
  const QuantizedWeight q = QuantizeRtn(at::randn({40, 96}, gen, torch::kFloat32) * 0.1, QuantScheme{4, 32});
  const at::Tensor bias = at::randn({40}, gen, torch::kFloat32);
  const CpuKernel kernel = qkernels::ResolveCpuKernel(CpuKernel::kAuto);
  const int64_t saved = DequantGemmMinRows();
  if (!std::getenv("AUGUR_QUANT_DEQUANT_MIN_ROWS")) {
    EXPECT_EQ(saved, kernel == CpuKernel::kAvx512Vnni ? kDequantGemmMinRowsVnni : kDequantGemmMinRows);
  }
  SetDequantGemmMinRows(8);
  const at::Tensor x7 = at::randn({7, 96}, gen, torch::kFloat32), x8 = at::randn({8, 96}, gen, torch::kFloat32);
  EXPECT_TRUE(at::equal(QuantizedLinear(x7, q, bias), QuantizedLinear(x7, q, bias, kernel)));
  EXPECT_TRUE(at::equal(QuantizedLinear(x8, q, bias), DequantGemmLinear(x8, q, bias)));
  // The two routes differ (so the equalities above say which one ran), and an explicit kernel
  // is never rerouted.
  EXPECT_FALSE(at::equal(QuantizedLinear(x8, q, bias, kernel), DequantGemmLinear(x8, q, bias)));
  SetDequantGemmMinRows(0);
  EXPECT_TRUE(at::equal(QuantizedLinear(x8, q, bias), QuantizedLinear(x8, q, bias, kernel)));
  SetDequantGemmMinRows(-1);  // back to the default, which follows the kernel
  EXPECT_EQ(DequantGemmMinRows(), saved);
  const CpuKernel before = qkernels::DefaultCpuKernel();
  qkernels::SetDefaultCpuKernel(CpuKernel::kScalar);
  EXPECT_EQ(DequantGemmMinRows(), kDequantGemmMinRows);
  qkernels::SetDefaultCpuKernel(before);
  SetDequantGemmMinRows(saved);
}

TEST(QuantKernels, Q8BoundIsTightEnoughToCatchAnError) {
  // The q8 result is not the exact one (so the bound above is not vacuous), and a single wrong
  // weight code would exceed it.
  if (!qkernels::Avx2Available()) GTEST_SKIP() << "no AVX2";
  auto gen = at::make_generator<at::CPUGeneratorImpl>(8);
  QuantizedWeight q = QuantizeRtn(at::randn({16, 128}, gen, torch::kFloat32) * 0.1, QuantScheme{4, 32});
  const at::Tensor x = at::randn({1, 128}, gen, torch::kFloat32);
  const at::Tensor exact = QuantizedLinear(x, q, at::Tensor(), CpuKernel::kAvx2);
  std::vector<CpuKernel> kernels = {CpuKernel::kAvx2Q8};
  if (qkernels::Avx512VnniAvailable()) kernels.push_back(CpuKernel::kAvx512Vnni);
  for (CpuKernel k : kernels) {
    const at::Tensor q8 = QuantizedLinear(x, q, at::Tensor(), k);
    const float diff = (exact - q8).abs().max().item<float>();
    EXPECT_GT(diff, 0.f) << qkernels::CpuKernelName(k);
    EXPECT_LT(diff, 0.02f * exact.abs().max().item<float>()) << qkernels::CpuKernelName(k);
  }
}

TEST(QuantKernels, ThreadedLargeMatrixMatchesReference) {
  // Large enough to cross the OpenMP threshold.
  const int threads = at::get_num_threads();
  at::set_num_threads(2);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(9);
  const at::Tensor w = at::randn({1000, 256}, gen, torch::kFloat32) * 0.1;
  for (const QuantScheme scheme : {QuantScheme{8, 0}, QuantScheme{4, 32}})
    for (CpuKernel k : {CpuKernel::kAuto, CpuKernel::kAvx512Vnni, CpuKernel::kAvx2Q8, CpuKernel::kAvx2, CpuKernel::kScalar})
      ExpectMatchesReference(QuantizeRtn(w, scheme), 4, true, k, 3);
  at::set_num_threads(threads);
}

TEST(QuantKernels, BatchedInputKeepsShapeAndDtype) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(4);
  const QuantizedWeight q = QuantizeRtn(at::randn({24, 64}, gen, torch::kFloat32), QuantScheme{4, 64});
  const at::Tensor x = at::randn({2, 3, 64}, gen, torch::kFloat32);
  const at::Tensor y = QuantizedLinear(x, q, at::Tensor(), CpuKernel::kAvx2);
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{2, 3, 24}));
  EXPECT_TRUE(at::allclose(y.reshape({6, 24}), QuantizedLinearReference(x.reshape({6, 64}), q, at::Tensor()), 1e-4, 1e-4));
  EXPECT_EQ(QuantizedLinear(x.to(torch::kBFloat16), q, at::Tensor()).scalar_type(), torch::kBFloat16);
}

}  // namespace
}  // namespace augur
