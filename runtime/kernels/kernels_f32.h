// fp32 CPU kernels for the native decode runtime (runtime/native_llama.h): small-M GEMM against
// a row-major weight, and the two inner loops of attention. Plain C++ over raw pointers (no
// torch), like runtime/kernels/kernels_cpu.h; the AVX2 versions live in linear_f32_avx2.cc (compiled
// with -mavx2 -mfma), the scalar references and the dispatch in linear_f32_cpu.cc.
//
// Shapes: M rows of x (1 for a draft step, a few for NAT or verification, the prompt for a
// prefill), W [out, in] row-major (transformers' Linear layout), S keys, D head dim.
#pragma once

#include <cstdint>

namespace augur::fkernels {

// True when linear_f32_avx2.cc was compiled with AVX2/FMA and this CPU has both.
bool F32Avx2Available();

// y[m, r] = sum_c x[m, c] * w[r, c] + bias[r] for m < M, r < out (x [M, in], y [M, out],
// bias may be null). The weight is read once per tile of up to 8 rows of x.
void F32GemmCpu(const float* x, int64_t m, const float* w, int64_t out, int64_t in, const float* bias, float* y);

// Attention over one head: scores[j] = scale * dot(q, k[j]) for j < S (k [S, D] rows), and
// out[d] = sum_j p[j] * v[j, d] (v [S, D] rows).
void AttentionScores(const float* q, const float* k, int64_t s, int64_t d, float scale, float* scores);
void WeightedValues(const float* p, const float* v, int64_t s, int64_t d, float* out);

// The building blocks: the scalar references (float accumulation, in index order) and the
// AVX2 versions (which exist only when F32Avx2Compiled()).
void F32GemmScalar(const float* x, int64_t m, const float* w, int64_t out, int64_t in, const float* bias, float* y);
void F32GemmAvx2(const float* x, int64_t m, const float* w, int64_t out, int64_t in, const float* bias, float* y);
void AttentionScoresScalar(const float* q, const float* k, int64_t s, int64_t d, float scale, float* scores);
void AttentionScoresAvx2(const float* q, const float* k, int64_t s, int64_t d, float scale, float* scores);
void WeightedValuesScalar(const float* p, const float* v, int64_t s, int64_t d, float* out);
void WeightedValuesAvx2(const float* p, const float* v, int64_t s, int64_t d, float* out);
bool F32Avx2Compiled();  // defined in linear_f32_avx2.cc

}  // namespace augur::fkernels
