// CPU kernels for quantized linears, as plain C++ over raw pointers (no torch): the AVX2 files
// are compiled with -mavx2 -mfma and must not pull in code that could run on a CPU without it.
//
// Every kernel computes y[m, r] = sum_c x[m, c] * W[r, c] + bias[r] for m < M (row-major x
// [M, in] and y [M, out]), with W the dequantized weight (quantize/qweight.h). M is small (1
// for a draft step, up to 16 for verification); the weight is read once per tile of 4 rows of x.
#pragma once

#include <cstdint>

namespace augur::qkernels {

struct Int8Weights {
  const int8_t* q;      // [out, in]
  const float* scales;  // [out]
  int64_t out, in;
};

struct Int4Weights {
  const uint8_t* q;      // [out, in_padded / 2], two columns per byte (low nibble first)
  const float* scales;   // [out, groups]
  const uint8_t* zeros;  // [out, groups]
  int64_t out, in, in_padded, group;
  int64_t groups() const { return in_padded / group; }
};

enum class CpuKernel { kAuto, kScalar, kAvx2 };

// True when the AVX2 file was compiled with AVX2/FMA and this CPU has both.
bool Avx2Available();
const char* CpuKernelName(CpuKernel k);  // "auto", "scalar", "avx2"

// Whole calls: OpenMP over output rows (when the work is large enough to pay for it).
// kAuto picks AVX2 when available; asking for kAvx2 without it falls back to scalar.
void Int8GemmCpu(const float* x, int64_t m, const Int8Weights& w, const float* bias, float* y,
                 CpuKernel kernel = CpuKernel::kAuto);
void Int4GemmCpu(const float* x, int64_t m, const Int4Weights& w, const float* bias, float* y,
                 CpuKernel kernel = CpuKernel::kAuto);

// Rows [r0, r1) of one call; the building blocks of the above.
void Int8RowsScalar(const float* x, int64_t m, const Int8Weights& w, const float* bias, float* y, int64_t r0,
                    int64_t r1);
void Int8RowsAvx2(const float* x, int64_t m, const Int8Weights& w, const float* bias, float* y, int64_t r0,
                  int64_t r1);
void Int4RowsScalar(const float* x, int64_t m, const Int4Weights& w, const float* bias, float* y, int64_t r0,
                    int64_t r1);
// xsum [m, groups]: the sum of x over each group's (real) columns, shared by every row: the
// AVX2 kernel computes s * (sum q*x - z * sum x) per group instead of dequantizing.
void Int4RowsAvx2(const float* x, int64_t m, const Int4Weights& w, const float* xsum, const float* bias,
                  float* y, int64_t r0, int64_t r1);
bool Avx2Compiled();  // defined in the AVX2 files' translation unit

}  // namespace augur::qkernels
