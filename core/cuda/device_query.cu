// augur's first CUDA source: device query and a self-test kernel that proves the toolchain
// (compiled with AUGUR_CUDA=ON; core/device.cc has the fallbacks without it).
#include "core/cuda/device_query.h"

#include <cuda_runtime.h>

#include <cmath>
#include <vector>

namespace augur::cuda_impl {
namespace {

__global__ void AxpbKernel(const float* x, float* y, float a, float b, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = a * x[i] + b;
}

}  // namespace

int DeviceCount() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear "no device" / "no driver"
    return 0;
  }
  return n;
}

bool DeviceProps(int index, std::string* name, int64_t* memory_bytes, int* major, int* minor) {
  cudaDeviceProp p;
  if (cudaGetDeviceProperties(&p, index) != cudaSuccess) return false;
  *name = p.name;
  *memory_bytes = static_cast<int64_t>(p.totalGlobalMem);
  *major = p.major;
  *minor = p.minor;
  return true;
}

std::string SelfTest() {
  const int n = 1 << 20;
  std::vector<float> x(n), y(n);
  for (int i = 0; i < n; ++i) x[i] = static_cast<float>(i % 1000) * 0.5f;
  float *dx = nullptr, *dy = nullptr;
  cudaError_t e = cudaMalloc(&dx, n * sizeof(float));
  if (e == cudaSuccess) e = cudaMalloc(&dy, n * sizeof(float));
  if (e == cudaSuccess) e = cudaMemcpy(dx, x.data(), n * sizeof(float), cudaMemcpyHostToDevice);
  if (e == cudaSuccess) {
    AxpbKernel<<<(n + 255) / 256, 256>>>(dx, dy, 3.0f, -1.0f, n);
    e = cudaGetLastError();
  }
  if (e == cudaSuccess) e = cudaMemcpy(y.data(), dy, n * sizeof(float), cudaMemcpyDeviceToHost);
  cudaFree(dx);
  cudaFree(dy);
  if (e != cudaSuccess) return std::string("cuda self-test: ") + cudaGetErrorString(e);
  for (int i = 0; i < n; ++i)
    if (std::fabs(y[i] - (3.0f * x[i] - 1.0f)) > 1e-4f) return "cuda self-test: wrong value at " + std::to_string(i);
  return "";
}

}  // namespace augur::cuda_impl
