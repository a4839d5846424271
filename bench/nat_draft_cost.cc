// Cost of one draft proposal: a NAT drafter (one forward over [last token, mask x (gamma-1)])
// against an AR drafter of the same model (gamma one-token forwards), both on their own warm
// KV cache, as a function of gamma. Random weights: the cost does not depend on them.
// Each proposal continues a context that grew by the previous draft plus one token (all
// accepted), as in speculative decoding with a perfect drafter.
//
//   nat_draft_cost [--config draft-xs] [--context 128] [--gammas 1,2,4,8] [--iters 40] [--threads N]
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <absl/strings/numbers.h>
#include <absl/strings/str_split.h>

#include "core/config.h"
#include "core/model.h"
#include "eval/ar_drafter.h"
#include "eval/nat_drafter.h"
#include "bench/bench_util.h"

namespace {

using augur::bench::Clock;

using augur::bench::Median;

// Median milliseconds per Propose over `iters` rounds after 3 warm-up rounds.
double TimePropose(augur::Drafter& d, int64_t context_len, int64_t gamma, int64_t iters, int64_t vocab) {
  std::vector<int64_t> ctx;
  for (int64_t i = 0; i < context_len; ++i) ctx.push_back(5 + (i * 7919) % (vocab - 5));
  augur::SamplingParams greedy;
  greedy.temperature = 0;
  augur::Sampler sampler(0);
  if (!d.Begin(ctx).ok()) return -1;
  std::vector<double> ms;
  for (int64_t it = 0; it < iters + 3; ++it) {
    const auto t0 = Clock::now();
    augur::Draft draft = d.Propose({ctx, gamma, greedy, sampler});
    const double dt = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    if (it >= 3) ms.push_back(dt);
    ctx.insert(ctx.end(), draft.tokens.begin(), draft.tokens.end());
    ctx.push_back(5 + (it * 31) % (vocab - 5));
  }
  return Median(ms);
}

}  // namespace

int main(int argc, char** argv) {
  std::string config = "draft-xs";
  int64_t context = 128, iters = 40, threads = 1;
  std::vector<int64_t> gammas = {1, 2, 4, 8};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--config") config = next();
    else if (a == "--context") absl::SimpleAtoi(next(), &context);
    else if (a == "--iters") absl::SimpleAtoi(next(), &iters);
    else if (a == "--threads") absl::SimpleAtoi(next(), &threads);
    else if (a == "--gammas") {
      gammas.clear();
      for (auto p : absl::StrSplit(next(), ',')) {
        int64_t g = 0;
        if (absl::SimpleAtoi(p, &g) && g > 0) gammas.push_back(g);
      }
    } else {
      std::fprintf(stderr, "nat_draft_cost: unknown flag %s\nusage: nat_draft_cost [--config PRESET|config.json] "
                           "[--context N] [--gammas 1,2,4,8] [--iters N] [--threads N]\n", a.c_str());
      return 2;
    }
  }
  auto cfg = augur::ResolveModelConfig(config);
  if (!cfg.ok()) {
    std::fprintf(stderr, "nat_draft_cost: %s\n", std::string(cfg.status().message()).c_str());
    return 2;
  }
  torch::set_num_threads(static_cast<int>(threads));
  torch::NoGradGuard no_grad;
  augur::LlamaModel model(*cfg);
  model->init_weights(0);
  model->eval();
  const int64_t max_g = *std::max_element(gammas.begin(), gammas.end());
  const int64_t capacity = context + (iters + 3) * (max_g + 1) + max_g + 1;
  std::printf("%s, context %lld, %lld threads: median ms per proposal of gamma tokens\n", config.c_str(),
              (long long)context, (long long)threads);
  std::printf("| gamma | NAT (1 forward) ms | AR (gamma forwards) ms | AR / NAT |\n|---:|---:|---:|---:|\n");
  for (int64_t g : gammas) {
    augur::NatDrafter nat(model, g, 4, capacity);
    augur::ArDrafter ar(model, capacity);
    const double t_nat = TimePropose(nat, context, g, iters, cfg->vocab_size);
    const double t_ar = TimePropose(ar, context, g, iters, cfg->vocab_size);
    std::printf("| %lld | %.3f | %.3f | %.2f |\n", (long long)g, t_nat, t_ar, t_ar / t_nat);
  }
  return 0;
}
