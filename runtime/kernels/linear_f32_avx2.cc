// AVX2/FMA versions of runtime/kernels/kernels_f32.h. Compiled with -mavx2 -mfma -ffp-contract=off
// (runtime/CMakeLists.txt);
// without them the file provides only F32Avx2Compiled() == false and the scalar path runs.
#include "runtime/kernels/kernels_f32.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

#include "runtime/kernels/prefetch_util.h"

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

// Weight rows [r, r + rn) (rn <= 4) times MR rows of x: NR weight rows per tile, fewer when
// there are more rows of x (accumulators MR*NR at or under 8 of the 16 ymm registers).
template <int MR>
void Block(const float* x, const float* w, int64_t out, int64_t in, const float* bias, float* y, int64_t r,
           int64_t rn) {
  constexpr int NR = MR >= 5 ? 1 : MR >= 3 ? 2 : 4;
  int64_t j = 0;
  for (; j + NR <= rn; j += NR) Tile<MR, NR>(x, w, out, in, bias, y, r + j);
  for (; j < rn; ++j) Tile<MR, 1>(x, w, out, in, bias, y, r + j);
}

}  // namespace

bool F32Avx2Compiled() { return true; }

// Blocks of 4 weight rows outer (at most 24 KB at in = 1536), every tile of up to 8 rows of x
// inner: the block comes from DRAM for the first tile and from cache for the others, so the
// weight streams once per call whatever M. Each output is one accumulator over the columns in
// order, Sum8, the scalar tail and the bias, in every tile shape (batch invariance).
void F32RowsAvx2(const float* x, int64_t m, const float* w, int64_t out, int64_t in, const float* bias, float* y,
                 int64_t r0, int64_t r1) {
  const int64_t tiles = (m + 7) / 8;
  for (int64_t r = r0; r < r1; r += 4) {
    const int64_t rn = r1 - r < 4 ? r1 - r : 4;
    // The block 8 rows on, a slice per tile of x (prefetch_util.h).
    const int64_t pa = r + 8 < out ? r + 8 : out, pb = pa + 4 < out ? pa + 4 : out;
    int64_t i = 0;
    for (; i + 8 <= m; i += 8) {
      qkernels::PrefetchSlice(w + pa * in, (pb - pa) * in * 4, i / 8, tiles);
      Block<8>(x + i * in, w, out, in, bias, y + i * out, r, rn);
    }
    if (i < m) qkernels::PrefetchSlice(w + pa * in, (pb - pa) * in * 4, i / 8, tiles);
    const float* xr = x + i * in;
    float* yr = y + i * out;
    switch (m - i) {
      case 7: Block<7>(xr, w, out, in, bias, yr, r, rn); break;
      case 6: Block<6>(xr, w, out, in, bias, yr, r, rn); break;
      case 5: Block<5>(xr, w, out, in, bias, yr, r, rn); break;
      case 4: Block<4>(xr, w, out, in, bias, yr, r, rn); break;
      case 3: Block<3>(xr, w, out, in, bias, yr, r, rn); break;
      case 2: Block<2>(xr, w, out, in, bias, yr, r, rn); break;
      case 1: Block<1>(xr, w, out, in, bias, yr, r, rn); break;
      default: break;
    }
  }
}

void F32GemmAvx2(const float* x, int64_t m, const float* w, int64_t out, int64_t in, const float* bias, float* y) {
  F32RowsAvx2(x, m, w, out, in, bias, y, 0, out);
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
void F32RowsAvx2(const float* x, int64_t m, const float* w, int64_t out, int64_t in, const float* bias, float* y,
                 int64_t r0, int64_t r1) {
  F32RowsScalar(x, m, w, out, in, bias, y, r0, r1);
}
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
