// Small AVX2 helpers shared by the *_avx2.cc kernels (include only from files compiled with
// -mavx2 -mfma).
#pragma once

#include <immintrin.h>

namespace augur::qkernels {

inline float HorizontalSum(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)));
}

}  // namespace augur::qkernels
