#include "runtime/qlinear.h"

#include <ATen/ATen.h>

#include <atomic>
#include <cstdlib>

#include <absl/strings/numbers.h>

namespace augur {
namespace {
std::atomic<int64_t> g_dequant_min_rows{-2};  // -2: the environment not read yet; -1: kernel default
}  // namespace

int64_t DequantGemmMinRows() {
  int64_t m = g_dequant_min_rows.load();
  if (m == -2) {
    m = -1;
    int64_t v = 0;
    if (const char* env = std::getenv("AUGUR_QUANT_DEQUANT_MIN_ROWS"); env && absl::SimpleAtoi(env, &v) && v >= 0) m = v;
    g_dequant_min_rows.store(m);
  }
  if (m >= 0) return m;
  return qkernels::ResolveCpuKernel(qkernels::CpuKernel::kAuto) == qkernels::CpuKernel::kAvx512Vnni
             ? kDequantGemmMinRowsVnni
             : kDequantGemmMinRows;
}

void SetDequantGemmMinRows(int64_t m) { g_dequant_min_rows.store(m < 0 ? -1 : m); }

at::Tensor DequantGemmLinear(const at::Tensor& x, const QuantizedWeight& w, const at::Tensor& bias) {
  TORCH_CHECK(x.is_cpu() && w.qweight.is_cpu(), "quantized linear: the dequantize-then-GEMM route is CPU only");
  at::Tensor wd = at::empty({w.out, w.in}, x.options());
  if (w.scheme.bits == 8) {
    const qkernels::Int8Weights view{w.qweight.data_ptr<int8_t>(), w.scales.data_ptr<float>(), w.out, w.in};
    qkernels::DequantizeInt8Cpu(view, wd.data_ptr<float>());
  } else {
    const qkernels::Int4Weights view{w.qweight.data_ptr<uint8_t>(), w.scales.data_ptr<float>(),
                                     w.zeros.data_ptr<uint8_t>(), w.out, w.in, w.in_padded(), w.scheme.group};
    qkernels::DequantizeInt4Cpu(view, wd.data_ptr<float>());
  }
  return bias.defined() ? at::addmm(bias, x, wd.t()) : at::mm(x, wd.t());
}

at::Tensor QuantizedLinear(const at::Tensor& x, const QuantizedWeight& w, const at::Tensor& bias,
                           qkernels::CpuKernel cpu_kernel) {
  TORCH_CHECK(x.size(-1) == w.in, "quantized linear: input ", x.sizes(), " does not end in ", w.in, " features");
  TORCH_CHECK(w.qweight.device() == x.device(), "quantized linear: weight on ", w.qweight.device(), " but input on ",
              x.device());
  // A draft step's x is already [M, in] float32 and contiguous: then no reshape, cast or copy
  // (each is a dispatcher round trip, a visible share of a few-µs call).
  const bool plain = x.dim() == 2 && x.scalar_type() == at::kFloat && x.is_contiguous();
  const at::Tensor x2 = plain ? x : x.reshape({-1, w.in}).to(at::kFloat).contiguous();
  at::Tensor b = bias;
  if (b.defined() && !(b.scalar_type() == at::kFloat && b.device() == x.device() && b.is_contiguous()))
    b = b.to(x.device(), at::kFloat).contiguous();
  // The one dispatch point for the CPU route by M (see DequantGemmMinRows).
  const int64_t min_rows = DequantGemmMinRows();
  const bool dequant_gemm = x2.is_cpu() && cpu_kernel == qkernels::CpuKernel::kAuto && min_rows > 0 &&
                            x2.size(0) >= min_rows;
  at::Tensor y = dequant_gemm        ? DequantGemmLinear(x2, w, b)
                 : w.scheme.bits == 8 ? Int8Linear(x2, w, b, cpu_kernel)
                                      : Int4Linear(x2, w, b, cpu_kernel);
  if (plain) return y;
  auto shape = x.sizes().vec();
  shape.back() = w.out;
  return y.view(shape).to(x.scalar_type());
}

at::Tensor QuantizedLinearReference(const at::Tensor& x, const QuantizedWeight& w, const at::Tensor& bias) {
  const at::Tensor wd = Dequantize(w).to(at::kDouble);
  at::Tensor y = at::matmul(x.to(at::kCPU, at::kDouble), wd.t());
  if (bias.defined()) y = y + bias.to(at::kCPU, at::kDouble);
  return y.to(at::kFloat);
}

}  // namespace augur
