// Draft step latency of a checkpoint run fp32 vs quantized (RTN in memory): one-token decode
// with a warm KV cache of --context tokens, the step a drafter repeats gamma times per
// speculation round. Variants are timed in turn within each round (same machine load).
//
//   quant_draft_step --model DIR [--context 64] [--steps 100] [--rounds 15] [--threads 1]
//                    [--schemes int8,int4-g32] [--json FILE]
// Each scheme is measured with the head kept fp32 and with the head quantized too.
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

#include "core/checkpoint.h"
#include "quantize/quantize_model.h"

namespace {

using Clock = std::chrono::steady_clock;

int Usage(const char* msg) {
  std::fprintf(stderr,
               "quant_draft_step: %s\nusage: quant_draft_step --model DIR [--context N] [--steps N] [--rounds N] "
               "[--threads N] [--schemes int8,int4-g32,...] [--json FILE]\n",
               msg);
  return 2;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

struct Variant {
  std::string name;
  augur::LlamaModel model{nullptr};
  augur::KVCache cache;
  int64_t bytes = 0;  // linear weight bytes as run
};

}  // namespace

int main(int argc, char** argv) {
  std::string model_dir, schemes_arg = "int8,int4-g32", json_path;
  int64_t context = 64, steps = 100, rounds = 15, threads = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      Usage("one-token decode latency, fp32 vs quantized");
      return 0;
    }
    if (i + 1 >= argc) return Usage(("missing value for " + a).c_str());
    const std::string v = argv[++i];
    bool ok = true;
    if (a == "--model") model_dir = v;
    else if (a == "--schemes") schemes_arg = v;
    else if (a == "--json") json_path = v;
    else if (a == "--context") ok = absl::SimpleAtoi(v, &context) && context >= 1;
    else if (a == "--steps") ok = absl::SimpleAtoi(v, &steps) && steps >= 1;
    else if (a == "--rounds") ok = absl::SimpleAtoi(v, &rounds) && rounds >= 1;
    else if (a == "--threads") ok = absl::SimpleAtoi(v, &threads) && threads >= 1;
    else return Usage(("unknown flag " + a).c_str());
    if (!ok) return Usage(("bad value for " + a + ": " + v).c_str());
  }
  if (model_dir.empty()) return Usage("--model is required");
  torch::set_num_threads(static_cast<int>(threads));
  torch::NoGradGuard no_grad;

  std::vector<Variant> variants;
  auto load = [&]() -> augur::LlamaModel {
    auto ckpt = augur::LoadCheckpoint(model_dir);
    if (!ckpt.ok()) {
      std::fprintf(stderr, "quant_draft_step: %s\n", std::string(ckpt.status().message()).c_str());
      std::exit(1);
    }
    ckpt->model->eval();
    return ckpt->model;
  };
  variants.push_back({"fp32", load(), {}, 0});
  // Bytes of the linears as run: every decoder linear and the head.
  for (const auto& slot : augur::ModelLinears(variants[0].model, true)) variants[0].bytes += slot.weight.numel() * 4;
  for (auto s : absl::StrSplit(schemes_arg, ',')) {
    auto scheme = augur::ParseScheme(std::string(s));
    if (!scheme.ok()) return Usage(std::string(scheme.status().message()).c_str());
    for (bool keep_head : {true, false}) {
      Variant v{scheme->name() + (keep_head ? " (head fp32)" : " (head quantized)"), load(), {}, 0};
      augur::QuantizeModelOptions o;
      o.scheme = *scheme;
      o.keep_head = keep_head;
      o.progress = false;
      auto q = augur::QuantizeModel(v.model, o, at::Tensor());
      if (!q.ok()) return Usage(std::string(q.status().message()).c_str());
      augur::InstallQuantized(v.model, *q);
      for (const auto& [name, w] : *q) v.bytes += w.bytes();
      if (keep_head) v.bytes += augur::ModelLinears(v.model, true).back().weight.numel() * 4;
      variants.push_back(std::move(v));
    }
  }
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1);
  const int64_t vocab = variants[0].model->config().vocab_size;
  const at::Tensor prompt = at::randint(5, vocab, {1, context}, gen, torch::kInt64);
  const at::Tensor token = at::randint(5, vocab, {1, 1}, gen, torch::kInt64);
  for (auto& v : variants) {
    v.cache = v.model->new_cache(1, context + 1);
    v.model->forward(prompt, &v.cache);
    for (int i = 0; i < 10; ++i) {  // warm-up
      v.model->forward(token, &v.cache);
      v.cache.truncate(context);
    }
  }
  std::vector<std::vector<double>> us(variants.size());
  for (int64_t r = 0; r < rounds; ++r)
    for (size_t k = 0; k < variants.size(); ++k) {
      auto& v = variants[k];
      const auto t0 = Clock::now();
      for (int64_t s = 0; s < steps; ++s) {
        v.model->forward(token, &v.cache, {});
        v.cache.truncate(context);
      }
      us[k].push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count() / steps);
    }
  std::printf("quant_draft_step: %s, context %lld, threads %lld, %lld rounds x %lld steps\n", model_dir.c_str(),
              (long long)context, (long long)threads, (long long)rounds, (long long)steps);
  std::printf("%-24s %12s %10s %8s\n", "variant", "linears MB", "us/step", "vs fp32");
  nlohmann::json out = nlohmann::json::array();
  const double base = Median(us[0]);
  for (size_t k = 0; k < variants.size(); ++k) {
    const double med = Median(us[k]);
    std::printf("%-24s %12.3f %10.1f %7.2fx\n", variants[k].name.c_str(), variants[k].bytes / 1e6, med, base / med);
    out.push_back({{"variant", variants[k].name}, {"us_per_step", med}, {"speedup_vs_fp32", base / med},
                   {"bytes", variants[k].bytes}});
  }
  if (!json_path.empty()) std::ofstream(json_path) << out.dump(2) << "\n";
  return 0;
}
