#include "eval/prompt_lookup.h"

#include <algorithm>

namespace augur {

std::vector<int64_t> PromptLookupDrafter::Lookup(const std::vector<int64_t>& context, int64_t gamma,
                                                 int64_t max_ngram, int64_t min_ngram) {
  const int64_t len = static_cast<int64_t>(context.size());
  for (int64_t n = std::min(max_ngram, len - 1); n >= std::max<int64_t>(min_ngram, 1); --n) {
    const int64_t tail = len - n;  // the suffix is context[tail, len)
    // Most recent earlier match first: recent text predicts the continuation best.
    for (int64_t start = tail - 1; start >= 0; --start) {
      if (!std::equal(context.begin() + start, context.begin() + start + n, context.begin() + tail)) continue;
      const int64_t from = start + n, to = std::min(len, from + gamma);
      if (from >= to) continue;
      return std::vector<int64_t>(context.begin() + from, context.begin() + to);
    }
  }
  return {};
}

Draft PromptLookupDrafter::Propose(const DraftRequest& req) {
  Draft d;
  d.tokens = Lookup(req.context, req.gamma, max_ngram_, min_ngram_);
  return d;
}

}  // namespace augur
