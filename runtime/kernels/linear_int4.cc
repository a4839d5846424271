// int4 linear: dispatch on the input's device to the CPU kernels (linear_int4_cpu.cc,
// linear_int4_avx2.cc) or the CUDA kernel (linear_int4_cuda.cu, built with AUGUR_CUDA).
#include <ATen/ATen.h>

#include "runtime/qlinear.h"

#ifdef AUGUR_WITH_CUDA
#include <c10/cuda/CUDAStream.h>

#include "runtime/kernels/kernels_cuda.h"
#endif

namespace augur {

at::Tensor Int4Linear(const at::Tensor& x, const QuantizedWeight& w, const at::Tensor& bias, qkernels::CpuKernel k) {
  const int64_t m = x.size(0);
  at::Tensor y = at::empty({m, w.out}, x.options());
  const float* b = bias.defined() ? bias.data_ptr<float>() : nullptr;
  if (x.is_cpu()) {
    const qkernels::Int4Weights view{w.qweight.data_ptr<uint8_t>(), w.scales.data_ptr<float>(),
                                     w.zeros.data_ptr<uint8_t>(), w.out, w.in, w.in_padded(), w.scheme.group};
    qkernels::Int4GemmCpu(x.data_ptr<float>(), m, view, b, y.data_ptr<float>(), k);
    return y;
  }
#ifdef AUGUR_WITH_CUDA
  if (x.is_cuda()) {
    const std::string err = qkernels::Int4GemmCuda(
        x.data_ptr<float>(), m, w.qweight.data_ptr<uint8_t>(), w.scales.data_ptr<float>(), w.zeros.data_ptr<uint8_t>(),
        b, y.data_ptr<float>(), w.out, w.in, w.in_padded(), w.scheme.group,
        c10::cuda::getCurrentCUDAStream(x.device().index()).stream());
    TORCH_CHECK(err.empty(), "quantized linear: ", err);
    return y;
  }
#endif
  TORCH_CHECK(false, "quantized linear: no int4 kernel for device ", x.device(),
              x.is_cuda() ? " (augur was built without AUGUR_CUDA)" : "");
}

}  // namespace augur
