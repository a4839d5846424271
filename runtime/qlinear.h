// Quantized linear layers: the one call the model and the benchmarks use, its dispatch on the
// tensor's device (linear_int8.cc / linear_int4.cc pick the CPU or CUDA kernels), the slow
// reference it is tested against, and the LinearBackend that runs it inside a LlamaModel.
#pragma once

#include <ATen/core/Tensor.h>

#include "core/model.h"
#include "runtime/kernels/kernels_cpu.h"
#include "runtime/qweight.h"

namespace augur {

// x [..., in] (float32; other float dtypes are computed in float32 and cast back) ->
// [..., out]. The weight must be on x's device. bias: float [out] or undefined.
at::Tensor QuantizedLinear(const at::Tensor& x, const QuantizedWeight& w, const at::Tensor& bias,
                           qkernels::CpuKernel cpu_kernel = qkernels::CpuKernel::kAuto);

// On the CPU, a call with kAuto and at least DequantGemmMinRows() rows of x dequantizes the
// weight (DequantizeInt8Cpu / DequantizeInt4Cpu) and runs fp32 at::linear (MKL). The kernels
// stream the weight once per call whatever M (kernels_cpu.h), and measured on the AVX-512
// machine (bench/quant_linear, 1 thread, 1536x576 and 576x1536) the VNNI kernels beat
// dequant+GEMM at every M from 1 to 256 (int8 1.9-3x, int4 1.2-2x) and the avx2-q8 ones up
// to 32 rows (int4-g32 about even at 32, behind at 64). So the default is
// kDequantGemmMinRowsVnni = 0, never, with the VNNI kernels, else kDequantGemmMinRows. Below
// the threshold every call is batch-invariant (row m of an M-row call equals its one-row call
// bit for bit, kernels_cpu.h); the GEMM route is not, so a verification forward of T tokens
// reproduces one-token decoding only for T below it (the native engine, native_llama.h, takes
// the same route from the same threshold, fp32 weights included).
// AUGUR_QUANT_DEQUANT_MIN_ROWS=N (read once) or SetDequantGemmMinRows(N) fixes it; 0 = never,
// a negative N = back to the kernel's default. An explicit kernel always runs that kernel.
inline constexpr int64_t kDequantGemmMinRows = 64;
inline constexpr int64_t kDequantGemmMinRowsVnni = 0;
int64_t DequantGemmMinRows();
void SetDequantGemmMinRows(int64_t m);
// That route on its own, for any M: x float32 [M, in] contiguous on the CPU.
at::Tensor DequantGemmLinear(const at::Tensor& x, const QuantizedWeight& w, const at::Tensor& bias);

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
