#include "train/schedule.h"

#include <algorithm>
#include <cmath>

namespace augur::train {

double LrSchedule::at(int64_t step) const {
  if (step < warmup_steps) return peak_lr * static_cast<double>(step + 1) / static_cast<double>(warmup_steps);
  const double span = static_cast<double>(std::max<int64_t>(1, total_steps - warmup_steps));
  const double progress = std::clamp(static_cast<double>(step - warmup_steps) / span, 0.0, 1.0);
  const double floor = peak_lr * min_ratio;
  return floor + (peak_lr - floor) * 0.5 * (1.0 + std::cos(M_PI * progress));
}

absl::Status LrSchedule::Validate() const {
  if (!(peak_lr > 0) || !std::isfinite(peak_lr))
    return absl::InvalidArgumentError(absl::StrCat("train: --lr ", peak_lr, ": must be a positive number"));
  if (warmup_steps < 0)
    return absl::InvalidArgumentError(absl::StrCat("train: --warmup ", warmup_steps, ": must be >= 0"));
  if (total_steps <= 0)
    return absl::InvalidArgumentError(absl::StrCat("train: --steps ", total_steps, ": must be > 0"));
  if (!(min_ratio >= 0 && min_ratio <= 1))
    return absl::InvalidArgumentError(absl::StrCat("train: --min-lr-ratio ", min_ratio, ": must be in [0, 1]"));
  return absl::OkStatus();
}

}  // namespace augur::train
