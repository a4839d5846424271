// int8/int4 CPU linears with int8 activations and AVX-512 VNNI: the same activation
// quantization as linear_q8_avx2.cc (per 32 columns, scale max|x|/127), but the products are
// summed by dpbusd (u8 x s8, four products per int32 lane) over 64 weights per instruction,
// so the error bound is the same: sum_c |W[r,c]| * dx(c) / 2.
//
// Per 64 columns (a superblock of two 32-blocks) and row: one dpbusd, one int->float
// conversion and one FMA by the per-lane scale (x block scale times weight group scale).
//   int4: codes are unsigned 0..15 with a zero point z per group, W = s * (q - z), so
//     sum W x = sum_g s_g * (sum q x - z_g * sum x); dpbusd takes q as the unsigned operand
//     directly, and the z term is the per-call group sums of x (16 groups per vector).
//     32 packed bytes are broadcast to [bytes 0-15, 16-31, 0-15, 16-31] and masked to their
//     low nibbles (even columns) in the lower half, high nibbles (odd columns, as 16 q) in
//     the upper half, the order QuantizeActivations writes for Q8Layout::kEvenOdd64.
//   int8: weights are signed; w + 128 (xor 0x80) is the unsigned operand and the extra
//     128 * sum x is one scalar per row of x (Q8Activations::row_sum).
// Batch invariance: every output y[m, r] is the same float operations in the same order in
// every tile shape: one accumulator vector over the superblocks in column order (int4: then
// the zero-point terms, 16 groups a step), the one horizontal sum of avx512_util.h, then the
// scalar epilogue; activations are quantized per row. So row m of a call equals a call with
// that row alone, bit for bit, whatever M or the thread split (tests/kernel_invariance_test).
// Compiled with -mavx512f -mavx512bw -mavx512vl -mavx512vnni -ffp-contract=off
// (runtime/CMakeLists.txt); called only when Avx512VnniAvailable().
#include <algorithm>

#include "runtime/kernels/kernels_cpu.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512VNNI__)
// GCC 12's AVX-512 headers initialise "undefined" vectors as `__m512i __Y = __Y;`, which
// -W(maybe-)uninitialized reports at every inlined use; the values are never read.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include "runtime/kernels/avx512_util.h"

