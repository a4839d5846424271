// Plain-C++ interface to augur's own CUDA code (no torch or absl types cross nvcc).
#pragma once

#include <cstdint>
#include <string>

namespace augur::cuda_impl {

int DeviceCount();  // 0 when no driver or no GPU
bool DeviceProps(int index, std::string* name, int64_t* memory_bytes, int* major, int* minor);
// Runs y = a*x + b on the GPU and checks it on the host; "" on success, else the error.
std::string SelfTest();

}  // namespace augur::cuda_impl
