#include "quantize/qlinear.h"

#include <ATen/ATen.h>

namespace augur {

at::Tensor QuantizedLinear(const at::Tensor& x, const QuantizedWeight& w, const at::Tensor& bias,
                           qkernels::CpuKernel cpu_kernel) {
  TORCH_CHECK(x.size(-1) == w.in, "quantized linear: input ", x.sizes(), " does not end in ", w.in, " features");
  TORCH_CHECK(w.qweight.device() == x.device(), "quantized linear: weight on ", w.qweight.device(), " but input on ",
              x.device());
  auto shape = x.sizes().vec();
  shape.back() = w.out;
  const at::Tensor x2 = x.reshape({-1, w.in}).to(at::kFloat).contiguous();
  at::Tensor b = bias;
  if (b.defined()) b = b.to(x.device(), at::kFloat).contiguous();
  at::Tensor y = w.scheme.bits == 8 ? Int8Linear(x2, w, b, cpu_kernel) : Int4Linear(x2, w, b, cpu_kernel);
  return y.view(shape).to(x.scalar_type());
}

at::Tensor QuantizedLinearReference(const at::Tensor& x, const QuantizedWeight& w, const at::Tensor& bias) {
  const at::Tensor wd = Dequantize(w).to(at::kDouble);
  at::Tensor y = at::matmul(x.to(at::kCPU, at::kDouble), wd.t());
  if (bias.defined()) y = y + bias.to(at::kCPU, at::kDouble);
  return y.to(at::kFloat);
}

}  // namespace augur
