// int8/int4 CPU linears with int8 activations (AVX2): x is quantized per block of 32 columns
// to int8 (scale max|x|/127, as llama.cpp's Q8 dot products do) and the products are summed
// in integers with maddubs (u8 x s8 -> s16 pairs) and madd (-> s32), 32 weights per
// instruction, instead of decoding every weight to float. The result differs from the exact
// kernels by at most sum_c |W[r,c]| * dx(c) / 2 (dx = the block's x step), which the tests
// check as a bound.
//
// Activation layout (made once per call by QuantizeActivations in linear_int8_cpu.cc, Q8Layout::kEvenOdd32 for int4): per
// block of 32 columns, int8 codes; for int4 the block's even columns first, then the odd
// ones, to match the packed bytes (low nibble = even column), so one 16-byte load of weights
// split into low and high nibbles lines up with one 32-byte load of x.
#include <cstring>

#include "runtime/kernels/kernels_cpu.h"

#if defined(__AVX2__) && defined(__FMA__)
#include "runtime/kernels/avx2_util.h"
#include "runtime/kernels/prefetch_util.h"

namespace augur::qkernels {
namespace {

inline __m256i Ones16() { return _mm256_set1_epi16(1); }

// Weight rows r..r+R-1 times x rows m0..m0+MT-1: each block of x is loaded once for R rows,
// and the R * MT accumulators are independent FMA chains.
template <int R, int MT>
void Int4Tile(const Q8Activations& xa, const Int4Weights& w, const float* bias, float* y, int64_t r, int64_t m0) {
  const int64_t row_bytes = w.in_padded / 2, ng = w.groups(), bpg = w.group / 32, nb = xa.blocks;
  const __m128i low = _mm_set1_epi8(0x0F);
  // One accumulator per (weight row, row of x) over the whole weight row: each block's
  // integer dot is scaled by (group scale * block scale) as it is added; the zero-point term
  // is scalar.
  __m256 acc[R][MT];
  float corr[R][MT];
  for (int i = 0; i < R; ++i)
    for (int t = 0; t < MT; ++t) {
      acc[i][t] = _mm256_setzero_ps();
      corr[i][t] = 0;
    }
  for (int64_t k = 0; k < ng; ++k) {
    float s[R];
    for (int i = 0; i < R; ++i) {
      s[i] = w.scales[(r + i) * ng + k];
      const float sz = s[i] * static_cast<float>(w.zeros[(r + i) * ng + k]);
      for (int t = 0; t < MT; ++t) corr[i][t] += sz * xa.group_sum[(m0 + t) * ng + k];
    }
    for (int64_t b = k * bpg; b < (k + 1) * bpg; ++b) {
      __m256i wq[R];
      for (int i = 0; i < R; ++i) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w.q + (r + i) * row_bytes + b * 16));
        wq[i] = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), low), _mm_and_si128(v, low));
      }
      for (int t = 0; t < MT; ++t) {
        const int64_t row = (m0 + t) * nb + b;
        const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xa.q.data() + row * 32));
        const float xs = xa.scale[row];
        for (int i = 0; i < R; ++i) {
          const __m256i dot = _mm256_madd_epi16(_mm256_maddubs_epi16(wq[i], xq), Ones16());
          acc[i][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_set1_ps(s[i] * xs), acc[i][t]);
        }
      }
    }
  }
  for (int i = 0; i < R; ++i)
    for (int t = 0; t < MT; ++t)
      y[(m0 + t) * w.out + r + i] = HorizontalSum(acc[i][t]) - corr[i][t] + (bias ? bias[r + i] : 0.f);
}

template <int R, int MT>
void Int8Tile(const Q8Activations& xa, const Int8Weights& w, const float* bias, float* y, int64_t r, int64_t m0) {
  const int64_t nb = xa.blocks, full = w.in / 32;
  __m256 acc[R][MT];
  for (int i = 0; i < R; ++i)
    for (int t = 0; t < MT; ++t) acc[i][t] = _mm256_setzero_ps();
  for (int64_t b = 0; b < full; ++b) {
    __m256i wq[R], wabs[R];
    for (int i = 0; i < R; ++i) {
      wq[i] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w.q + (r + i) * w.in + b * 32));
      wabs[i] = _mm256_sign_epi8(wq[i], wq[i]);
    }
    for (int t = 0; t < MT; ++t) {
      const int64_t row = (m0 + t) * nb + b;
      const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xa.q.data() + row * 32));
      const __m256 xs = _mm256_set1_ps(xa.scale[row]);
      for (int i = 0; i < R; ++i) {
        // |w| * (x * sign(w)) = w * x, with the unsigned operand first as maddubs needs.
        const __m256i dot = _mm256_madd_epi16(_mm256_maddubs_epi16(wabs[i], _mm256_sign_epi8(xq, wq[i])), Ones16());
        acc[i][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), xs, acc[i][t]);
      }
    }
  }
  for (int i = 0; i < R; ++i)
    for (int t = 0; t < MT; ++t) {
      const int8_t* q = w.q + (r + i) * w.in;
      float sum = HorizontalSum(acc[i][t]);
      if (full < nb) {  // the last, partial block: scalar over its real columns
        const int64_t row = (m0 + t) * nb + full;
        int32_t part = 0;
        for (int64_t c = full * 32; c < w.in; ++c) part += q[c] * xa.q[row * 32 + (c - full * 32)];
        sum += static_cast<float>(part) * xa.scale[row];
      }
      y[(m0 + t) * w.out + r + i] = sum * w.scales[r + i] + (bias ? bias[r + i] : 0.f);
    }
}

