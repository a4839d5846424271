// int8 linear on CUDA: one warp per output row; each lane reads 4 weights (one 32-bit load) at a
// time and multiplies them into up to MT rows of x held in registers; a warp reduction and
// the row's scale finish the row.
#include "runtime/kernels/cuda_common.cuh"
#include "runtime/kernels/kernels_cuda.h"

namespace augur::qkernels {
namespace {

template <int MT>
__global__ void Int8Kernel(const float* __restrict__ x, int m, const int8_t* __restrict__ q,
                           const float* __restrict__ scales, const float* __restrict__ bias, float* __restrict__ y,
                           int64_t out, int64_t in) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (r >= out) return;
  float acc[MT];
#pragma unroll
  for (int t = 0; t < MT; ++t) acc[t] = 0.f;
  const int8_t* row = q + r * in;
  for (int64_t c = static_cast<int64_t>(lane) * 4; c < in; c += 32 * 4) {
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      if (c + i >= in) break;
      const float w = static_cast<float>(row[c + i]);
#pragma unroll
      for (int t = 0; t < MT; ++t)
        if (t < m) acc[t] += w * __ldg(x + t * in + c + i);
    }
  }
#pragma unroll
  for (int t = 0; t < MT; ++t) {
    const float s = WarpSum(acc[t]);
    if (lane == 0 && t < m) y[t * out + r] = s * scales[r] + (bias ? bias[r] : 0.f);
  }
}

template <int MT>
void Launch(const float* x, int m, const int8_t* q, const float* scales, const float* bias, float* y, int64_t out,
            int64_t in, cudaStream_t stream) {
  const unsigned blocks = static_cast<unsigned>((out + kWarpsPerBlock - 1) / kWarpsPerBlock);
  Int8Kernel<MT><<<blocks, 32 * kWarpsPerBlock, 0, stream>>>(x, m, q, scales, bias, y, out, in);
}

}  // namespace

std::string Int8GemmCuda(const float* x, int64_t m, const int8_t* q, const float* scales, const float* bias,
                         float* y, int64_t out, int64_t in, void* stream_ptr) {
  cudaStream_t stream = static_cast<cudaStream_t>(stream_ptr);
  for (int64_t i = 0; i < m;) {
    const int tile = TileFor(m - i);
    const int mt = static_cast<int>(m - i < tile ? m - i : tile);
    const float* xt = x + i * in;
    float* yt = y + i * out;
    switch (tile) {
      case 1: Launch<1>(xt, mt, q, scales, bias, yt, out, in, stream); break;
      case 2: Launch<2>(xt, mt, q, scales, bias, yt, out, in, stream); break;
      case 4: Launch<4>(xt, mt, q, scales, bias, yt, out, in, stream); break;
      case 8: Launch<8>(xt, mt, q, scales, bias, yt, out, in, stream); break;
      default: Launch<16>(xt, mt, q, scales, bias, yt, out, in, stream); break;
    }
    i += mt;
  }
  return CudaError("int8 linear kernel");
}

}  // namespace augur::qkernels
