// Software prefetch of weight rows for the CPU GEMM kernels (any x86-64 file may include it).
//
// The kernels take blocks of weight rows outer and every tile of rows of x inner. At M > 1 a
// block's compute (its first tile reading DRAM, the others L1) would otherwise leave the
// memory bus idle: the hardware prefetcher runs only a little ahead of the loads, so the
// stream time and the compute time add. Each tile of a block therefore prefetches a slice
// of a block further on into L2, so that block's DRAM reads overlap this block's compute.
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

}  // namespace augur::qkernels
