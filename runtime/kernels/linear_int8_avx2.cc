// int8 CPU linear with AVX2/FMA: 8 weights at a time are sign-extended to int32, converted to
// float and multiplied into up to 4 rows of x at once; two accumulator chains per row hide the
// FMA latency. Compiled with -mavx2 -mfma (quantize/CMakeLists.txt); without compiler support
// the file provides only Avx2Compiled() == false and the scalar path runs.
#include <cstring>

#include "runtime/kernels/kernels_cpu.h"

#if defined(__AVX2__) && defined(__FMA__)
#include "runtime/kernels/avx2_util.h"

namespace augur::qkernels {

// Both *_avx2.cc files get the same flags, so one answer covers both.
bool Avx2Compiled() { return true; }

namespace {

inline __m256 Load8(const int8_t* q) {
  int64_t v;
  std::memcpy(&v, q, 8);
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_cvtsi64_si128(v)));
}

template <int MT>
void Tile(const float* x, const Int8Weights& w, const float* bias, float* y, int64_t r) {
  const int8_t* q = w.q + r * w.in;
  __m256 a0[MT], a1[MT];
  for (int t = 0; t < MT; ++t) a0[t] = a1[t] = _mm256_setzero_ps();
  int64_t c = 0;
  for (; c + 16 <= w.in; c += 16) {
    const __m256 w0 = Load8(q + c), w1 = Load8(q + c + 8);
    for (int t = 0; t < MT; ++t) {
      a0[t] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + t * w.in + c), a0[t]);
      a1[t] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + t * w.in + c + 8), a1[t]);
    }
  }
  for (; c + 8 <= w.in; c += 8) {
    const __m256 w0 = Load8(q + c);
    for (int t = 0; t < MT; ++t) a0[t] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + t * w.in + c), a0[t]);
  }
  for (int t = 0; t < MT; ++t) {
    float acc = HorizontalSum(_mm256_add_ps(a0[t], a1[t]));
    for (int64_t k = c; k < w.in; ++k) acc += static_cast<float>(q[k]) * x[t * w.in + k];
    y[t * w.out + r] = acc * w.scales[r] + (bias ? bias[r] : 0.f);
  }
}

}  // namespace

void Int8RowsAvx2(const float* x, int64_t m, const Int8Weights& w, const float* bias, float* y, int64_t r0,
                  int64_t r1) {
  // Weight rows outer (a row stays in L1 across the m-tiles: one DRAM pass whatever M); each
  // output is one accumulation in column order whatever its tile (batch invariance).
  for (int64_t r = r0; r < r1; ++r) {
    for (int64_t i = 0; i < m; i += 4) {
      const float* xt = x + i * w.in;
      float* yt = y + i * w.out;
      const int64_t mt = m - i < 4 ? m - i : 4;
      switch (mt) {
        case 1: Tile<1>(xt, w, bias, yt, r); break;
        case 2: Tile<2>(xt, w, bias, yt, r); break;
        case 3: Tile<3>(xt, w, bias, yt, r); break;
        default: Tile<4>(xt, w, bias, yt, r); break;
      }
    }
  }
}

}  // namespace augur::qkernels

#else  // no AVX2/FMA from this compiler

namespace augur::qkernels {
bool Avx2Compiled() { return false; }
void Int8RowsAvx2(const float* x, int64_t m, const Int8Weights& w, const float* bias, float* y, int64_t r0,
                  int64_t r1) {
  Int8RowsScalar(x, m, w, bias, y, r0, r1);
}
}  // namespace augur::qkernels

#endif
