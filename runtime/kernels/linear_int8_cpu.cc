// int8 CPU linear: the portable scalar path, threads over output rows (ParallelFor), and the runtime choice
// of the AVX2 path (runtime/kernels/linear_int8_avx2.cc).
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "runtime/kernels/kernels_cpu.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace augur::qkernels {

bool Avx2Available() {
  static const bool ok = Avx2Compiled() && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return ok;
}

bool Avx512VnniAvailable() {
  static const bool ok = Avx512VnniCompiled() && Avx2Available() && __builtin_cpu_supports("avx512f") &&
                         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
                         __builtin_cpu_supports("avx512vnni");
  return ok;
}

const char* CpuKernelName(CpuKernel k) {
  switch (k) {
    case CpuKernel::kAuto: return "auto";
    case CpuKernel::kScalar: return "scalar";
    case CpuKernel::kAvx2: return "avx2";
    case CpuKernel::kAvx2Q8: return "avx2-q8";
    case CpuKernel::kAvx512Vnni: return "avx512-vnni";
  }
  return "?";
}

namespace {
std::atomic<int> g_default{-1};  // -1: not chosen yet
}

CpuKernel DefaultCpuKernel() {
  int k = g_default.load();
  if (k < 0) {
    CpuKernel pick = Avx512VnniAvailable() ? CpuKernel::kAvx512Vnni
                     : Avx2Available()     ? CpuKernel::kAvx2Q8
                                           : CpuKernel::kScalar;
    if (const char* env = std::getenv("AUGUR_QUANT_KERNEL")) {
      if (!std::strcmp(env, "scalar")) pick = CpuKernel::kScalar;
      else if (!std::strcmp(env, "avx2")) pick = CpuKernel::kAvx2;
      else if (!std::strcmp(env, "avx2-q8")) pick = CpuKernel::kAvx2Q8;
      else if (!std::strcmp(env, "avx512-vnni")) pick = CpuKernel::kAvx512Vnni;
    }
    k = static_cast<int>(pick);
    g_default.store(k);
  }
  return static_cast<CpuKernel>(k);
}

void SetDefaultCpuKernel(CpuKernel k) {  // kAuto: back to the automatic choice
  g_default.store(k == CpuKernel::kAuto ? -1 : static_cast<int>(k));
}

CpuKernel ResolveCpuKernel(CpuKernel k) {
  if (k == CpuKernel::kAuto) k = DefaultCpuKernel();
  if (k == CpuKernel::kAvx512Vnni && !Avx512VnniAvailable()) k = CpuKernel::kAvx2Q8;
  if ((k == CpuKernel::kAvx2 || k == CpuKernel::kAvx2Q8) && !Avx2Available()) k = CpuKernel::kScalar;
  return k == CpuKernel::kAuto ? CpuKernel::kScalar : k;
}

void QuantizeActivations(const float* x, int64_t m, int64_t in, int64_t blocks, Q8Layout layout, int64_t group,
                         bool lane_scales, Q8Activations* out) {
  Q8Activations& a = *out;
  a.blocks = blocks;
  a.groups = group > 0 ? blocks / (group / 32) : 0;
  a.q.resize(m * blocks * 32);  // every slot is written below, padding included
  a.scale.resize(m * blocks);
  a.row_sum.resize(m);
  const int64_t bpg = group > 0 ? group / 32 : 0, ng = group > 0 ? blocks / bpg : 0;
  a.group_sum.assign(m * ng, 0.f);
  for (int64_t i = 0; i < m; ++i) {
    float row_sum = 0;
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t c0 = b * 32, n = std::max<int64_t>(0, std::min<int64_t>(32, in - c0));
      float amax = 0;
      for (int64_t j = 0; j < n; ++j) amax = std::max(amax, std::fabs(x[i * in + c0 + j]));
      const float d = amax / 127.f, inv = amax > 0 ? 127.f / amax : 0.f;
      int8_t* row = a.q.data() + i * blocks * 32;
      int8_t code[32] = {};
      int32_t sum = 0;
      for (int64_t j = 0; j < n; ++j) {
        // Round to nearest even, as std::nearbyint does, without its library call (this file
        // is built for any x86-64, where nearbyintf is not an instruction): |v| <= 127.
        const float v = (x[i * in + c0 + j] * inv + 12582912.f) - 12582912.f;  // 1.5 * 2^23
        code[j] = static_cast<int8_t>(std::max(-127.f, std::min(127.f, v)));
        sum += code[j];
      }
      for (int64_t j = 0; j < 32; ++j) {
        int64_t slot = c0 + j;  // kPlain
        if (layout == Q8Layout::kEvenOdd32) slot = c0 + (j % 2) * 16 + j / 2;
        if (layout == Q8Layout::kEvenOdd64) slot = (b - b % 2) * 32 + (j % 2) * 32 + (b % 2) * 16 + j / 2;
        row[slot] = code[j];
      }
      a.scale[i * blocks + b] = d;
      row_sum += d * static_cast<float>(sum);
      if (group > 0) a.group_sum[i * ng + b / bpg] += d * static_cast<float>(sum);
    }
    a.row_sum[i] = row_sum;
  }
  if (!lane_scales) return;
  // int32 lane l of a dpbusd over 64 codes sums bytes 4l..4l+3; which block they came from
  // depends on the layout (see Q8Layout).
  const int64_t sbs = blocks / 2;
  a.lane_scale.resize(m * sbs * 16);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t sb = 0; sb < sbs; ++sb)
      for (int l = 0; l < 16; ++l) {
        const int h = layout == Q8Layout::kEvenOdd64 ? (l / 4) % 2 : l / 8;
        // kEvenOdd64: the kernel keeps odd columns' codes as 16 q (linear_q8_avx512.cc).
        const float unshift = layout == Q8Layout::kEvenOdd64 && l >= 8 ? 1.f / 16 : 1.f;
        a.lane_scale[(i * sbs + sb) * 16 + l] = a.scale[i * blocks + 2 * sb + h] * unshift;
      }
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

