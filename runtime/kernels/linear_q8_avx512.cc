// int8/int4 CPU linears with int8 activations and AVX-512 VNNI: the same activation
// quantization as linear_q8_avx2.cc (per 32 columns, scale max|x|/127), but the products are
// summed by dpbusd (u8 x s8, four products per int32 lane) over 64 weights per instruction,
// so the error bound is the same: sum_c |W[r,c]| * dx(c) / 2.
//
// Per 64 columns (a superblock of two 32-blocks), row of W and row of x: one dpbusd; per two
// superblocks one int->float conversion and one FMA by the per-lane scale (x block scale,
// times the weight group scale for int4; see kGroup below).
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
#include "runtime/kernels/prefetch_util.h"

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

// Groups of kGroup superblocks (128 columns) share one int32 accumulator per output: the
// kGroup dpbusd of a group chain into it and only then is it converted and scaled, one
// conversion and one FMA per output and group instead of per superblock (dpbusd and the FMA
// compete for the same two vector pipes; the integer sums are exact, at most kGroup * 4 * 255
// * 127 per lane). That needs each lane's kGroup dpbusd to read one 32-column block of x (one
// scale): Interleave transposes the group's vectors by 4-byte lanes within each 128-bit lane,
// so lane 4k + p of every output vector reads 4 bytes of vector p % kGroup's 128-bit lane k,
// and that 128-bit lane lies in one block. The weights are interleaved in the kernel (once per
// row and group, shared by the tile's rows of x), the activations once per call
// (GroupActivationsVnni). Superblocks past the last whole group, or partly past the weight's
// columns, run one at a time in the plain order. kGroup = 4 (Interleave supports it) converts
// half as often again but needs 16 weight vectors per 4-row tile; it measured no faster.
constexpr int kGroup = 2;

// A load the compiler keeps in a register: left to itself GCC folds the x loads into the
// dpbusd/FMA of every weight row of the tile (a memory operand each, R loads where one does).
template <typename V>
[[gnu::always_inline]] inline V InRegister(V v) {
  asm("" : "+v"(v));
  return v;
}

template <int K>
[[gnu::always_inline]] inline void Interleave(__m512i (&v)[K]) {
  if constexpr (K == 2) {
    const __m512i a = _mm512_unpacklo_epi32(v[0], v[1]), b = _mm512_unpackhi_epi32(v[0], v[1]);
    v[0] = a;
    v[1] = b;
  } else if constexpr (K == 4) {
    const __m512i t0 = _mm512_unpacklo_epi32(v[0], v[1]), t1 = _mm512_unpackhi_epi32(v[0], v[1]);
    const __m512i t2 = _mm512_unpacklo_epi32(v[2], v[3]), t3 = _mm512_unpackhi_epi32(v[2], v[3]);
    v[0] = _mm512_unpacklo_epi64(t0, t2);
    v[1] = _mm512_unpackhi_epi64(t0, t2);
    v[2] = _mm512_unpacklo_epi64(t1, t3);
    v[3] = _mm512_unpackhi_epi64(t1, t3);
  }
}

// Which 32-column block of a K-superblock group lane l (= 4k + p) of its accumulator sums:
// superblock p % K, and within it, for int8 (kPlain) 128-bit lanes 0-1 are block 0; for int4
// (kEvenOdd64) lanes 0 and 2 (even and odd columns).
template <int K>
constexpr int LaneBlock(int l, bool int4) {
  const int k = l / 4, p = l % 4;
  return 2 * (p % K) + (int4 ? k % 2 : k / 2);
}

template <int K>
inline __m512i LaneBlocks(bool int4) {
  alignas(64) int32_t idx[16];
  for (int l = 0; l < 16; ++l) idx[l] = LaneBlock<K>(l, int4);
  return _mm512_load_si512(idx);
}

