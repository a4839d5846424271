// CUDA kernels for quantized linears, as a plain C++ interface (no torch or CUDA types cross
// nvcc; the stream is a cudaStream_t passed as void*). Same contract as kernels_cpu.h: y[m, r] =
// sum_c x[m, c] * W[r, c] + bias[r], all pointers in device memory, x [M, in], y [M, out].
// Each returns "" on success, else the CUDA error text.
#pragma once

#include <cstdint>
#include <string>

namespace augur::qkernels {

std::string Int8GemmCuda(const float* x, int64_t m, const int8_t* q, const float* scales, const float* bias,
                         float* y, int64_t out, int64_t in, void* stream);
std::string Int4GemmCuda(const float* x, int64_t m, const uint8_t* q, const float* scales, const uint8_t* zeros,
                         const float* bias, float* y, int64_t out, int64_t in, int64_t in_padded, int64_t group,
                         void* stream);

}  // namespace augur::qkernels