namespace augur::qkernels {

bool Avx512VnniCompiled() { return true; }

namespace {

// 64 int4 codes of one row from 32 packed bytes (16 for the half superblock at the end of a
// g32 row with in_padded % 64 == 32), in kEvenOdd64 order: the low nibbles as they are, the
// high ones left in place (16 q, at most 240, still a u8), which the lane scales of the odd
// columns undo (they carry d / 16), saving a shift per row and superblock.
inline __m512i Unpack64(const uint8_t* p, bool half) {
  const __m256i v = half ? _mm256_maskz_loadu_epi8(0xFFFF, p) : _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  const __m512i nibbles = _mm512_inserti64x4(_mm512_set1_epi8(0x0F), _mm256_set1_epi8(static_cast<char>(0xF0)), 1);
  return _mm512_and_si512(_mm512_broadcast_i64x4(v), nibbles);
}

// Weight rows r..r+R-1 times x rows m0..m0+MT-1. kG32: groups of 32 columns, two per
// superblock (lanes 0-3 and 8-11 hold block 2sb, lanes 4-7 and 12-15 block 2sb+1); otherwise
// a group spans group/64 whole superblocks (in_padded is a multiple of the group).
template <int R, int MT, bool kG32>
void Tile(const Q8Activations& xa, const Int4Weights& w, const float* bias, float* y, int64_t r, int64_t m0) {
  const int64_t row_bytes = w.in_padded / 2, ng = w.groups(), sbs = xa.blocks / 2, full = w.in_padded / 64;
  const float* scales[R];
  const uint8_t* zeros[R];
  for (int i = 0; i < R; ++i) {
    scales[i] = w.scales + (r + i) * ng;
    zeros[i] = w.zeros + (r + i) * ng;
  }
  __m512 acc[R][MT];
  for (int i = 0; i < R; ++i)
    for (int t = 0; t < MT; ++t) acc[i][t] = _mm512_setzero_ps();
  __m512 ws[R];  // the weight scale of each lane, for the current superblock
  auto step = [&](int64_t sb, bool half) {
    __m512i wq[R];
    for (int i = 0; i < R; ++i) wq[i] = Unpack64(w.q + (r + i) * row_bytes + sb * 32, half);
    for (int t = 0; t < MT; ++t) {
      const int64_t xb = (m0 + t) * sbs + sb;
      const __m512i xq = _mm512_loadu_si512(xa.q.data() + xb * 64);
      const __m512 xs = _mm512_loadu_ps(xa.lane_scale.data() + xb * 16);
      for (int i = 0; i < R; ++i) {
        const __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wq[i], xq);
        acc[i][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(ws[i], xs), acc[i][t]);
      }
    }
  };
  if constexpr (kG32) {
    const __m512i pair = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1);
    for (int64_t sb = 0; sb < sbs; ++sb) {
      const bool half = sb == full;
      for (int i = 0; i < R; ++i)
        ws[i] = _mm512_permutexvar_ps(pair, _mm512_maskz_loadu_ps(half ? 1 : 3, scales[i] + 2 * sb));
      step(sb, half);
    }
  } else {
    const int64_t per_group = w.group / 64;
    for (int64_t g = 0, sb = 0; g < ng; ++g) {
      for (int i = 0; i < R; ++i) ws[i] = _mm512_set1_ps(scales[i][g]);
      for (const int64_t end = sb + per_group; sb < end; ++sb) step(sb, false);
    }
  }
  // Zero points: acc -= s_g * z_g * (sum of x over group g), 16 groups per step.
  for (int64_t g = 0; g < ng; g += 16) {
    const __mmask16 k = ng - g >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << (ng - g)) - 1);
    __m512 gsum[MT];
    for (int t = 0; t < MT; ++t) gsum[t] = _mm512_maskz_loadu_ps(k, xa.group_sum.data() + (m0 + t) * xa.groups + g);
    for (int i = 0; i < R; ++i) {
      const __m512 z = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(k, zeros[i] + g)));
      const __m512 sz = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, scales[i] + g), z);
      for (int t = 0; t < MT; ++t) acc[i][t] = _mm512_fnmadd_ps(sz, gsum[t], acc[i][t]);
    }
  }
  float sum[R][MT];
  HorizontalSums<R * MT>(&acc[0][0], &sum[0][0]);
  for (int i = 0; i < R; ++i)
    for (int t = 0; t < MT; ++t) y[(m0 + t) * w.out + r + i] = sum[i][t] + (bias ? bias[r + i] : 0.f);
}

template <int R, int MT>
void Tile(const Q8Activations& xa, const Int4Weights& w, const float* bias, float* y, int64_t r, int64_t m0) {
  if (w.group == 32) Tile<R, MT, true>(xa, w, bias, y, r, m0);
  else Tile<R, MT, false>(xa, w, bias, y, r, m0);
}

