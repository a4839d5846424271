// The horizontal sum every AVX-512 kernel ends with (include only from files compiled with
// -mavx512f, the *_avx512.cc files).
//
// Batch invariance (kernels_cpu.h) needs each output's float operations to be the same
// whatever tile it was computed in, so there is one reduction order for a 16-float vector v:
//   f_j = v_j + v_{j+8} (j < 8), sum = ((f0 + f1) + (f2 + f3)) + ((f4 + f5) + (f6 + f7)),
// done four vectors at a time with hadd (each output lane reads one vector only, so a
// vector's sum does not depend on which vectors share its group; short groups are padded
// with zero vectors, whose sums are discarded).
#pragma once

#include <immintrin.h>

namespace augur::qkernels {

// [sum a, sum b, sum c, sum d], each in the order above.
[[gnu::always_inline]] inline __m128 Sum4(__m512 a, __m512 b, __m512 c, __m512 d) {
  auto fold = [](__m512 v) {
    return _mm256_add_ps(_mm512_castps512_ps256(v), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
  };
  const __m256 abcd = _mm256_hadd_ps(_mm256_hadd_ps(fold(a), fold(b)), _mm256_hadd_ps(fold(c), fold(d)));
  return _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
}

// out[k] = the sum of v[k] for k < N, four at a time. Recursion rather than a loop, so every
// index is a constant and a tile's accumulator array stays in registers (a loop here left it
// address-taken, and GCC stored every accumulator to the stack on every step).
template <int N, int K = 0>
[[gnu::always_inline]] inline void HorizontalSums(const __m512* v, float* out) {
  if constexpr (N - K >= 4) {
    _mm_storeu_ps(out + K, Sum4(v[K], v[K + 1], v[K + 2], v[K + 3]));
    HorizontalSums<N, K + 4>(v, out);
  } else if constexpr (N > K) {
    const __m512 z = _mm512_setzero_ps();
    float s[4];
    _mm_storeu_ps(s, Sum4(v[K], N - K > 1 ? v[K + 1] : z, N - K > 2 ? v[K + 2] : z, z));
    for (int j = 0; j < N - K; ++j) out[K + j] = s[j];
  }
}

}  // namespace augur::qkernels
