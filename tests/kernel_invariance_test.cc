// Batch invariance of every CPU linear kernel (runtime/kernels/kernels_cpu.h, kernels_f32.h):
// row j of a call with M rows must be bit-equal (memcmp) to a call with that row alone, for M
// in {1, 2, 3, 4, 5, 7, 8, 9, 16, 17}, the rows at shifting positions, on 1 and 2 OpenMP
// threads, for each kernel this CPU has (the others skip and say why). A speculative
// verification forward relies on it: it then computes exactly the logits of one-token decoding.
//
// The shapes are SmolLM2's (576 -> 576, 576 -> 192, 1536 -> 576) and odd ones: widths off
// multiples of 32/64/128 (int4 padding, the VNNI kernels' half superblock and tail masks, the
// fp32 kernels' tails) and row counts off the 4/8-row tiles and 16-row thread tasks.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "runtime/kernels/kernels_cpu.h"
#include "runtime/kernels/kernels_f32.h"
#include "runtime/qlinear.h"
#include "runtime/qweight.h"

namespace augur {
namespace {

using qkernels::CpuKernel;
using fkernels::F32Kernel;

struct Shape {
  int64_t out, in;
};
const std::vector<Shape> kShapes = {{576, 576}, {192, 576}, {576, 1536}, {1003, 200}, {37, 100}, {130, 352}, {21, 33}};
const std::vector<int64_t> kRowCounts = {1, 2, 3, 4, 5, 7, 8, 9, 16, 17};
constexpr int64_t kPool = 24;  // rows of x to draw from

// kPool rows of x of different magnitudes, one all zero (q8 scale 0) and one with an outlier.
at::Tensor Rows(int64_t in, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  at::Tensor x = at::randn({kPool, in}, gen, torch::kFloat32);
  for (int64_t j = 0; j < kPool; ++j) x[j].mul_(std::ldexp(1.f, static_cast<int>(j % 7) - 3));
  x[5].zero_();
  x[11][in / 2] = 40.f;
  return x;
}

// gemm(x, m, y) for one kernel and weight. For every M: rows (s + j) % kPool of the pool, s
// moving with M, so a row is checked at many positions of a call; each must equal its own
// one-row call on one thread.
template <typename Gemm>
void ExpectBatchInvariant(const Gemm& gemm, int64_t out, const at::Tensor& pool, const std::string& what) {
  const int64_t in = pool.size(1);
  const int threads = at::get_num_threads();
  at::set_num_threads(1);
  std::vector<float> alone(kPool * out);
  for (int64_t j = 0; j < kPool; ++j) gemm(pool[j].data_ptr<float>(), 1, alone.data() + j * out);
  for (const int t : {1, 2}) {
    at::set_num_threads(t);
    for (const int64_t m : kRowCounts) {
      const int64_t s = (m * 5) % kPool;
      std::vector<int64_t> idx(m);
      for (int64_t j = 0; j < m; ++j) idx[j] = (s + j) % kPool;
      const at::Tensor x = pool.index_select(0, torch::tensor(idx)).contiguous();
      std::vector<float> y(m * out, -1.f);
      gemm(x.data_ptr<float>(), m, y.data());
      for (int64_t j = 0; j < m; ++j)
        ASSERT_EQ(std::memcmp(y.data() + j * out, alone.data() + idx[j] * out, out * sizeof(float)), 0)
            << what << " [" << out << "," << in << "] M=" << m << " row " << j << " (pool row " << idx[j] << "), "
            << t << " thread(s): first differing output "
            << [&] {
                 int64_t r = 0;
                 while (r < out && y[j * out + r] == alone[idx[j] * out + r]) ++r;
                 return std::to_string(r) + ": " + std::to_string(y[j * out + r]) + " vs " +
                        std::to_string(alone[idx[j] * out + r]);
               }();
    }
  }
  at::set_num_threads(threads);
}

class QuantizedInvariance : public ::testing::TestWithParam<CpuKernel> {};

TEST_P(QuantizedInvariance, EachRowEqualsItsOneRowCall) {
  const CpuKernel kernel = GetParam();
  if (qkernels::ResolveCpuKernel(kernel) != kernel)
    GTEST_SKIP() << qkernels::CpuKernelName(kernel) << " is not available on this CPU or build (it would run "
                 << qkernels::CpuKernelName(qkernels::ResolveCpuKernel(kernel)) << ", tested on its own)";
  uint64_t seed = 1;
  for (const Shape& s : kShapes) {
    const at::Tensor pool = Rows(s.in, ++seed);
    auto gen = at::make_generator<at::CPUGeneratorImpl>(++seed);
    const at::Tensor w = at::randn({s.out, s.in}, gen, torch::kFloat32) * 0.05;
    const at::Tensor bias = at::randn({s.out}, gen, torch::kFloat32);
    for (const QuantScheme scheme : {QuantScheme{8, 0}, QuantScheme{4, 32}, QuantScheme{4, 64}, QuantScheme{4, 128}}) {
      const QuantizedWeight q = QuantizeRtn(w, scheme);
      const std::string what = scheme.name() + " " + qkernels::CpuKernelName(kernel);
      if (scheme.bits == 8) {
        const qkernels::Int8Weights v{q.qweight.data_ptr<int8_t>(), q.scales.data_ptr<float>(), q.out, q.in};
        ExpectBatchInvariant(
            [&](const float* x, int64_t m, float* y) { qkernels::Int8GemmCpu(x, m, v, bias.data_ptr<float>(), y, kernel); },
            s.out, pool, what);
      } else {
        const qkernels::Int4Weights v{q.qweight.data_ptr<uint8_t>(), q.scales.data_ptr<float>(),
                                      q.zeros.data_ptr<uint8_t>(), q.out, q.in, q.in_padded(), scheme.group};
        ExpectBatchInvariant(
            [&](const float* x, int64_t m, float* y) { qkernels::Int4GemmCpu(x, m, v, bias.data_ptr<float>(), y, kernel); },
            s.out, pool, what);
      }
      if (HasFatalFailure()) return;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Kernels, QuantizedInvariance,
                         ::testing::Values(CpuKernel::kScalar, CpuKernel::kAvx2, CpuKernel::kAvx2Q8,
                                           CpuKernel::kAvx512Vnni),
                         [](const auto& info) {
                           std::string n = qkernels::CpuKernelName(info.param);
                           for (char& c : n)
                             if (c == '-') c = '_';
                           return n;
                         });

class F32Invariance : public ::testing::TestWithParam<F32Kernel> {};

TEST_P(F32Invariance, EachRowEqualsItsOneRowCall) {
  const F32Kernel kernel = GetParam();
  if (fkernels::ResolveF32Kernel(kernel) != kernel)
    GTEST_SKIP() << fkernels::F32KernelName(kernel) << " is not available on this CPU or build";
  uint64_t seed = 100;
  for (const Shape& s : kShapes) {
    const at::Tensor pool = Rows(s.in, ++seed);
    auto gen = at::make_generator<at::CPUGeneratorImpl>(++seed);
    const at::Tensor w = at::randn({s.out, s.in}, gen, torch::kFloat32) * 0.05;
    const at::Tensor bias = at::randn({s.out}, gen, torch::kFloat32);
    ExpectBatchInvariant(
        [&](const float* x, int64_t m, float* y) {
          fkernels::F32GemmCpu(x, m, w.data_ptr<float>(), s.out, s.in, bias.data_ptr<float>(), y, kernel);
        },
        s.out, pool, std::string("fp32 ") + fkernels::F32KernelName(kernel));
    if (HasFatalFailure()) return;
  }
}

INSTANTIATE_TEST_SUITE_P(Kernels, F32Invariance,
                         ::testing::Values(F32Kernel::kScalar, F32Kernel::kAvx2, F32Kernel::kAvx512),
                         [](const auto& info) { return std::string(fkernels::F32KernelName(info.param)); });

TEST(KernelInvariance, QuantizedLinearAutoKeepsVerificationRowsOnTheKernels) {
  // The LibTorch model's entry point with its default route: a verification forward (up to 17
  // rows here) stays on the kernels (the dequantize-then-GEMM route from DequantGemmMinRows()
  // rows is not invariant), so the same guarantee holds there.
  if (std::getenv("AUGUR_QUANT_DEQUANT_MIN_ROWS")) GTEST_SKIP() << "AUGUR_QUANT_DEQUANT_MIN_ROWS overrides the default";
  const int64_t gemm_rows = DequantGemmMinRows();
  EXPECT_TRUE(gemm_rows == 0 || gemm_rows > kRowCounts.back()) << gemm_rows;
  uint64_t seed = 200;
  for (const QuantScheme scheme : {QuantScheme{8, 0}, QuantScheme{4, 32}}) {
    const at::Tensor pool = Rows(576, ++seed);
    auto gen = at::make_generator<at::CPUGeneratorImpl>(++seed);
    const QuantizedWeight q = QuantizeRtn(at::randn({576, 576}, gen, torch::kFloat32) * 0.05, scheme);
    ExpectBatchInvariant(
        [&](const float* x, int64_t m, float* y) {
          const at::Tensor xt = at::from_blob(const_cast<float*>(x), {m, 576});
          at::from_blob(y, {m, 576}).copy_(QuantizedLinear(xt, q, at::Tensor()));
        },
        576, pool, "QuantizedLinear auto " + scheme.name());
    if (HasFatalFailure()) return;
  }
}

// The kernels' pool (runtime/kernels/parallel_cpu.cc): every task runs exactly once, on as many
// threads as asked, across thousands of back-to-back rounds (workers still spinning) and after
// pauses long enough that they went to sleep.
TEST(ParallelFor, RunsEveryTaskOnceAcrossRoundsAndSleeps) {
  const int threads = at::get_num_threads();
  for (int n : {1, 2, 3}) {
    at::set_num_threads(n);
    ASSERT_EQ(qkernels::KernelThreads(), n);
    for (int round = 0; round < 3000; ++round) {
      const int64_t tasks = 1 + round % 37;
      std::vector<std::atomic<int>> hits(static_cast<size_t>(tasks));
      std::atomic<int> calls{0};
      qkernels::ParallelFor(tasks, [&](int64_t t0, int64_t t1) {
        ASSERT_LT(t0, t1);
        calls.fetch_add(1);
        for (int64_t t = t0; t < t1; ++t) hits[static_cast<size_t>(t)].fetch_add(1);
      });
      for (int64_t t = 0; t < tasks; ++t) ASSERT_EQ(hits[static_cast<size_t>(t)].load(), 1) << n << " " << round;
      ASSERT_EQ(calls.load(), std::min<int64_t>(n, tasks)) << "threads " << n << ", " << tasks << " tasks";
      if (round % 500 == 499) std::this_thread::sleep_for(std::chrono::milliseconds(2));  // workers sleep
    }
  }
  at::set_num_threads(threads);
}

TEST(KernelInvariance, TwoThreadsSplitTheLargeShapes) {
  // The checks above at 2 threads exercise the pool's row split only if these calls take it.
  const int threads = at::get_num_threads();
  at::set_num_threads(2);
  EXPECT_TRUE(qkernels::UseThreads(576 * 576));
  EXPECT_TRUE(qkernels::UseThreads(1003 * 200));
  EXPECT_FALSE(qkernels::UseThreads(192 * 576));  // threaded from M = 2 on
  EXPECT_TRUE(qkernels::UseThreads(2 * 192 * 576));
  at::set_num_threads(threads);
}

}  // namespace
}  // namespace augur
