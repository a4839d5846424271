// Devices: what augur was compiled with, which GPUs are present, parsing --device.
#pragma once

#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <string>
#include <vector>

#include "core/status.h"

namespace augur {

struct GpuInfo {
  int index = 0;
  std::string name;
  int64_t memory_bytes = 0;
  int major = 0, minor = 0;  // compute capability
};

// True when augur's own CUDA sources were compiled in (AUGUR_CUDA=ON).
bool CudaCompiled();
// GPUs visible through augur's own CUDA code; empty without CUDA or without a GPU.
std::vector<GpuInfo> CudaDevices();
// Launches augur's own kernel (y = a*x + b over 1M floats) and checks it on the host.
// Unavailable (not an error) without CUDA or a GPU.
absl::Status CudaSelfTest();

// "cpu", "cuda", "cuda:N" or "auto" (cuda when torch sees a GPU, else cpu).
absl::StatusOr<c10::Device> ParseDevice(const std::string& spec);
// "float32" | "float16" | "bfloat16" (also fp32/fp16/bf16).
absl::StatusOr<c10::ScalarType> ParseDtype(const std::string& spec);
std::string DtypeName(c10::ScalarType t);

}  // namespace augur
