// Learning-rate schedule: linear warmup, then cosine decay to a floor.
#pragma once

#include <cstdint>

#include "core/status.h"

namespace augur::train {

struct LrSchedule {
  double peak_lr = 1e-3;
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;
  double min_ratio = 0.1;  // floor = peak_lr * min_ratio

  // Learning rate used by optimizer step `step` (0-based):
  //   step < warmup:  peak * (step + 1) / warmup
  //   else:           floor + (peak - floor) * 0.5 * (1 + cos(pi * progress)),
  //                   progress = (step - warmup) / (total - warmup), clamped to [0, 1].
  // So the first post-warmup step runs at the peak and step total-1 approaches the floor;
  // steps past `total` stay at the floor.
  double at(int64_t step) const;
  absl::Status Validate() const;
};

}  // namespace augur::train
