// fp32 CPU kernels for the native decode runtime (runtime/native_llama.h): small-M GEMM against
// a row-major weight, and the two inner loops of attention. Plain C++ over raw pointers (no
// torch), like runtime/kernels/kernels_cpu.h; the AVX2 versions live in linear_f32_avx2.cc (compiled
// with -mavx2 -mfma), the AVX-512 GEMM in linear_f32_avx512.cc, the scalar references and the
// dispatch in linear_f32_cpu.cc.
//
// Shapes: M rows of x (1 for a draft step, a few for NAT or verification, the prompt for a
// prefill), W [out, in] row-major (transformers' Linear layout), S keys, D head dim.
#pragma once

#include <cstdint>

namespace augur::fkernels {

// Which GEMM F32GemmCpu runs. kAuto: kAvx512 where available, else kAvx2 where available, else
// kScalar; an explicit kernel this CPU (or build) lacks falls back the same way.
enum class F32Kernel { kAuto, kScalar, kAvx2, kAvx512 };

// True when linear_f32_avx2.cc was compiled with AVX2/FMA and this CPU has both.
bool F32Avx2Available();
// True when linear_f32_avx512.cc was compiled with AVX-512 F/BW/VL and this CPU has them.
bool F32Avx512Available();
const char* F32KernelName(F32Kernel k);  // "auto", "scalar", "avx2", "avx512"
F32Kernel ResolveF32Kernel(F32Kernel k);

// y[m, r] = sum_c x[m, c] * w[r, c] + bias[r] for m < M, r < out (x [M, in], y [M, out],
// bias may be null). OpenMP over output rows, under the same work threshold as the quantized
// kernels (qkernels::UseThreads). The vector kernels take blocks of weight rows outer and
// every tile of rows of x inner, so the weight streams from DRAM once per call whatever M.
//
// Batch invariance: each output is the same float operations in the same order whatever M,
// its tile or the thread split (one accumulation over the columns in order, one horizontal
// sum, then + bias), so row m of a call is bit-equal to a call with that row alone
// (tests/kernel_invariance_test.cc), for each kernel; different kernels differ in rounding.
void F32GemmCpu(const float* x, int64_t m, const float* w, int64_t out, int64_t in, const float* bias, float* y,
                F32Kernel kernel = F32Kernel::kAuto);

// Attention over one head: scores[j] = scale * dot(q, k[j]) for j < S (k [S, D] rows), and
// out[d] = sum_j p[j] * v[j, d] (v [S, D] rows).
void AttentionScores(const float* q, const float* k, int64_t s, int64_t d, float scale, float* scores);
void WeightedValues(const float* p, const float* v, int64_t s, int64_t d, float* out);

// The building blocks: output rows [r0, r1) of a call on one thread, as the scalar reference
// (float accumulation in column order) and the AVX2 and AVX-512 versions (which run the
// scalar one where they were not compiled). F32Gemm* are whole calls on one thread.
void F32RowsScalar(const float* x, int64_t m, const float* w, int64_t out, int64_t in, const float* bias, float* y,
                   int64_t r0, int64_t r1);
void F32RowsAvx2(const float* x, int64_t m, const float* w, int64_t out, int64_t in, const float* bias, float* y,
                 int64_t r0, int64_t r1);
void F32RowsAvx512(const float* x, int64_t m, const float* w, int64_t out, int64_t in, const float* bias, float* y,
                   int64_t r0, int64_t r1);
void F32GemmScalar(const float* x, int64_t m, const float* w, int64_t out, int64_t in, const float* bias, float* y);
void F32GemmAvx2(const float* x, int64_t m, const float* w, int64_t out, int64_t in, const float* bias, float* y);
void F32GemmAvx512(const float* x, int64_t m, const float* w, int64_t out, int64_t in, const float* bias, float* y);
void AttentionScoresScalar(const float* q, const float* k, int64_t s, int64_t d, float scale, float* scores);
void AttentionScoresAvx2(const float* q, const float* k, int64_t s, int64_t d, float scale, float* scores);
void WeightedValuesScalar(const float* p, const float* v, int64_t s, int64_t d, float* out);
void WeightedValuesAvx2(const float* p, const float* v, int64_t s, int64_t d, float* out);
bool F32Avx2Compiled();    // defined in linear_f32_avx2.cc
bool F32Avx512Compiled();  // defined in linear_f32_avx512.cc

}  // namespace augur::fkernels
