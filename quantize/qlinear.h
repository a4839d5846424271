// Quantized linear layers: the one call the model and the benchmarks use, its dispatch on the
// tensor's device (linear_int8.cc / linear_int4.cc pick the CPU or CUDA kernels), the slow
// reference it is tested against, and the LinearBackend that runs it inside a LlamaModel.
#pragma once

#include <ATen/core/Tensor.h>

#include "core/model.h"
#include "quantize/kernels_cpu.h"
#include "quantize/qweight.h"

namespace augur {

// x [..., in] (float32; other float dtypes are computed in float32 and cast back) ->
// [..., out]. The weight must be on x's device. bias: float [out] or undefined.
at::Tensor QuantizedLinear(const at::Tensor& x, const QuantizedWeight& w, const at::Tensor& bias,
                           qkernels::CpuKernel cpu_kernel = qkernels::CpuKernel::kAuto);

// Reference: Dequantize(w), then x·Wᵀ + b in float64 on the CPU; returns float32 on the CPU.
at::Tensor QuantizedLinearReference(const at::Tensor& x, const QuantizedWeight& w, const at::Tensor& bias);

// Per-backend entry points on a 2-D float32 contiguous x [M, in] (linear_int8.cc, linear_int4.cc).
at::Tensor Int8Linear(const at::Tensor& x, const QuantizedWeight& w, const at::Tensor& bias, qkernels::CpuKernel k);
at::Tensor Int4Linear(const at::Tensor& x, const QuantizedWeight& w, const at::Tensor& bias, qkernels::CpuKernel k);

class QuantLinearBackend : public LinearBackend {
 public:
  QuantLinearBackend(QuantizedWeight weight, at::Tensor bias) : weight_(std::move(weight)), bias_(std::move(bias)) {}
  at::Tensor forward(const at::Tensor& x) override { return QuantizedLinear(x, weight_, bias_); }
  const QuantizedWeight& weight() const { return weight_; }

 private:
  QuantizedWeight weight_;
  at::Tensor bias_;
};

}  // namespace augur
