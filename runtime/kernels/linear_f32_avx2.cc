// AVX2/FMA versions of runtime/kernels/kernels_f32.h. Compiled with -mavx2 -mfma (quantize/CMakeLists.txt);
// without them the file provides only F32Avx2Compiled() == false and the scalar path runs.
#include "runtime/kernels/kernels_f32.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

namespace augur::fkernels {
namespace {

inline float Sum8(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)));
}

// MR rows of x against NR rows of W starting at r: MR*NR independent accumulators, each weight
// vector loaded once for the MR rows (MR=1 still has NR chains in flight for the FMA latency).
template <int MR, int NR>
void Tile(const float* x, const float* w, int64_t out, int64_t in, const float* bias, float* y, int64_t r) {
  __m256 acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int n = 0; n < NR; ++n) acc[i][n] = _mm256_setzero_ps();
  int64_t c = 0;
  for (; c + 8 <= in; c += 8) {
    __m256 wv[NR];
    for (int n = 0; n < NR; ++n) wv[n] = _mm256_loadu_ps(w + (r + n) * in + c);
    for (int i = 0; i < MR; ++i) {
      const __m256 xv = _mm256_loadu_ps(x + i * in + c);
      for (int n = 0; n < NR; ++n) acc[i][n] = _mm256_fmadd_ps(xv, wv[n], acc[i][n]);
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int n = 0; n < NR; ++n) {
      float s = Sum8(acc[i][n]);
      for (int64_t cc = c; cc < in; ++cc) s += x[i * in + cc] * w[(r + n) * in + cc];
      y[i * out + r + n] = s + (bias != nullptr ? bias[r + n] : 0.f);
    }
}

template <int MR, int NR>
void Rows(const float* x, const float* w, int64_t out, int64_t in, const float* bias, float* y) {
  int64_t r = 0;
  for (; r + NR <= out; r += NR) Tile<MR, NR>(x, w, out, in, bias, y, r);
  for (; r < out; ++r) Tile<MR, 1>(x, w, out, in, bias, y, r);
}

}  // namespace

bool F32Avx2Compiled() { return true; }

void F32GemmAvx2(const float* x, int64_t m, const float* w, int64_t out, int64_t in, const float* bias, float* y) {
  // Tiles of up to 8 rows of x, so that a NAT forward (gamma masks + a few real tokens) reads
  // the weight once. Accumulators (MR*NR) stay at or under 8 and loads per FMA at or under ~1:
  // more weight rows per tile when there are fewer x rows (M=1 still keeps 4 FMA chains busy).
  int64_t i = 0;
  for (; i + 8 <= m; i += 8) Rows<8, 1>(x + i * in, w, out, in, bias, y + i * out);
  const float* xr = x + i * in;
  float* yr = y + i * out;
  switch (m - i) {
    case 7: Rows<7, 1>(xr, w, out, in, bias, yr); break;
    case 6: Rows<6, 1>(xr, w, out, in, bias, yr); break;
    case 5: Rows<5, 1>(xr, w, out, in, bias, yr); break;
    case 4: Rows<4, 2>(xr, w, out, in, bias, yr); break;
    case 3: Rows<3, 2>(xr, w, out, in, bias, yr); break;
    case 2: Rows<2, 4>(xr, w, out, in, bias, yr); break;
    case 1: Rows<1, 4>(xr, w, out, in, bias, yr); break;
    default: break;
  }
}

void AttentionScoresAvx2(const float* q, const float* k, int64_t s, int64_t d, float scale, float* scores) {
  if (d % 8 != 0) return AttentionScoresScalar(q, k, s, d, scale, scores);
  for (int64_t j = 0; j < s; ++j) {
    const float* kj = k + j * d;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t c = 0; c < d; c += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(q + c), _mm256_loadu_ps(kj + c), acc);
    scores[j] = Sum8(acc) * scale;
  }
}

void WeightedValuesAvx2(const float* p, const float* v, int64_t s, int64_t d, float* out) {
  if (d % 8 != 0 || d > 256) return WeightedValuesScalar(p, v, s, d, out);
  __m256 acc[32];  // d <= 256
  const int64_t nv = d / 8;
  for (int64_t c = 0; c < nv; ++c) acc[c] = _mm256_setzero_ps();
  for (int64_t j = 0; j < s; ++j) {
    const __m256 pj = _mm256_set1_ps(p[j]);
    const float* vj = v + j * d;
    for (int64_t c = 0; c < nv; ++c) acc[c] = _mm256_fmadd_ps(pj, _mm256_loadu_ps(vj + 8 * c), acc[c]);
  }
  for (int64_t c = 0; c < nv; ++c) _mm256_storeu_ps(out + 8 * c, acc[c]);
}

}  // namespace augur::fkernels

#else  // no AVX2 at compile time

namespace augur::fkernels {
bool F32Avx2Compiled() { return false; }
void F32GemmAvx2(const float* x, int64_t m, const float* w, int64_t out, int64_t in, const float* bias, float* y) {
  F32GemmScalar(x, m, w, out, in, bias, y);
}
void AttentionScoresAvx2(const float* q, const float* k, int64_t s, int64_t d, float scale, float* scores) {
  AttentionScoresScalar(q, k, s, d, scale, scores);
}
void WeightedValuesAvx2(const float* p, const float* v, int64_t s, int64_t d, float* out) {
  WeightedValuesScalar(p, v, s, d, out);
}
}  // namespace augur::fkernels

#endif