template <int R, int MT>
void Tile(const Q8Activations& xa, const Int8Weights& w, const float* bias, float* y, int64_t r, int64_t m0) {
  const int64_t sbs = xa.blocks / 2, full = w.in / 64;
  const __mmask64 tail = w.in % 64 ? (uint64_t{1} << (w.in % 64)) - 1 : 0;
  const __m512i offset = _mm512_set1_epi8(static_cast<char>(0x80));
  __m512 acc[R][MT];
  for (int i = 0; i < R; ++i)
    for (int t = 0; t < MT; ++t) acc[i][t] = _mm512_setzero_ps();
  for (int64_t sb = 0; sb < sbs; ++sb) {
    __m512i wq[R];
    for (int i = 0; i < R; ++i) {
      const int8_t* p = w.q + (r + i) * w.in + sb * 64;
      // Columns past `in` load as 0 (-> 128), against x codes that are 0 there.
      wq[i] = _mm512_xor_si512(sb < full ? _mm512_loadu_si512(p) : _mm512_maskz_loadu_epi8(tail, p), offset);
    }
    for (int t = 0; t < MT; ++t) {
      const int64_t xb = (m0 + t) * sbs + sb;
      const __m512i xq = _mm512_loadu_si512(xa.q.data() + xb * 64);
      const __m512 xs = _mm512_loadu_ps(xa.lane_scale.data() + xb * 16);
      for (int i = 0; i < R; ++i) {
        const __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wq[i], xq);
        acc[i][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), xs, acc[i][t]);
      }
    }
  }
  float sum[R][MT];
  HorizontalSums<R * MT>(&acc[0][0], &sum[0][0]);
  for (int i = 0; i < R; ++i)
    for (int t = 0; t < MT; ++t)
      y[(m0 + t) * w.out + r + i] =
          (sum[i][t] - 128.f * xa.row_sum[m0 + t]) * w.scales[r + i] + (bias ? bias[r + i] : 0.f);
}

// Weight rows [r, r + rn) times x rows [m0, m0 + MT).
template <int MT, typename W>
void Block(const Q8Activations& xa, const W& w, const float* bias, float* y, int64_t r, int64_t rn, int64_t m0) {
  int64_t i = 0;
  if constexpr (MT == 1)
    for (; i + 8 <= rn; i += 8) Tile<8, 1>(xa, w, bias, y, r + i, m0);
  for (; i + 4 <= rn; i += 4) Tile<4, MT>(xa, w, bias, y, r + i, m0);
  for (; i < rn; ++i) Tile<1, MT>(xa, w, bias, y, r + i, m0);
}

// Blocks of kBlockRows weight rows outer, every m-tile of x inner: a block's weights (8 rows,
// at most 12 KB at in = 1536) come from DRAM for its first m-tile and from L1 for the others,
// so a call streams the weight matrix once whatever M. Tiles: 4 weight rows by 4 rows of x
// (16 accumulators, plus 4 weight vectors and for int4 their 4 scale vectors, within the 32
// zmm registers), the last 1-3 rows of x as 4 by 1-3 (8 by 1 at M = 1 or 5: eight FMA chains).
// Every tile shape runs the same per-output arithmetic (module comment), so which tile an
// output lands in, hence M and the thread split, does not change its bits.
template <typename W>
void Rows(const Q8Activations& xa, int64_t m, const W& w, const float* bias, float* y, int64_t r0, int64_t r1) {
  constexpr int64_t kBlockRows = 8;
  for (int64_t r = r0; r < r1; r += kBlockRows) {
    const int64_t rn = std::min(kBlockRows, r1 - r);
    int64_t i = 0;
    for (; i + 4 <= m; i += 4) Block<4>(xa, w, bias, y, r, rn, i);
    switch (m - i) {
      case 1: Block<1>(xa, w, bias, y, r, rn, i); break;
      case 2: Block<2>(xa, w, bias, y, r, rn, i); break;
      case 3: Block<3>(xa, w, bias, y, r, rn, i); break;
      default: break;
    }
  }
}

}  // namespace

