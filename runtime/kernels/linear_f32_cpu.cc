// Scalar references for runtime/kernels/kernels_f32.h and the one dispatch point (AVX-512 or
// AVX2 when this CPU and the build have them), threads over output rows (ParallelFor). Built without -mavx2,
// so it runs anywhere.
#include <algorithm>

#include "runtime/kernels/kernels_cpu.h"
#include "runtime/kernels/kernels_f32.h"

namespace augur::fkernels {

bool F32Avx2Available() {
  static const bool ok = F32Avx2Compiled() && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return ok;
}

bool F32Avx512Available() {
  static const bool ok = F32Avx512Compiled() && __builtin_cpu_supports("avx512f") &&
                         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
  return ok;
}

const char* F32KernelName(F32Kernel k) {
  switch (k) {
    case F32Kernel::kAuto: return "auto";
    case F32Kernel::kScalar: return "scalar";
    case F32Kernel::kAvx2: return "avx2";
    case F32Kernel::kAvx512: return "avx512";
  }
  return "?";
}

F32Kernel ResolveF32Kernel(F32Kernel k) {
  if (k == F32Kernel::kAuto) k = F32Kernel::kAvx512;
  if (k == F32Kernel::kAvx512 && !F32Avx512Available()) k = F32Kernel::kAvx2;
  if (k == F32Kernel::kAvx2 && !F32Avx2Available()) k = F32Kernel::kScalar;
  return k;
}

void F32RowsScalar(const float* x, int64_t m, const float* w, int64_t out, int64_t in, const float* bias, float* y,
                   int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; ++r)
    for (int64_t i = 0; i < m; ++i) {
      float s = 0.f;
      for (int64_t c = 0; c < in; ++c) s += x[i * in + c] * w[r * in + c];
      y[i * out + r] = s + (bias != nullptr ? bias[r] : 0.f);
    }
}

void F32GemmScalar(const float* x, int64_t m, const float* w, int64_t out, int64_t in, const float* bias, float* y) {
  F32RowsScalar(x, m, w, out, in, bias, y, 0, out);
}

void AttentionScoresScalar(const float* q, const float* k, int64_t s, int64_t d, float scale, float* scores) {
  for (int64_t j = 0; j < s; ++j) {
    float acc = 0.f;
    for (int64_t c = 0; c < d; ++c) acc += q[c] * k[j * d + c];
    scores[j] = acc * scale;
  }
}

void WeightedValuesScalar(const float* p, const float* v, int64_t s, int64_t d, float* out) {
  for (int64_t c = 0; c < d; ++c) out[c] = 0.f;
  for (int64_t j = 0; j < s; ++j)
    for (int64_t c = 0; c < d; ++c) out[c] += p[j] * v[j * d + c];
}

// Rows per task, as in the quantized kernels (linear_int8_cpu.cc): a multiple of the
// vector kernels' 4-row weight blocks.
constexpr int64_t kRowsPerTask = 16;

void F32GemmCpu(const float* x, int64_t m, const float* w, int64_t out, int64_t in, const float* bias, float* y,
                F32Kernel kernel) {
  kernel = ResolveF32Kernel(kernel);
  auto rows = [&](int64_t r0, int64_t r1) {
    if (kernel == F32Kernel::kAvx512) F32RowsAvx512(x, m, w, out, in, bias, y, r0, r1);
    else if (kernel == F32Kernel::kAvx2) F32RowsAvx2(x, m, w, out, in, bias, y, r0, r1);
    else F32RowsScalar(x, m, w, out, in, bias, y, r0, r1);
  };
  if (!qkernels::UseThreads(m * out * in)) return rows(0, out);
  const int64_t tasks = (out + kRowsPerTask - 1) / kRowsPerTask;
  qkernels::ParallelFor(tasks,
                        [&](int64_t t0, int64_t t1) { rows(t0 * kRowsPerTask, std::min(out, t1 * kRowsPerTask)); });
}

void AttentionScores(const float* q, const float* k, int64_t s, int64_t d, float scale, float* scores) {
  if (F32Avx2Available()) AttentionScoresAvx2(q, k, s, d, scale, scores);
  else AttentionScoresScalar(q, k, s, d, scale, scores);
}

void WeightedValues(const float* p, const float* v, int64_t s, int64_t d, float* out) {
  if (F32Avx2Available()) WeightedValuesAvx2(p, v, s, d, out);
  else WeightedValuesScalar(p, v, s, d, out);
}

}  // namespace augur::fkernels
