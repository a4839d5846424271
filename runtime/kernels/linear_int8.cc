// int8 linear: dispatch on the input's device to the CPU kernels (linear_int8_cpu.cc,
// linear_int8_avx2.cc) or the CUDA kernel (linear_int8_cuda.cu, built with AUGUR_CUDA).
#include <ATen/ATen.h>

#include "runtime/qlinear.h"

#ifdef AUGUR_WITH_CUDA
#include <c10/cuda/CUDAStream.h>

#include "runtime/kernels/kernels_cuda.h"
#endif

namespace augur {

at::Tensor Int8Linear(const at::Tensor& x, const QuantizedWeight& w, const at::Tensor& bias, qkernels::CpuKernel k) {
  const int64_t m = x.size(0);
  at::Tensor y = at::empty({m, w.out}, x.options());
  const float* b = bias.defined() ? bias.data_ptr<float>() : nullptr;
  if (x.is_cpu()) {
    const qkernels::Int8Weights view{w.qweight.data_ptr<int8_t>(), w.scales.data_ptr<float>(), w.out, w.in};
    qkernels::Int8GemmCpu(x.data_ptr<float>(), m, view, b, y.data_ptr<float>(), k);
    return y;
  }
#ifdef AUGUR_WITH_CUDA
  if (x.is_cuda()) {
    const std::string err = qkernels::Int8GemmCuda(x.data_ptr<float>(), m, w.qweight.data_ptr<int8_t>(),
                                                   w.scales.data_ptr<float>(), b, y.data_ptr<float>(), w.out, w.in,
                                                   c10::cuda::getCurrentCUDAStream(x.device().index()).stream());
    TORCH_CHECK(err.empty(), "quantized linear: ", err);
    return y;
  }
#endif
  TORCH_CHECK(false, "quantized linear: no int8 kernel for device ", x.device(),
              x.is_cuda() ? " (augur was built without AUGUR_CUDA)" : "");
}

}  // namespace augur