void QuantizeActivationsAvx512(const float* x, int64_t m, int64_t in, int64_t blocks, Q8Layout layout, int64_t group,
                               Q8Activations* out) {
  Q8Activations& a = *out;
  a.blocks = blocks;
  a.groups = group > 0 ? blocks / (group / 32) : 0;
  a.q.resize(m * blocks * 32);
  a.scale.resize(m * blocks);
  a.row_sum.resize(m);
  a.group_sum.assign(m * a.groups, 0.f);
  a.lane_scale.resize(m * blocks / 2 * 16);
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  const __m512 odd_sixteenth =
      _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castps_pd(_mm512_set1_ps(1.f)), _mm256_castps_pd(_mm256_set1_ps(1.f / 16)), 1));
  for (int64_t i = 0; i < m; ++i) {
    float row_sum = 0;
    int8_t* row = a.q.data() + i * blocks * 32;
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t c0 = b * 32, n = std::max<int64_t>(0, std::min<int64_t>(32, in - c0));
      const __mmask16 k0 = n >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << n) - 1);
      const __mmask16 k1 = n >= 32 ? 0xFFFF : n <= 16 ? 0 : static_cast<__mmask16>((1u << (n - 16)) - 1);
      const __m512 x0 = _mm512_maskz_loadu_ps(k0, x + i * in + c0), x1 = _mm512_maskz_loadu_ps(k1, x + i * in + c0 + 16);
      const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(x0), _mm512_abs_ps(x1)));
      const float d = amax / 127.f, inv = amax > 0 ? 127.f / amax : 0.f;
      // Round to nearest even (the default MXCSR mode), as the scalar quantizer does.
      const __m512i v0 = _mm512_cvtps_epi32(_mm512_mul_ps(x0, _mm512_set1_ps(inv)));
      const __m512i v1 = _mm512_cvtps_epi32(_mm512_mul_ps(x1, _mm512_set1_ps(inv)));
      if (layout == Q8Layout::kEvenOdd64) {
        int8_t* sb = row + (b - b % 2) * 32 + (b % 2) * 16;
        _mm_storeu_si128(reinterpret_cast<__m128i*>(sb), _mm512_cvtsepi32_epi8(_mm512_permutex2var_epi32(v0, even, v1)));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(sb + 32), _mm512_cvtsepi32_epi8(_mm512_permutex2var_epi32(v0, odd, v1)));
      } else {  // kPlain
        _mm_storeu_si128(reinterpret_cast<__m128i*>(row + c0), _mm512_cvtsepi32_epi8(v0));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(row + c0 + 16), _mm512_cvtsepi32_epi8(v1));
      }
      const float bsum = d * static_cast<float>(_mm512_reduce_add_epi32(_mm512_add_epi32(v0, v1)));
      a.scale[i * blocks + b] = d;
      row_sum += bsum;
      if (group > 0) a.group_sum[i * a.groups + b / (group / 32)] += bsum;
    }
    a.row_sum[i] = row_sum;
    for (int64_t sb = 0; sb < blocks / 2; ++sb) {  // lane scales, as in QuantizeActivations
      const __m512 d2 = _mm512_castps128_ps512(_mm_castpd_ps(_mm_load_sd(reinterpret_cast<const double*>(a.scale.data() + i * blocks + 2 * sb))));
      const __m512i idx = layout == Q8Layout::kEvenOdd64 ? _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1)
                                                          : _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
      __m512 lanes = _mm512_permutexvar_ps(idx, d2);
      if (layout == Q8Layout::kEvenOdd64) lanes = _mm512_mul_ps(lanes, odd_sixteenth);
      _mm512_storeu_ps(a.lane_scale.data() + (i * blocks / 2 + sb) * 16, lanes);
    }
  }
}

void Int8RowsVnni(const Q8Activations& xa, int64_t m, const Int8Weights& w, const float* bias, float* y, int64_t r0,
                  int64_t r1) {
  Rows(xa, m, w, bias, y, r0, r1);
}

void Int4RowsVnni(const Q8Activations& xa, int64_t m, const Int4Weights& w, const float* bias, float* y, int64_t r0,
                  int64_t r1) {
  Rows(xa, m, w, bias, y, r0, r1);
}

}  // namespace augur::qkernels

#else

namespace augur::qkernels {
bool Avx512VnniCompiled() { return false; }
// Never called: Avx512VnniAvailable() is false, and the callers check it.
void QuantizeActivationsAvx512(const float*, int64_t, int64_t, int64_t, Q8Layout, int64_t, Q8Activations*) {}
void Int8RowsVnni(const Q8Activations&, int64_t, const Int8Weights&, const float*, float*, int64_t, int64_t) {}
void Int4RowsVnni(const Q8Activations&, int64_t, const Int4Weights&, const float*, float*, int64_t, int64_t) {}
}  // namespace augur::qkernels

#endif
