// int4 CPU linear: the portable scalar path, threads over output rows (ParallelFor), and the runtime choice
// of the AVX2 path (runtime/kernels/linear_int4_avx2.cc).
#include <algorithm>
#include <vector>

#include "runtime/kernels/kernels_cpu.h"

namespace augur::qkernels {

void Int4RowsScalar(const float* x, int64_t m, const Int4Weights& w, const float* bias, float* y, int64_t r0,
                    int64_t r1) {
  const int64_t ng = w.groups();
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* q = w.q + r * (w.in_padded / 2);
    for (int64_t i = 0; i < m; ++i) {
      const float* xi = x + i * w.in;
      float acc = 0;
      for (int64_t c = 0; c < w.in; ++c) {
        const int code = (c & 1) ? (q[c >> 1] >> 4) : (q[c >> 1] & 0x0F);
        const int64_t k = c / w.group;
        acc += static_cast<float>(code - w.zeros[r * ng + k]) * w.scales[r * ng + k] * xi[c];
      }
      y[i * w.out + r] = acc + (bias ? bias[r] : 0.f);
    }
  }
}

constexpr int64_t kRowsPerTask = 16;

void Int4GemmCpu(const float* x, int64_t m, const Int4Weights& w, const float* bias, float* y, CpuKernel kernel) {
  kernel = ResolveCpuKernel(kernel);
  const bool avx2 = kernel == CpuKernel::kAvx2;
  // Reused across calls (a draft step makes one per layer per token). Named through a
  // reference so the pool workers below read this thread's buffer, not their own.
  thread_local Q8Activations buffer;
  Q8Activations& xa = buffer;
  if (kernel == CpuKernel::kAvx2Q8)
    QuantizeActivations(x, m, w.in, w.in_padded / 32, Q8Layout::kEvenOdd32, w.group, false, &xa);
  // Whole 64-column superblocks; a half one at the end (in_padded % 64 == 32, g32) is a
  // group of its own, so the group sums stay aligned.
  if (kernel == CpuKernel::kAvx512Vnni) {
    QuantizeActivationsAvx512(x, m, w.in, (w.in_padded + 63) / 64 * 2, Q8Layout::kEvenOdd64, w.group, &xa);
    GroupActivationsVnni(&xa, m, w.in_padded / 64, true);
  }
  const int64_t tasks = (w.out + kRowsPerTask - 1) / kRowsPerTask;
  std::vector<float> xsum;
  if (avx2) {
    const int64_t ng = w.groups();
    xsum.assign(m * ng, 0.f);
    for (int64_t i = 0; i < m; ++i)
      for (int64_t c = 0; c < w.in; ++c) xsum[i * ng + c / w.group] += x[i * w.in + c];
  }
  auto rows = [&](int64_t r0, int64_t r1) {
      if (kernel == CpuKernel::kAvx512Vnni) Int4RowsVnni(xa, m, w, bias, y, r0, r1);
      else if (kernel == CpuKernel::kAvx2Q8) Int4RowsQ8Avx2(xa, m, w, bias, y, r0, r1);
      else if (avx2) Int4RowsAvx2(x, m, w, xsum.data(), bias, y, r0, r1);
      else Int4RowsScalar(x, m, w, bias, y, r0, r1);
  };
  // One thread (the benches, a drafter): no parallel region at all, which costs µs per call.
  if (!UseThreads(m * w.out * w.in)) return rows(0, w.out);
  ParallelFor(tasks, [&](int64_t t0, int64_t t1) { rows(t0 * kRowsPerTask, std::min(w.out, t1 * kRowsPerTask)); });
}

void DequantizeInt4RowsScalar(const Int4Weights& w, float* out, int64_t r0, int64_t r1) {
  const int64_t ng = w.groups();
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* q = w.q + r * (w.in_padded / 2);
    float* o = out + r * w.in;
    for (int64_t k = 0; k < ng; ++k) {
      const float s = w.scales[r * ng + k];
      const int z = w.zeros[r * ng + k];
      const int64_t c0 = k * w.group, c1 = std::min(w.in, c0 + w.group);
      for (int64_t c = c0; c < c1; ++c) {
        const int code = (c & 1) ? (q[c >> 1] >> 4) : (q[c >> 1] & 0x0F);
        o[c] = static_cast<float>(code - z) * s;  // Int4Value
      }
    }
  }
}

void DequantizeInt4Cpu(const Int4Weights& w, float* out) {
  const bool avx2 = Avx2Available();
  const int64_t tasks = (w.out + kRowsPerTask - 1) / kRowsPerTask;
#pragma omp parallel for schedule(static) if (w.out * w.in >= (int64_t{1} << 18))
  for (int64_t t = 0; t < tasks; ++t) {
    const int64_t r0 = t * kRowsPerTask, r1 = std::min(w.out, r0 + kRowsPerTask);
    if (avx2) DequantizeInt4RowsAvx2(w, out, r0, r1);
    else DequantizeInt4RowsScalar(w, out, r0, r1);
  }
}

}  // namespace augur::qkernels
