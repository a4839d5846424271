// int4 linear on CUDA: one warp per output row; each lane reads 8 weights (one 32-bit load of
// packed nibbles, all in one group since groups are multiples of 8), dequantizes them with the
// group's scale and zero, and multiplies them into up to MT rows of x; a warp reduction
// finishes the row.
#include "runtime/kernels/cuda_common.cuh"
#include "runtime/kernels/kernels_cuda.h"

namespace augur::qkernels {
namespace {

template <int MT>
__global__ void Int4Kernel(const float* __restrict__ x, int m, const uint8_t* __restrict__ q,
                           const float* __restrict__ scales, const uint8_t* __restrict__ zeros,
                           const float* __restrict__ bias, float* __restrict__ y, int64_t out, int64_t in,
                           int64_t in_padded, int64_t group) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (r >= out) return;
  const int64_t ng = in_padded / group;
  float acc[MT];
#pragma unroll
  for (int t = 0; t < MT; ++t) acc[t] = 0.f;
  const uint8_t* row = q + r * (in_padded / 2);
  for (int64_t c = static_cast<int64_t>(lane) * 8; c < in; c += 32 * 8) {
    const uint32_t packed = *reinterpret_cast<const uint32_t*>(row + c / 2);  // 4-byte aligned: c % 8 == 0
    const int64_t k = c / group;
    const float s = scales[r * ng + k];
    const float z = static_cast<float>(zeros[r * ng + k]);
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      if (c + i >= in) break;
      const float w = (static_cast<float>((packed >> (4 * i)) & 0xF) - z) * s;
#pragma unroll
      for (int t = 0; t < MT; ++t)
        if (t < m) acc[t] += w * __ldg(x + t * in + c + i);
    }
  }
#pragma unroll
  for (int t = 0; t < MT; ++t) {
    const float s = WarpSum(acc[t]);
    if (lane == 0 && t < m) y[t * out + r] = s + (bias ? bias[r] : 0.f);
  }
}

template <int MT>
void Launch(const float* x, int m, const uint8_t* q, const float* scales, const uint8_t* zeros, const float* bias,
            float* y, int64_t out, int64_t in, int64_t in_padded, int64_t group, cudaStream_t stream) {
  const unsigned blocks = static_cast<unsigned>((out + kWarpsPerBlock - 1) / kWarpsPerBlock);
  Int4Kernel<MT><<<blocks, 32 * kWarpsPerBlock, 0, stream>>>(x, m, q, scales, zeros, bias, y, out, in, in_padded,
                                                             group);
}

}  // namespace

std::string Int4GemmCuda(const float* x, int64_t m, const uint8_t* q, const float* scales, const uint8_t* zeros,
                         const float* bias, float* y, int64_t out, int64_t in, int64_t in_padded, int64_t group,
                         void* stream_ptr) {
  cudaStream_t stream = static_cast<cudaStream_t>(stream_ptr);
  for (int64_t i = 0; i < m;) {
    const int tile = TileFor(m - i);
    const int mt = static_cast<int>(m - i < tile ? m - i : tile);
    const float* xt = x + i * in;
    float* yt = y + i * out;
    switch (tile) {
      case 1: Launch<1>(xt, mt, q, scales, zeros, bias, yt, out, in, in_padded, group, stream); break;
      case 2: Launch<2>(xt, mt, q, scales, zeros, bias, yt, out, in, in_padded, group, stream); break;
      case 4: Launch<4>(xt, mt, q, scales, zeros, bias, yt, out, in, in_padded, group, stream); break;
      case 8: Launch<8>(xt, mt, q, scales, zeros, bias, yt, out, in, in_padded, group, stream); break;
      default: Launch<16>(xt, mt, q, scales, zeros, bias, yt, out, in, in_padded, group, stream); break;
    }
    i += mt;
  }
  return CudaError("int4 linear kernel");
}

}  // namespace augur::qkernels