// Rows per task: enough work per task that scheduling costs little, and below this many
// multiply-adds in total the call stays on one thread (a parallel round costs µs).
constexpr int64_t kRowsPerTask = 16;
constexpr int64_t kMinParallelWork = int64_t{1} << 17;

bool UseThreads(int64_t work) {
#ifdef _OPENMP
  return work >= kMinParallelWork && KernelThreads() > 1;
#else
  return false;
#endif
}

void Int8GemmCpu(const float* x, int64_t m, const Int8Weights& w, const float* bias, float* y, CpuKernel kernel) {
  kernel = ResolveCpuKernel(kernel);
  // Reused across calls (a draft step makes one per layer per token). Named through a
  // reference so the pool workers below read this thread's buffer, not their own.
  thread_local Q8Activations buffer;
  Q8Activations& xa = buffer;
  if (kernel == CpuKernel::kAvx2Q8) QuantizeActivations(x, m, w.in, (w.in + 31) / 32, Q8Layout::kPlain, 0, false, &xa);
  if (kernel == CpuKernel::kAvx512Vnni) {
    QuantizeActivationsAvx512(x, m, w.in, (w.in + 63) / 64 * 2, Q8Layout::kPlain, 0, &xa);
    GroupActivationsVnni(&xa, m, w.in / 64, false);
  }
  const int64_t tasks = (w.out + kRowsPerTask - 1) / kRowsPerTask;
  auto rows = [&](int64_t r0, int64_t r1) {
      if (kernel == CpuKernel::kAvx512Vnni) Int8RowsVnni(xa, m, w, bias, y, r0, r1);
      else if (kernel == CpuKernel::kAvx2Q8) Int8RowsQ8Avx2(xa, m, w, bias, y, r0, r1);
      else if (kernel == CpuKernel::kAvx2) Int8RowsAvx2(x, m, w, bias, y, r0, r1);
      else Int8RowsScalar(x, m, w, bias, y, r0, r1);
  };
  // One thread (the benches, a drafter): no parallel region at all, which costs µs per call.
  if (!UseThreads(m * w.out * w.in)) return rows(0, w.out);
  ParallelFor(tasks, [&](int64_t t0, int64_t t1) { rows(t0 * kRowsPerTask, std::min(w.out, t1 * kRowsPerTask)); });
}

void DequantizeInt8Cpu(const Int8Weights& w, float* out) {
#pragma omp parallel for schedule(static) if (w.out * w.in >= (int64_t{1} << 18))
  for (int64_t r = 0; r < w.out; ++r) {
    const int8_t* q = w.q + r * w.in;
    float* o = out + r * w.in;
    const float s = w.scales[r];
    for (int64_t c = 0; c < w.in; ++c) o[c] = static_cast<float>(q[c]) * s;  // Int8Value
  }
}

}  // namespace augur::qkernels
