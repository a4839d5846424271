#include "eval/metrics.h"

#include <algorithm>
#include <cmath>

namespace augur {

std::vector<double> Summary::acceptance_by_position() const {
  std::vector<double> out(offered_at.size(), 0.0);
  for (size_t i = 0; i < offered_at.size(); ++i)
    if (offered_at[i] > 0) out[i] = static_cast<double>(accepted_at[i]) / offered_at[i];
  return out;
}

namespace {

void Add(Summary& s, const PromptRecord& r) {
  const SpecStats& st = r.stats;
  s.prompts += 1;
  s.new_tokens += static_cast<int64_t>(r.tokens.size());
  s.target_forwards += st.target_forwards;
  s.proposed += st.proposed;
  s.accepted += st.accepted;
  // offered_at[0] counts the rounds that offered at least one draft token.
  if (!st.offered_at.empty()) s.rounds_with_draft += st.offered_at[0];
  const size_t n = std::max(st.offered_at.size(), s.offered_at.size());
  s.offered_at.resize(n, 0);
  s.accepted_at.resize(n, 0);
  for (size_t i = 0; i < st.offered_at.size(); ++i) s.offered_at[i] += st.offered_at[i];
  for (size_t i = 0; i < st.accepted_at.size() && i < n; ++i) s.accepted_at[i] += st.accepted_at[i];
  s.prefill_s += st.prefill_s;
  s.draft_s += st.draft_s;
  s.verify_s += st.verify_s;
  s.total_s += st.total_s;
}

}  // namespace

Summary Summarize(const PromptRecord& record) {
  Summary s;
  Add(s, record);
  return s;
}

Summary Summarize(const std::vector<PromptRecord>& records) {
  Summary s;
  for (const auto& r : records) Add(s, r);
  return s;
}

double ExpectedTokensPerRound(double alpha, int64_t gamma) {
  if (alpha >= 1.0) return static_cast<double>(gamma + 1);
  return (1.0 - std::pow(alpha, static_cast<double>(gamma + 1))) / (1.0 - alpha);
}

double PredictedSpeedup(double alpha, int64_t gamma, double c, double v) {
  const double cost = gamma * c + v;
  return cost > 0 ? ExpectedTokensPerRound(alpha, gamma) / cost : 0.0;
}

Prediction Predict(const Summary& spec, const Summary& baseline, int64_t gamma) {
  Prediction p;
  p.alpha = spec.alpha();
  p.gamma = gamma;
  p.t_target_1_s = baseline.verify_s_per_forward();
  if (p.t_target_1_s > 0) {
    p.c = gamma > 0 ? spec.draft_s_per_round() / gamma / p.t_target_1_s : 0.0;
    p.v = spec.verify_s_per_forward() / p.t_target_1_s;
  }
  p.expected_tokens = ExpectedTokensPerRound(p.alpha, gamma);
  p.speedup = PredictedSpeedup(p.alpha, gamma, p.c, p.v);
  return p;
}

double Speedup(const Summary& spec, const Summary& baseline) {
  const double base = baseline.tokens_per_s();
  return base > 0 ? spec.tokens_per_s() / base : 0.0;
}

}  // namespace augur
