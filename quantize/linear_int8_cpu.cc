// int8 CPU linear: the portable scalar path, OpenMP over output rows, and the runtime choice
// of the AVX2 path (quantize/linear_int8_avx2.cc).
#include <algorithm>

#include "quantize/kernels_cpu.h"

namespace augur::qkernels {

bool Avx2Available() {
  static const bool ok = Avx2Compiled() && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return ok;
}

const char* CpuKernelName(CpuKernel k) {
  switch (k) {
    case CpuKernel::kAuto: return "auto";
    case CpuKernel::kScalar: return "scalar";
    case CpuKernel::kAvx2: return "avx2";
  }
  return "?";
}

void Int8RowsScalar(const float* x, int64_t m, const Int8Weights& w, const float* bias, float* y, int64_t r0,
                    int64_t r1) {
  for (int64_t r = r0; r < r1; ++r) {
    const int8_t* q = w.q + r * w.in;
    for (int64_t i = 0; i < m; ++i) {
      const float* xi = x + i * w.in;
      float acc = 0;
      for (int64_t c = 0; c < w.in; ++c) acc += static_cast<float>(q[c]) * xi[c];
      y[i * w.out + r] = acc * w.scales[r] + (bias ? bias[r] : 0.f);
    }
  }
}

// Rows per OpenMP task: enough work per task that scheduling costs little, and below this
// many multiply-adds in total the call stays on one thread (a parallel region costs µs).
constexpr int64_t kRowsPerTask = 16;
constexpr int64_t kMinParallelWork = int64_t{1} << 17;

void Int8GemmCpu(const float* x, int64_t m, const Int8Weights& w, const float* bias, float* y, CpuKernel kernel) {
  const bool avx2 = kernel != CpuKernel::kScalar && Avx2Available();
  const int64_t tasks = (w.out + kRowsPerTask - 1) / kRowsPerTask;
#pragma omp parallel for schedule(static) if (m * w.out * w.in >= kMinParallelWork)
  for (int64_t t = 0; t < tasks; ++t) {
    const int64_t r0 = t * kRowsPerTask, r1 = std::min(w.out, r0 + kRowsPerTask);
    if (avx2) Int8RowsAvx2(x, m, w, bias, y, r0, r1);
    else Int8RowsScalar(x, m, w, bias, y, r0, r1);
  }
}

}  // namespace augur::qkernels
