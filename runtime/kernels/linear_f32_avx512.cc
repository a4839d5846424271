// fp32 GEMM with AVX-512 (runtime/kernels/kernels_f32.h): 16 columns per FMA, the last partial
// 16 as a masked load (zeros past `in`), so no scalar tail. Compiled with -mavx512f
// -mavx512bw -mavx512vl -ffp-contract=off (runtime/CMakeLists.txt); called only when
// F32Avx512Available(), else F32RowsScalar runs.
//
// Tiles of MR rows of x by NR weight rows, MR*NR accumulators (at most 16, plus NR weight
// vectors, of the 32 zmm registers); blocks of 4 weight rows outer and every tile of rows of
// x inner, so a block (at most 24 KB at in = 1536) comes from DRAM once per call whatever M.
// Batch invariance: an output is one accumulator over the 16-column steps in order, the
// horizontal sum of avx512_util.h, then + bias, in every tile shape.
#include "runtime/kernels/kernels_f32.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
// GCC 12's AVX-512 headers initialise "undefined" vectors as `__m512 __Y = __Y;`, which
// -W(maybe-)uninitialized reports at every inlined use; the values are never read.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include "runtime/kernels/avx512_util.h"
#include "runtime/kernels/prefetch_util.h"

namespace augur::fkernels {
namespace {

template <int MR, int NR>
void Tile(const float* x, const float* w, int64_t out, int64_t in, const float* bias, float* y, int64_t r,
          qkernels::PrefetchStream& pf) {
  __m512 acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int n = 0; n < NR; ++n) acc[i][n] = _mm512_setzero_ps();
  // One loop, every load masked (all lanes but at the end): a lambda or a second loop for the
  // tail would leave acc address-taken, and GCC then stores it to the stack on every step.
  for (int64_t c = 0; c < in; c += 16) {
    pf.Next();
    const __mmask16 k = in - c >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << (in - c)) - 1);
    __m512 wv[NR];
    for (int n = 0; n < NR; ++n) wv[n] = _mm512_maskz_loadu_ps(k, w + (r + n) * in + c);
    for (int i = 0; i < MR; ++i) {
      const __m512 xv = _mm512_maskz_loadu_ps(k, x + i * in + c);
      for (int n = 0; n < NR; ++n) acc[i][n] = _mm512_fmadd_ps(xv, wv[n], acc[i][n]);
    }
  }
  float sum[MR][NR];
  qkernels::HorizontalSums<MR * NR>(&acc[0][0], &sum[0][0]);
  for (int i = 0; i < MR; ++i)
    for (int n = 0; n < NR; ++n) y[i * out + r + n] = sum[i][n] + (bias != nullptr ? bias[r + n] : 0.f);
}

// Weight rows [r, r + rn) (rn <= 4) times MR rows of x.
template <int MR>
void Block(const float* x, const float* w, int64_t out, int64_t in, const float* bias, float* y, int64_t r,
           int64_t rn, qkernels::PrefetchStream& pf) {
  if (rn == 4) return Tile<MR, 4>(x, w, out, in, bias, y, r, pf);
  for (int64_t j = 0; j < rn; ++j) Tile<MR, 1>(x, w, out, in, bias, y, r + j, pf);
}

}  // namespace

bool F32Avx512Compiled() { return true; }

void F32RowsAvx512(const float* x, int64_t m, const float* w, int64_t out, int64_t in, const float* bias, float* y,
                   int64_t r0, int64_t r1) {
  // As in the VNNI kernels (linear_q8_avx512.cc): the next block streamed into L2 a line or
  // so per 16-column step of this block's tiles.
  const int64_t mtiles = (m + 3) / 4, steps = (in + 15) / 16;
  qkernels::PrefetchStream pf;
  for (int64_t r = r0; r < r1; r += 4) {
    const int64_t rn = r1 - r < 4 ? r1 - r : 4;
    const int64_t pa = r + 4 < out ? r + 4 : out, pb = pa + 4 < out ? pa + 4 : out;
    pf.Reset(w + pa * in, (pb - pa) * in * 4, mtiles * (rn == 4 ? 1 : rn) * steps);
    int64_t i = 0;
    for (; i + 4 <= m; i += 4) Block<4>(x + i * in, w, out, in, bias, y + i * out, r, rn, pf);
    const float* xr = x + i * in;
    float* yr = y + i * out;
    switch (m - i) {
      case 3: Block<3>(xr, w, out, in, bias, yr, r, rn, pf); break;
      case 2: Block<2>(xr, w, out, in, bias, yr, r, rn, pf); break;
      case 1: Block<1>(xr, w, out, in, bias, yr, r, rn, pf); break;
      default: break;
    }
  }
}

void F32GemmAvx512(const float* x, int64_t m, const float* w, int64_t out, int64_t in, const float* bias, float* y) {
  F32RowsAvx512(x, m, w, out, in, bias, y, 0, out);
}

}  // namespace augur::fkernels

#else  // no AVX-512 at compile time

namespace augur::fkernels {
bool F32Avx512Compiled() { return false; }
void F32RowsAvx512(const float* x, int64_t m, const float* w, int64_t out, int64_t in, const float* bias, float* y,
                   int64_t r0, int64_t r1) {
  F32RowsScalar(x, m, w, out, in, bias, y, r0, r1);
}
void F32GemmAvx512(const float* x, int64_t m, const float* w, int64_t out, int64_t in, const float* bias, float* y) {
  F32GemmScalar(x, m, w, out, in, bias, y);
}
}  // namespace augur::fkernels

#endif
