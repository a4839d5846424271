#include <gtest/gtest.h>
#include <torch/cuda.h>

#include "core/device.h"

namespace augur {
namespace {

TEST(Device, ParsesSpecs) {
  EXPECT_EQ(ParseDevice("cpu")->type(), c10::kCPU);
  EXPECT_EQ(ParseDevice("CPU")->type(), c10::kCPU);
  EXPECT_FALSE(ParseDevice("tpu").ok());
  EXPECT_EQ(*ParseDtype("bf16"), c10::kBFloat16);
  EXPECT_EQ(DtypeName(*ParseDtype("fp16")), "float16");
  EXPECT_FALSE(ParseDtype("int3").ok());
  if (!torch::cuda::is_available()) EXPECT_FALSE(ParseDevice("cuda").ok());
}

TEST(Device, OwnCudaKernel) {
#ifndef AUGUR_WITH_CUDA
  GTEST_SKIP() << "built with AUGUR_CUDA=OFF";
#else
  EXPECT_TRUE(CudaCompiled());
  if (CudaDevices().empty()) {
    EXPECT_TRUE(absl::IsUnavailable(CudaSelfTest()));
    GTEST_SKIP() << "no GPU visible: the kernel compiled and linked, not run";
  }
  EXPECT_TRUE(CudaSelfTest().ok()) << CudaSelfTest();
  EXPECT_EQ(static_cast<size_t>(torch::cuda::device_count()), CudaDevices().size());
#endif
}

}  // namespace
}  // namespace augur
