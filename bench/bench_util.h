// What the bench programs share: the clock and the median of repeated timings (medians, not
// means, since these machines are noisy).
#pragma once

#include <algorithm>
#include <chrono>
#include <vector>

namespace augur::bench {

using Clock = std::chrono::steady_clock;

// The median of `v` (the mean of the middle two for an even count); v must not be empty.
inline double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

}  // namespace augur::bench