// Blocks of 4 weight rows outer, every m-tile of x inner: a block (at most 6 KB at in = 1536)
// comes from DRAM for its first m-tile and from L1 for the others, so a call streams the
// weight once whatever M. A 1-row m-tile (M = 1, or the last row of M = 5) runs the block as
// one 4-row tile (four FMA chains); wider ones run each weight row by 2-4 rows of x (16 ymm
// registers). Both compute each output with the same operations in the same order (one
// accumulator over the blocks, HorizontalSum, the scalar epilogue), so an output's bits do
// not depend on M, its tile or the thread split (batch invariance, kernels_cpu.h).
// prefetch(ra, rb, part, parts): slice `part` of `parts` of weight rows [ra, rb) (prefetch_util.h);
// each m-tile prefetches a slice of the block 8 rows on.
template <typename Tile1, typename Tile4, typename Prefetch>
void Rows(int64_t m, int64_t r0, int64_t r1, int64_t out, Tile1&& tile, Tile4&& tile4, Prefetch&& prefetch) {
  const int64_t tiles = (m + 3) / 4;
  for (int64_t r = r0; r < r1; r += 4) {
    const int64_t rn = r1 - r < 4 ? r1 - r : 4;
    const int64_t pa = r + 8 < out ? r + 8 : out, pb = pa + 4 < out ? pa + 4 : out;
    for (int64_t i = 0; i < m; i += 4) {
      prefetch(pa, pb, i / 4, tiles);
      const int64_t mt = m - i < 4 ? m - i : 4;
      if (mt == 1 && rn == 4) {
        tile4(r, i);
        continue;
      }
      for (int64_t j = 0; j < rn; ++j) tile(mt, r + j, i);
    }
  }
}

}  // namespace

void Int4RowsQ8Avx2(const Q8Activations& xa, int64_t m, const Int4Weights& w, const float* bias, float* y,
                    int64_t r0, int64_t r1) {
  Rows(
      m, r0, r1, w.out,
      [&](int64_t mt, int64_t r, int64_t i) {
        switch (mt) {
          case 1: Int4Tile<1, 1>(xa, w, bias, y, r, i); break;
          case 2: Int4Tile<1, 2>(xa, w, bias, y, r, i); break;
          case 3: Int4Tile<1, 3>(xa, w, bias, y, r, i); break;
          default: Int4Tile<1, 4>(xa, w, bias, y, r, i); break;
        }
      },
      [&](int64_t r, int64_t i) { Int4Tile<4, 1>(xa, w, bias, y, r, i); },
      [&](int64_t ra, int64_t rb, int64_t part, int64_t parts) {
        const int64_t ng = w.groups();
        PrefetchSlice(w.q + ra * (w.in_padded / 2), (rb - ra) * (w.in_padded / 2), part, parts);
        PrefetchSlice(w.scales + ra * ng, (rb - ra) * ng * 4, part, parts);
        PrefetchSlice(w.zeros + ra * ng, (rb - ra) * ng, part, parts);
      });
}

void Int8RowsQ8Avx2(const Q8Activations& xa, int64_t m, const Int8Weights& w, const float* bias, float* y,
                    int64_t r0, int64_t r1) {
  Rows(
      m, r0, r1, w.out,
      [&](int64_t mt, int64_t r, int64_t i) {
        switch (mt) {
          case 1: Int8Tile<1, 1>(xa, w, bias, y, r, i); break;
          case 2: Int8Tile<1, 2>(xa, w, bias, y, r, i); break;
          case 3: Int8Tile<1, 3>(xa, w, bias, y, r, i); break;
          default: Int8Tile<1, 4>(xa, w, bias, y, r, i); break;
        }
      },
      [&](int64_t r, int64_t i) { Int8Tile<4, 1>(xa, w, bias, y, r, i); },
      [&](int64_t ra, int64_t rb, int64_t part, int64_t parts) {
        PrefetchSlice(w.q + ra * w.in, (rb - ra) * w.in, part, parts);
      });
}

}  // namespace augur::qkernels

#else

namespace augur::qkernels {
// Never called: Avx2Available() is false without AVX2, and the callers check it.
void Int4RowsQ8Avx2(const Q8Activations&, int64_t, const Int4Weights&, const float*, float*, int64_t, int64_t) {}
void Int8RowsQ8Avx2(const Q8Activations&, int64_t, const Int8Weights&, const float*, float*, int64_t, int64_t) {}
}  // namespace augur::qkernels

#endif
