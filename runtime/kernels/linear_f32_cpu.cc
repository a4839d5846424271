// Scalar references for runtime/kernels/kernels_f32.h and the one dispatch point (AVX2 when this CPU
// and the build have it). Built without -mavx2, so it runs anywhere.
#include "runtime/kernels/kernels_f32.h"

namespace augur::fkernels {

bool F32Avx2Available() {
  static const bool ok = F32Avx2Compiled() && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return ok;
}

void F32GemmScalar(const float* x, int64_t m, const float* w, int64_t out, int64_t in, const float* bias, float* y) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t r = 0; r < out; ++r) {
      float s = 0.f;
      for (int64_t c = 0; c < in; ++c) s += x[i * in + c] * w[r * in + c];
      y[i * out + r] = s + (bias != nullptr ? bias[r] : 0.f);
    }
}

void AttentionScoresScalar(const float* q, const float* k, int64_t s, int64_t d, float scale, float* scores) {
  for (int64_t j = 0; j < s; ++j) {
    float acc = 0.f;
    for (int64_t c = 0; c < d; ++c) acc += q[c] * k[j * d + c];
    scores[j] = acc * scale;
  }
}

void WeightedValuesScalar(const float* p, const float* v, int64_t s, int64_t d, float* out) {
  for (int64_t c = 0; c < d; ++c) out[c] = 0.f;
  for (int64_t j = 0; j < s; ++j)
    for (int64_t c = 0; c < d; ++c) out[c] += p[j] * v[j * d + c];
}

void F32GemmCpu(const float* x, int64_t m, const float* w, int64_t out, int64_t in, const float* bias, float* y) {
  if (F32Avx2Available()) F32GemmAvx2(x, m, w, out, in, bias, y);
  else F32GemmScalar(x, m, w, out, in, bias, y);
}

void AttentionScores(const float* q, const float* k, int64_t s, int64_t d, float scale, float* scores) {
  if (F32Avx2Available()) AttentionScoresAvx2(q, k, s, d, scale, scores);
  else AttentionScoresScalar(q, k, s, d, scale, scores);
}

void WeightedValues(const float* p, const float* v, int64_t s, int64_t d, float* out) {
  if (F32Avx2Available()) WeightedValuesAvx2(p, v, s, d, out);
  else WeightedValuesScalar(p, v, s, d, out);
}

}  // namespace augur::fkernels
