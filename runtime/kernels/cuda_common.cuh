// Shared pieces of the quantized CUDA kernels: one warp per output row, rows of x in tiles of
// MT (1, 2, 4, 8 or 16; the host picks the smallest tile that holds what is left).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <string>

namespace augur::qkernels {

constexpr int kWarpsPerBlock = 4;

__device__ __forceinline__ float WarpSum(float v) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
  return v;
}

inline int TileFor(int64_t left) { return left >= 16 ? 16 : left > 4 ? (left > 8 ? 16 : 8) : (left > 2 ? 4 : (left > 1 ? 2 : 1)); }

inline std::string CudaError(const char* what) {
  const cudaError_t e = cudaGetLastError();
  return e == cudaSuccess ? std::string() : std::string(what) + ": " + cudaGetErrorString(e);
}

}  // namespace augur::qkernels
