// CPU kernels for quantized linears, as plain C++ over raw pointers (no torch): the AVX2 files
// are compiled with -mavx2 -mfma and must not pull in code that could run on a CPU without it.
//
// Every kernel computes y[m, r] = sum_c x[m, c] * W[r, c] + bias[r] for m < M (row-major x
// [M, in] and y [M, out]), with W the dequantized weight (quantize/qweight.h). M is small (1
// for a draft step, up to 16 for verification); the weight is read once per tile of 4 rows of x.
#pragma once

#include <cstdint>
#include <vector>

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

// kScalar: portable, float. kAvx2: AVX2/FMA, float activations (exact up to float summation).
// kAvx2Q8: AVX2 with activations quantized per 32 columns to int8 and integer dot products
// (linear_q8_avx2.cc): several times fewer instructions per weight, error bounded by
// sum_c |W[r,c]| * dx/2. kAuto: DefaultCpuKernel().
enum class CpuKernel { kAuto, kScalar, kAvx2, kAvx2Q8 };

// True when the AVX2 file was compiled with AVX2/FMA and this CPU has both.
bool Avx2Available();
const char* CpuKernelName(CpuKernel k);  // "auto", "scalar", "avx2", "avx2-q8"
// What kAuto means: kAvx2Q8 when AVX2 is available, else kScalar; the environment variable
// AUGUR_QUANT_KERNEL=scalar|avx2|avx2-q8 (read once) or SetDefaultCpuKernel overrides it.
// A kernel the CPU cannot run falls back to kScalar.
CpuKernel DefaultCpuKernel();
void SetDefaultCpuKernel(CpuKernel k);
// The kernel a call with `k` runs: kAuto resolved, and kScalar where AVX2 is missing.
CpuKernel ResolveCpuKernel(CpuKernel k);

// x quantized for the kAvx2Q8 kernels: per row of x and block of 32 columns, int8 codes
// (int4 weights: the block's even columns, then its odd ones) and the block's scale; for int4
// also, per row and group, sum over the group's blocks of scale * sum(codes) (the zero-point
// term). Columns past `in` are zero.
struct Q8Activations {
  std::vector<int8_t> q;        // [m, blocks, 32]
  std::vector<float> scale;     // [m, blocks]
  std::vector<float> group_sum; // [m, groups] (int4)
  int64_t blocks = 0;
};
Q8Activations QuantizeActivations(const float* x, int64_t m, int64_t in, int64_t blocks, bool even_odd,
                                  int64_t group);

// Whole calls: OpenMP over output rows (when the work is large enough to pay for it).
// kAuto picks AVX2 when available; asking for kAvx2 without it falls back to scalar.
void Int8GemmCpu(const float* x, int64_t m, const Int8Weights& w, const float* bias, float* y,
                 CpuKernel kernel = CpuKernel::kAuto);
void Int4GemmCpu(const float* x, int64_t m, const Int4Weights& w, const float* bias, float* y,
                 CpuKernel kernel = CpuKernel::kAuto);

// The dequantized weight W [out, in] (row-major, `in` real columns), OpenMP over rows; bit-equal
// to quantize/qweight.h Dequantize. For the dequantize-then-GEMM route at larger M (qlinear.h).
void DequantizeInt8Cpu(const Int8Weights& w, float* out);
void DequantizeInt4Cpu(const Int4Weights& w, float* out);

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
void Int8RowsQ8Avx2(const Q8Activations& xa, int64_t m, const Int8Weights& w, const float* bias, float* y,
                    int64_t r0, int64_t r1);
void Int4RowsQ8Avx2(const Q8Activations& xa, int64_t m, const Int4Weights& w, const float* bias, float* y,
                    int64_t r0, int64_t r1);
// Rows [r0, r1) of DequantizeInt4Cpu (out points at row 0).
void DequantizeInt4RowsScalar(const Int4Weights& w, float* out, int64_t r0, int64_t r1);
void DequantizeInt4RowsAvx2(const Int4Weights& w, float* out, int64_t r0, int64_t r1);
bool Avx2Compiled();  // defined in the AVX2 files' translation unit

}  // namespace augur::qkernels