// Weight rows r..r+R-1 times x rows m0..m0+MT-1, int4: acc += (sum q x) * (weight group scale
// * x lane scale) per group of superblocks, then the zero points (module comment).
template <int R, int MT>
void Tile(const Q8Activations& xa, const Int4Weights& w, const float* bias, float* y, int64_t r, int64_t m0,
          PrefetchStream& pf) {
  const int64_t row_bytes = w.in_padded / 2, ng = w.groups(), sbs = xa.blocks / 2, full = w.in_padded / 64;
  const int64_t groups = full / kGroup;
  const float* scales[R];
  const uint8_t* zeros[R];
  for (int i = 0; i < R; ++i) {
    scales[i] = w.scales + (r + i) * ng;
    zeros[i] = w.zeros + (r + i) * ng;
  }
  __m512 acc[R][MT];
  for (int i = 0; i < R; ++i)
    for (int t = 0; t < MT; ++t) acc[i][t] = _mm512_setzero_ps();
  // The weight scale of each lane for superblocks [sb, sb + k): groups are 32 << g_shift
  // columns (a power of two), so lane l's group is LaneBlock(l) >> g_shift on from group
  // (2 sb) >> g_shift, and the k superblocks span n groups (1 for a half superblock).
  const int g_shift = __builtin_ctzll(static_cast<uint64_t>(w.group / 32));
  const __m512i lanes_k = _mm512_srli_epi32(LaneBlocks<kGroup>(true), g_shift);
  const __m512i lanes_1 = _mm512_srli_epi32(LaneBlocks<1>(true), g_shift);
  auto groups_of = [&](int64_t sb, int k, bool half, int64_t* g0) {
    *g0 = (2 * sb) >> g_shift;
    const int64_t n = half ? 1 : std::max<int64_t>(1, (2 * k) >> g_shift);
    return static_cast<__mmask16>((1u << std::min(n, ng - *g0)) - 1);
  };
  for (int64_t gi = 0; gi < groups; ++gi) {
    pf.Next();
    const int64_t sb = gi * kGroup;
    __m512i wq[R][kGroup];
    __m512 ws[R];
    int64_t g0;
    const __mmask16 gk = groups_of(sb, kGroup, false, &g0);
    for (int i = 0; i < R; ++i) {
      for (int j = 0; j < kGroup; ++j) wq[i][j] = Unpack64(w.q + (r + i) * row_bytes + (sb + j) * 32, false);
      Interleave<kGroup>(wq[i]);
      ws[i] = _mm512_permutexvar_ps(lanes_k, _mm512_maskz_loadu_ps(gk, scales[i] + g0));
    }
    for (int t = 0; t < MT; ++t) {
      const int64_t xb = (m0 + t) * sbs + sb;
      __m512i xq[kGroup];
      for (int j = 0; j < kGroup; ++j) xq[j] = InRegister(_mm512_loadu_si512(xa.q.data() + (xb + j) * 64));
      const __m512 xs = InRegister(_mm512_loadu_ps(xa.lane_scale.data() + xb * 16));
      for (int i = 0; i < R; ++i) {
        __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wq[i][0], xq[0]);
        for (int j = 1; j < kGroup; ++j) dot = _mm512_dpbusd_epi32(dot, wq[i][j], xq[j]);
        acc[i][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(ws[i], xs), acc[i][t]);
      }
    }
  }
  for (int64_t sb = groups * kGroup; sb < sbs; ++sb) {
    pf.Next();
    const bool half = sb == full;
    __m512i wq[R];
    __m512 ws[R];
    int64_t g0;
    const __mmask16 gk = groups_of(sb, 1, half, &g0);
    for (int i = 0; i < R; ++i) {
      wq[i] = Unpack64(w.q + (r + i) * row_bytes + sb * 32, half);
      ws[i] = _mm512_permutexvar_ps(lanes_1, _mm512_maskz_loadu_ps(gk, scales[i] + g0));
    }
    for (int t = 0; t < MT; ++t) {
      const int64_t xb = (m0 + t) * sbs + sb;
      const __m512i xq = InRegister(_mm512_loadu_si512(xa.q.data() + xb * 64));
      const __m512 xs = InRegister(_mm512_loadu_ps(xa.lane_scale.data() + xb * 16));
      for (int i = 0; i < R; ++i) {
        const __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wq[i], xq);
        acc[i][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(ws[i], xs), acc[i][t]);
      }
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

// int8: acc += (sum (w + 128) x) * (x lane scale) per group of superblocks; the 128 * sum x
// term and the weight row's scale come after the horizontal sum.
template <int R, int MT>
void Tile(const Q8Activations& xa, const Int8Weights& w, const float* bias, float* y, int64_t r, int64_t m0,
          PrefetchStream& pf) {
  const int64_t sbs = xa.blocks / 2, full = w.in / 64, groups = full / kGroup;
  const __mmask64 tail = w.in % 64 ? (uint64_t{1} << (w.in % 64)) - 1 : 0;
  const __m512i offset = _mm512_set1_epi8(static_cast<char>(0x80));
  __m512 acc[R][MT];
  for (int i = 0; i < R; ++i)
    for (int t = 0; t < MT; ++t) acc[i][t] = _mm512_setzero_ps();
  for (int64_t gi = 0; gi < groups; ++gi) {
    pf.Next();
    const int64_t sb = gi * kGroup;
    __m512i wq[R][kGroup];
    for (int i = 0; i < R; ++i) {
      for (int j = 0; j < kGroup; ++j)
        wq[i][j] = _mm512_xor_si512(_mm512_loadu_si512(w.q + (r + i) * w.in + (sb + j) * 64), offset);
      Interleave<kGroup>(wq[i]);
    }
    for (int t = 0; t < MT; ++t) {
      const int64_t xb = (m0 + t) * sbs + sb;
      __m512i xq[kGroup];
      for (int j = 0; j < kGroup; ++j) xq[j] = InRegister(_mm512_loadu_si512(xa.q.data() + (xb + j) * 64));
      const __m512 xs = InRegister(_mm512_loadu_ps(xa.lane_scale.data() + xb * 16));
      for (int i = 0; i < R; ++i) {
        __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wq[i][0], xq[0]);
        for (int j = 1; j < kGroup; ++j) dot = _mm512_dpbusd_epi32(dot, wq[i][j], xq[j]);
        acc[i][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), xs, acc[i][t]);
      }
    }
  }
  for (int64_t sb = groups * kGroup; sb < sbs; ++sb) {
    pf.Next();
    __m512i wq[R];
    for (int i = 0; i < R; ++i) {
      const int8_t* p = w.q + (r + i) * w.in + sb * 64;
      // Columns past `in` load as 0 (-> 128), against x codes that are 0 there.
      wq[i] = _mm512_xor_si512(sb < full ? _mm512_loadu_si512(p) : _mm512_maskz_loadu_epi8(tail, p), offset);
    }
    for (int t = 0; t < MT; ++t) {
      const int64_t xb = (m0 + t) * sbs + sb;
      const __m512i xq = InRegister(_mm512_loadu_si512(xa.q.data() + xb * 64));
      const __m512 xs = InRegister(_mm512_loadu_ps(xa.lane_scale.data() + xb * 16));
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

// Weight rows [r, r + rn) times x rows [m0, m0 + MT): tiles of kTileRows weight rows (4 by
// 4: 16 accumulators, 8 interleaved weight vectors, 2 of x codes and their lane scales, for
// int4 4 weight-scale vectors, within the 32 zmm registers), then single rows.
constexpr int kTileRows = 4;
template <int MT, typename W>
void Block(const Q8Activations& xa, const W& w, const float* bias, float* y, int64_t r, int64_t rn, int64_t m0,
           PrefetchStream& pf) {
  int64_t i = 0;
  for (; i + kTileRows <= rn; i += kTileRows) Tile<kTileRows, MT>(xa, w, bias, y, r + i, m0, pf);
  for (; i < rn; ++i) Tile<1, MT>(xa, w, bias, y, r + i, m0, pf);
}

// The inner-loop steps of one tile (Tile: a step per group of superblocks and per superblock
// after them), a weight row's bytes, and the prefetch stream of weight rows [ra, rb).
inline int64_t TileSteps(const Q8Activations& xa, int64_t full) {
  return full / kGroup + (xa.blocks / 2 - full / kGroup * kGroup);
}
inline int64_t TileSteps(const Q8Activations& xa, const Int8Weights& w) { return TileSteps(xa, w.in / 64); }
inline int64_t TileSteps(const Q8Activations& xa, const Int4Weights& w) { return TileSteps(xa, w.in_padded / 64); }
inline int64_t RowBytes(const Int8Weights& w) { return w.in; }
inline int64_t RowBytes(const Int4Weights& w) { return w.in_padded / 2; }
inline void StreamRows(const Int8Weights& w, int64_t ra, int64_t rb, int64_t steps, PrefetchStream* pf) {
  pf->Reset(w.q + ra * w.in, (rb - ra) * w.in, steps);
}
inline void StreamRows(const Int4Weights& w, int64_t ra, int64_t rb, int64_t steps, PrefetchStream* pf) {
  pf->Reset(w.q + ra * (w.in_padded / 2), (rb - ra) * (w.in_padded / 2), steps);
  const int64_t ng = w.groups();  // a few lines per block: at once
  PrefetchSlice(w.scales + ra * ng, (rb - ra) * ng * 4, 0, 1);
  PrefetchSlice(w.zeros + ra * ng, (rb - ra) * ng, 0, 1);
}

// Blocks of kBlockRows weight rows outer, every m-tile of x inner: a block's weights (8 rows,
// at most 12 KB at in = 1536) come from DRAM for its first m-tile and from L1 for the others,
// so a call streams the weight matrix once whatever M; a later block is prefetched a few
// lines per inner step of this block's tiles (prefetch_util.h), so the stream overlaps the
// compute. Every tile shape runs the same per-output arithmetic (module comment), so which
// tile an output lands in, hence M and the thread split, does not change its bits.
template <typename W>
void Rows(const Q8Activations& xa, int64_t m, const W& w, const float* bias, float* y, int64_t r0, int64_t r1) {
  // Streamed: the block about kAheadBytes on (1 to 4 blocks), into L2. Measured on the stack
  // of bench/verify_cost against one burst per m-tile two blocks on: M = 1 int4 1.7x and
  // M = 2 int8 1.6x faster, no slower elsewhere.
  constexpr int64_t kBlockRows = 8, kAheadBytes = 8192;
  const int64_t block_bytes = kBlockRows * RowBytes(w);
  const int64_t ahead = std::clamp<int64_t>((kAheadBytes + block_bytes - 1) / block_bytes, 1, 4) * kBlockRows;
  const int64_t steps = TileSteps(xa, w), mtiles = (m + 3) / 4;
  PrefetchStream pf;
  for (int64_t r = r0; r < r1; r += kBlockRows) {
    const int64_t rn = std::min(kBlockRows, r1 - r);
    const int64_t pa = std::min(r + ahead, w.out), pb = std::min(pa + kBlockRows, w.out);
    StreamRows(w, pa, pb, mtiles * (rn / kTileRows + rn % kTileRows) * steps, &pf);
    int64_t i = 0;
    for (; i + 4 <= m; i += 4) Block<4>(xa, w, bias, y, r, rn, i, pf);
    switch (m - i) {
      case 1: Block<1>(xa, w, bias, y, r, rn, i, pf); break;
      case 2: Block<2>(xa, w, bias, y, r, rn, i, pf); break;
      case 3: Block<3>(xa, w, bias, y, r, rn, i, pf); break;
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

void GroupActivationsVnni(Q8Activations* xa, int64_t m, int64_t full_sbs, bool int4) {
  const int64_t sbs = xa->blocks / 2, groups = full_sbs / kGroup;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t gi = 0; gi < groups; ++gi) {
      const int64_t sb = gi * kGroup;
      int8_t* q = xa->q.data() + (i * sbs + sb) * 64;
      __m512i v[kGroup];
      for (int j = 0; j < kGroup; ++j) v[j] = _mm512_loadu_si512(q + j * 64);
      Interleave<kGroup>(v);
      for (int j = 0; j < kGroup; ++j) _mm512_storeu_si512(q + j * 64, v[j]);
      // The group's lane scales in its first superblock's slot (the kernels read only that).
      const float* d = xa->scale.data() + i * xa->blocks + 2 * sb;
      float* lanes = xa->lane_scale.data() + (i * sbs + sb) * 16;
      for (int l = 0; l < 16; ++l) lanes[l] = d[LaneBlock<kGroup>(l, int4)] * (int4 && l >= 8 ? 1.f / 16 : 1.f);
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
void GroupActivationsVnni(Q8Activations*, int64_t, int64_t, bool) {}
void Int8RowsVnni(const Q8Activations&, int64_t, const Int8Weights&, const float*, float*, int64_t, int64_t) {}
void Int4RowsVnni(const Q8Activations&, int64_t, const Int4Weights&, const float*, float*, int64_t, int64_t) {}
}  // namespace augur::qkernels

#endif
