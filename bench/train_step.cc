// Where a training step's time goes: forward + loss, backward, gradient clipping and the
// AdamW step, for a preset at a given batch shape (random tokens, random weights).
//
//   train_step [--config target-s] [--batch 8] [--seq-len 256] [--steps 8] [--threads N]
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <string>

#include <absl/strings/numbers.h>

#include "core/config.h"
#include "core/model.h"
#include "train/optimizer.h"
#include "train/trainer.h"

namespace {
using Clock = std::chrono::steady_clock;
double Ms(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double, std::milli>(b - a).count(); }
}  // namespace

int main(int argc, char** argv) {
  std::string config = "target-s";
  int64_t batch = 8, seq_len = 256, steps = 8, threads = 0, tune = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i], v = argv[i + 1];
    bool ok = true;
    if (a == "--config") config = v;
    else if (a == "--batch") ok = absl::SimpleAtoi(v, &batch);
    else if (a == "--seq-len") ok = absl::SimpleAtoi(v, &seq_len);
    else if (a == "--steps") ok = absl::SimpleAtoi(v, &steps);
    else if (a == "--threads") ok = absl::SimpleAtoi(v, &threads);
    else if (a == "--tune-malloc") ok = absl::SimpleAtoi(v, &tune);
    else ok = false;
    if (!ok) {
      std::fprintf(stderr, "usage: train_step [--config P] [--batch B] [--seq-len T] [--steps N] [--threads N] "
                           "[--tune-malloc 0|1]\n");
      return 2;
    }
  }
  if (threads > 0) torch::set_num_threads(static_cast<int>(threads));
  if (tune) augur::train::TuneAllocatorForTraining();
  auto cfg = augur::ResolveModelConfig(config);
  if (!cfg.ok()) {
    std::fprintf(stderr, "train_step: %s\n", std::string(cfg.status().message()).c_str());
    return 2;
  }
  augur::LlamaModel model(*cfg);
  model->init_weights(0);
  auto opt = augur::train::MakeAdamW(*model, {});
  torch::manual_seed(0);
  double fwd = 0, bwd = 0, clip = 0, step = 0;
  int64_t timed = 0;
  for (int64_t s = 0; s < steps; ++s) {
    at::Tensor b = torch::randint(0, cfg->vocab_size, {batch, seq_len + 1}, torch::kLong);
    auto t0 = Clock::now();
    opt->zero_grad();
    at::Tensor loss = augur::train::LanguageModelLoss(model, b);
    auto t1 = Clock::now();
    loss.backward();
    auto t2 = Clock::now();
    torch::nn::utils::clip_grad_norm_(model->parameters(), 1.0);
    auto t3 = Clock::now();
    opt->step();
    auto t4 = Clock::now();
    if (s < 2) continue;  // warm-up
    fwd += Ms(t0, t1), bwd += Ms(t1, t2), clip += Ms(t2, t3), step += Ms(t3, t4);
    ++timed;
  }
  const double total = (fwd + bwd + clip + step) / timed;
  std::printf("train step: %s, B=%lld T=%lld, %d threads, %lld timed steps, malloc %s\n", config.c_str(),
              (long long)batch, (long long)seq_len, at::get_num_threads(), (long long)timed,
              tune ? "tuned" : "default");
  std::printf("forward+loss %8.1f ms\nbackward     %8.1f ms\nclip         %8.1f ms\nadamw        %8.1f ms\n"
              "total        %8.1f ms  (%.0f tokens/s)\n",
              fwd / timed, bwd / timed, clip / timed, step / timed, total, batch * seq_len / total * 1e3);
  return 0;
}
