// CUDA kernels (int8, int4 at each group size) against the CPU reference, for M = 1, 4, 16 and
// odd widths. Skips with the reason when augur was built without CUDA or no GPU is visible.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/device.h"
#include "runtime/qlinear.h"

namespace augur {
namespace {

TEST(QuantCuda, KernelsMatchReference) {
  if (!CudaCompiled()) GTEST_SKIP() << "built without AUGUR_CUDA: no CUDA kernels to test";
  if (!torch::cuda::is_available() || CudaDevices().empty()) GTEST_SKIP() << "no CUDA device visible";
  const torch::Device dev(torch::kCUDA, 0);
  uint64_t seed = 1;
  for (const auto& [out, in] : std::vector<std::pair<int64_t, int64_t>>{{37, 64}, {64, 100}, {256, 704}, {5, 33}})
    for (const QuantScheme scheme : {QuantScheme{8, 0}, QuantScheme{4, 32}, QuantScheme{4, 64}, QuantScheme{4, 128}}) {
      auto gen = at::make_generator<at::CPUGeneratorImpl>(++seed);
      const QuantizedWeight q = QuantizeRtn(at::randn({out, in}, gen, torch::kFloat32) * 0.1, scheme);
      const QuantizedWeight qd = q.to(dev);
      for (int64_t m : {1, 3, 4, 16, 21}) {
        const at::Tensor x = at::randn({m, in}, gen, torch::kFloat32);
        const at::Tensor bias = at::randn({out}, gen, torch::kFloat32);
        const at::Tensor y = QuantizedLinear(x.to(dev), qd, bias.to(dev)).cpu();
        const at::Tensor ref = QuantizedLinearReference(x, q, bias);
        const at::Tensor scale = x.abs().mm(Dequantize(q).abs().t());
        EXPECT_LE(((y - ref).abs() - (scale * 1e-4 + 1e-5)).max().item<float>(), 0.f)
            << scheme.name() << " [" << out << "," << in << "] M=" << m;
      }
    }
}

}  // namespace
}  // namespace augur
