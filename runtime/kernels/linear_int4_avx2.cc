// int4 CPU linear with AVX2/FMA. Eight nibbles (4 bytes, columns c..c+7 in order) are
// broadcast to all lanes, shifted right by 0,4,..,28 per lane and masked: lane i then holds
// column c+i with no shuffles. Per group the kernel sums q*x and subtracts z * sum(x) (xsum,
// computed once per call) before scaling, so no per-element dequantization is needed:
//   y = sum_g s_g * (sum_{c in g} q_c x_c - z_g * sum_{c in g} x_c).
// Up to 4 rows of x share each decoded vector. Compiled with -mavx2 -mfma.
#include <cstring>

#include "runtime/kernels/kernels_cpu.h"

#if defined(__AVX2__) && defined(__FMA__)
#include "runtime/kernels/avx2_util.h"

namespace augur::qkernels {
namespace {

inline __m256 Decode8(const uint8_t* q) {
  uint32_t v;
  std::memcpy(&v, q, 4);
  const __m256i shifts = _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28);
  const __m256i b = _mm256_srlv_epi32(_mm256_set1_epi32(static_cast<int>(v)), shifts);
  return _mm256_cvtepi32_ps(_mm256_and_si256(b, _mm256_set1_epi32(0x0F)));
}

template <int MT>
void Tile(const float* x, const Int4Weights& w, const float* xsum, const float* bias, float* y, int64_t r) {
  const uint8_t* q = w.q + r * (w.in_padded / 2);
  const int64_t ng = w.groups();
  __m256 tot[MT];
  float corr[MT];
  for (int t = 0; t < MT; ++t) {
    tot[t] = _mm256_setzero_ps();
    corr[t] = 0;
  }
  for (int64_t k = 0; k < ng; ++k) {
    const int64_t c0 = k * w.group, c1 = c0 + w.group < w.in ? c0 + w.group : w.in;
    if (c0 >= c1) break;  // only padding left
    __m256 a0[MT], a1[MT];
    for (int t = 0; t < MT; ++t) a0[t] = a1[t] = _mm256_setzero_ps();
    int64_t c = c0;
    for (; c + 16 <= c1; c += 16) {
      const __m256 w0 = Decode8(q + c / 2), w1 = Decode8(q + c / 2 + 4);
      for (int t = 0; t < MT; ++t) {
        a0[t] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + t * w.in + c), a0[t]);
        a1[t] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + t * w.in + c + 8), a1[t]);
      }
    }
    for (; c + 8 <= c1; c += 8) {
      const __m256 w0 = Decode8(q + c / 2);
      for (int t = 0; t < MT; ++t) a0[t] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + t * w.in + c), a0[t]);
    }
    const float s = w.scales[r * ng + k];
    const float z = static_cast<float>(w.zeros[r * ng + k]);
    const __m256 sv = _mm256_set1_ps(s);
    for (int t = 0; t < MT; ++t) {
      float tail = 0;  // columns past the last multiple of 8 (only in a partial last group)
      for (int64_t j = c; j < c1; ++j) {
        const int code = (j & 1) ? (q[j >> 1] >> 4) : (q[j >> 1] & 0x0F);
        tail += static_cast<float>(code) * x[t * w.in + j];
      }
      tot[t] = _mm256_fmadd_ps(sv, _mm256_add_ps(a0[t], a1[t]), tot[t]);
      corr[t] += s * (z * xsum[t * ng + k] - tail);
    }
  }
  for (int t = 0; t < MT; ++t) y[t * w.out + r] = HorizontalSum(tot[t]) - corr[t] + (bias ? bias[r] : 0.f);
}

}  // namespace

void Int4RowsAvx2(const float* x, int64_t m, const Int4Weights& w, const float* xsum, const float* bias,
                  float* y, int64_t r0, int64_t r1) {
  const int64_t ng = w.groups();
  // Weight rows outer (a row stays in L1 across the m-tiles: one DRAM pass whatever M); each
  // output is one accumulation in column order whatever its tile (batch invariance).
  for (int64_t r = r0; r < r1; ++r) {
    for (int64_t i = 0; i < m; i += 4) {
      const float* xt = x + i * w.in;
      const float* st = xsum + i * ng;
      float* yt = y + i * w.out;
      const int64_t mt = m - i < 4 ? m - i : 4;
      switch (mt) {
        case 1: Tile<1>(xt, w, st, bias, yt, r); break;
        case 2: Tile<2>(xt, w, st, bias, yt, r); break;
        case 3: Tile<3>(xt, w, st, bias, yt, r); break;
        default: Tile<4>(xt, w, st, bias, yt, r); break;
      }
    }
  }
}

// (code - z) * s per element, 8 columns per Decode8: float(code) - float(z) is exact, so the
// values equal the scalar Int4Value bit for bit.
void DequantizeInt4RowsAvx2(const Int4Weights& w, float* out, int64_t r0, int64_t r1) {
  const int64_t ng = w.groups();
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* q = w.q + r * (w.in_padded / 2);
    float* o = out + r * w.in;
    for (int64_t k = 0; k < ng; ++k) {
      const float s = w.scales[r * ng + k];
      const int z = w.zeros[r * ng + k];
      const __m256 sv = _mm256_set1_ps(s), zv = _mm256_set1_ps(static_cast<float>(z));
      const int64_t c0 = k * w.group, c1 = c0 + w.group < w.in ? c0 + w.group : w.in;
      int64_t c = c0;
      for (; c + 8 <= c1; c += 8) _mm256_storeu_ps(o + c, _mm256_mul_ps(_mm256_sub_ps(Decode8(q + c / 2), zv), sv));
      for (; c < c1; ++c) {
        const int code = (c & 1) ? (q[c >> 1] >> 4) : (q[c >> 1] & 0x0F);
        o[c] = static_cast<float>(code - z) * s;
      }
    }
  }
}

}  // namespace augur::qkernels

#else  // no AVX2/FMA from this compiler

namespace augur::qkernels {
void Int4RowsAvx2(const float* x, int64_t m, const Int4Weights& w, const float*, const float* bias, float* y,
                  int64_t r0, int64_t r1) {
  Int4RowsScalar(x, m, w, bias, y, r0, r1);
}
void DequantizeInt4RowsAvx2(const Int4Weights& w, float* out, int64_t r0, int64_t r1) {
  DequantizeInt4RowsScalar(w, out, r0, r1);
}
}  // namespace augur::qkernels

#endif
