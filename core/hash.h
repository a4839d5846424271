// SplitMix64 (Steele, Lea, Flood 2014): the one mixer behind every deterministic draw that
// must not depend on how a run was split or resumed (token windows, distillation batches,
// teacher generation).
#pragma once

#include <cstdint>

namespace augur {

inline uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace augur
