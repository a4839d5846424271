// Decode cost per forward as a function of tokens per forward (T), with a warm KV cache.
// Speculative decoding verifies gamma+1 tokens in one target forward; it pays off only
// when that forward costs little more than a one-token forward. This measures the ratio.
//
//   decode_cost [--config target-s] [--context 256] [--tokens 1,2,4,8,16] [--iters 50]
//               [--threads N] [--json FILE]
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <absl/strings/numbers.h>
#include <absl/strings/str_split.h>
#include <nlohmann/json.hpp>

#include "core/config.h"
#include "core/model.h"
#include "bench/bench_util.h"

namespace {

using augur::bench::Clock;

int Usage(const char* msg) {
  std::fprintf(stderr,
               "decode_cost: %s\nusage: decode_cost [--config PRESET|config.json] [--context N] "
               "[--tokens 1,2,4,8,16] [--iters N] [--warmup N] [--threads N] [--json FILE]\n",
               msg);
  return 2;
}

using augur::bench::Median;

}  // namespace

int main(int argc, char** argv) {
  std::string config = "target-s", json_path;
  int64_t context = 256, iters = 50, warmup = 5, threads = 0;
  std::vector<int64_t> tokens = {1, 2, 4, 8, 16};
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      Usage("decode cost per forward vs tokens per forward");
      return 0;
    }
    if (i + 1 >= argc) return Usage(("missing value for " + a).c_str());
    std::string v = argv[++i];
    bool ok = true;
    if (a == "--config") config = v;
    else if (a == "--json") json_path = v;
    else if (a == "--context") ok = absl::SimpleAtoi(v, &context) && context >= 1;
    else if (a == "--iters") ok = absl::SimpleAtoi(v, &iters) && iters >= 1;
    else if (a == "--warmup") ok = absl::SimpleAtoi(v, &warmup) && warmup >= 0;
    else if (a == "--threads") ok = absl::SimpleAtoi(v, &threads) && threads >= 0;
    else if (a == "--tokens") {
      tokens.clear();
      for (absl::string_view t : absl::StrSplit(v, ',')) {
        int64_t n = 0;
        ok = ok && absl::SimpleAtoi(t, &n) && n >= 1;
        tokens.push_back(n);
      }
    } else return Usage(("unknown flag " + a).c_str());
    if (!ok) return Usage(("bad value for " + a + ": " + v).c_str());
  }
  if (threads > 0) torch::set_num_threads(static_cast<int>(threads));

  auto cfg = augur::ResolveModelConfig(config);
  if (!cfg.ok()) return Usage(std::string(cfg.status().message()).c_str());
  const int64_t max_t = *std::max_element(tokens.begin(), tokens.end());
  if (context + max_t > cfg->max_position_embeddings)
    return Usage("--context + the largest T exceed the model's max_position_embeddings");

  torch::NoGradGuard no_grad;
  augur::LlamaModel model(*cfg);
  model->init_weights(0);  // random weights: the cost does not depend on their values
  model->eval();
  augur::KVCache cache = model->new_cache(1, context + max_t);
  torch::manual_seed(0);
  at::Tensor prompt = torch::randint(0, cfg->vocab_size, {1, context}, torch::kLong);
  model->forward(prompt, &cache);  // the warm cache every measured forward extends

  std::printf("decode cost: %s (%.2fM params), %lld cached tokens, %d threads, %lld iters (median)\n",
              config.c_str(), cfg->num_parameters() / 1e6, (long long)context, at::get_num_threads(),
              (long long)iters);
  // Useful work per forward: every weight matrix (the tied embedding as the output layer)
  // once per token, plus attention scores and values over S+T keys.
  const double H = static_cast<double>(cfg->num_attention_heads), D = static_cast<double>(cfg->head_dim_or_default());
  auto flops = [&](int64_t t) {
    return 2.0 * t * cfg->num_parameters() + 4.0 * cfg->num_hidden_layers * t * (context + t) * H * D;
  };
  std::printf("%6s %12s %10s %14s %10s\n", "T", "ms/forward", "x T=1", "ms/token", "GFLOP/s");
  nlohmann::json rows = nlohmann::json::array();
  double base_ms = 0;
  for (int64_t t : tokens) {
    at::Tensor ids = torch::randint(0, cfg->vocab_size, {1, t}, torch::kLong);
    std::vector<double> ms;
    for (int64_t it = 0; it < warmup + iters; ++it) {
      cache.truncate(context);
      auto t0 = Clock::now();
      at::Tensor logits = model->forward(ids, &cache).logits;  // all T positions, as verification needs
      (void)logits.data_ptr<float>();
      auto t1 = Clock::now();
      if (it >= warmup) ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    }
    const double med = Median(ms);
    if (base_ms == 0) base_ms = med;
    const double gflops = flops(t) / (med * 1e-3) / 1e9;
    std::printf("%6lld %12.3f %10.2f %14.3f %10.1f\n", (long long)t, med, med / base_ms, med / t, gflops);
    rows.push_back({{"tokens", t}, {"ms_per_forward", med}, {"ratio_to_first", med / base_ms}, {"gflops", gflops},
                    {"ms_min", *std::min_element(ms.begin(), ms.end())}});
  }
  if (!json_path.empty()) {
    nlohmann::json j = {{"config", config}, {"parameters", cfg->num_parameters()}, {"context", context},
                        {"threads", at::get_num_threads()}, {"iters", iters}, {"rows", rows}};
    std::ofstream(json_path) << j.dump(2) << "\n";
  }
  return 0;
}
