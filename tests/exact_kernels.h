// A gtest environment that makes the exact-float quantized kernels the process default
// (avx2, or scalar without AVX2), for tests that compare quantized models at 1e-4. The
// int8-activation kernels (the default: avx512-vnni or avx2-q8) are checked against their own
// bound in quant_kernel_test and at the model level in
// QuantModel.Q8KernelsStayCloseToDequantizedModel. Register once per test binary:
//   const auto* const kExact = ::testing::AddGlobalTestEnvironment(new ExactKernels);
#pragma once

#include <gtest/gtest.h>

#include "runtime/kernels/kernels_cpu.h"

namespace augur {

struct ExactKernels : ::testing::Environment {
  void SetUp() override {
    qkernels::SetDefaultCpuKernel(qkernels::Avx2Available() ? qkernels::CpuKernel::kAvx2 : qkernels::CpuKernel::kScalar);
  }
};

}  // namespace augur
