// Software prefetch of weight rows for the CPU GEMM kernels (any x86-64 file may include it).
//
// The kernels take blocks of weight rows outer and every tile of rows of x inner. At M > 1 a
// block's compute (its first tile reading DRAM, the others L1) would otherwise leave the
// memory bus idle: the hardware prefetcher runs only a little ahead of the loads, so the
// stream time and the compute time add. Each tile of a block therefore prefetches a slice
// of a block further on, so that block's DRAM reads overlap this block's compute.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace augur::qkernels {

// Prefetches (into L2) slice `part` of `parts` of the cache lines of [p, p + bytes).
inline void PrefetchSlice(const void* p, int64_t bytes, int64_t part, int64_t parts) {
  const char* c = static_cast<const char*>(p);
  const int64_t lines = (bytes + 63) / 64, a = lines * part / parts, b = lines * (part + 1) / parts;
  for (int64_t l = a; l < b; ++l) _mm_prefetch(c + l * 64, _MM_HINT_T1);
}

// A byte range prefetched into L2 a few lines at a time: a kernel calls Next() once per step
// of its inner loop, spreading a later block's lines over the current block's compute.
// (Prefetching a whole block at a tile's start fills the core's miss buffers at once and
// stalls it until they drain, so the stream and the compute add up again.)
struct PrefetchStream {
  const char* p = nullptr;
  const char* end = nullptr;
  int64_t step = 0;  // bytes per Next(), whole lines

  // [begin, begin + bytes) over `steps` calls of Next().
  void Reset(const void* begin, int64_t bytes, int64_t steps) {
    p = static_cast<const char*>(begin);
    end = p + (bytes > 0 ? bytes : 0);
    const int64_t lines = (bytes + 63) / 64;
    step = steps > 0 ? (lines + steps - 1) / steps * 64 : lines * 64;
  }
  void Next() {
    for (int64_t k = 0; k < step && p < end; k += 64, p += 64) _mm_prefetch(p, _MM_HINT_T1);
  }
};

}  // namespace augur::qkernels
