// Draft step latency of a checkpoint run fp32 vs quantized (RTN in memory), on LibTorch
// (runtime/decode_model.h TorchDecodeModel) and on the native CPU runtime (runtime/native_llama.h):
// one-token decode with a warm KV cache of --context tokens, the step a drafter repeats gamma
// times per speculation round, through the DecodeModel interface the drafters use. Variants
// are timed in turn within each round (same machine load).
//
//   quant_draft_step --model DIR [--context 64] [--steps 100] [--rounds 15] [--threads 1]
//                    [--schemes int8,int4-g32,int4-g128] [--engines torch,native] [--new 1] [--json FILE]
// --new N times a forward of N new tokens instead (a NAT drafter's step: its uncached real
// tokens plus gamma-1 masks in one forward).
// Each scheme is measured on each engine with the head kept fp32 and with the head quantized.
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
#include "runtime/decode_model.h"
#include "runtime/native_llama.h"
#include "quantize/quantize_model.h"
#include "bench/bench_util.h"

namespace {

using augur::bench::Clock;

int Usage(const char* msg) {
  std::fprintf(stderr,
               "quant_draft_step: %s\nusage: quant_draft_step --model DIR [--context N] [--steps N] [--rounds N] "
               "[--threads N] [--schemes int8,int4-g32,...] [--engines torch,native] [--new N] [--json FILE]\n",
               msg);
  return 2;
}

using augur::bench::Median;

struct Variant {
  std::string name, engine, precision;
  std::unique_ptr<augur::DecodeModel> decoder;
  int64_t bytes = 0;  // linear weight bytes as run
};

}  // namespace

int main(int argc, char** argv) {
  std::string model_dir, schemes_arg = "int8,int4-g32,int4-g128", engines_arg = "torch,native", json_path;
  int64_t context = 64, steps = 100, rounds = 15, threads = 1, new_tokens = 1;
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
    else if (a == "--engines") engines_arg = v;
    else if (a == "--json") json_path = v;
    else if (a == "--context") ok = absl::SimpleAtoi(v, &context) && context >= 1;
    else if (a == "--steps") ok = absl::SimpleAtoi(v, &steps) && steps >= 1;
    else if (a == "--rounds") ok = absl::SimpleAtoi(v, &rounds) && rounds >= 1;
    else if (a == "--threads") ok = absl::SimpleAtoi(v, &threads) && threads >= 1;
    else if (a == "--new") ok = absl::SimpleAtoi(v, &new_tokens) && new_tokens >= 1;
    else return Usage(("unknown flag " + a).c_str());
    if (!ok) return Usage(("bad value for " + a + ": " + v).c_str());
  }
  if (model_dir.empty()) return Usage("--model is required");
  torch::set_num_threads(static_cast<int>(threads));
  torch::NoGradGuard no_grad;

  std::vector<std::string> engines = absl::StrSplit(engines_arg, ',');
  for (const auto& e : engines)
    if (e != "torch" && e != "native") return Usage(("unknown engine " + e + " (torch, native)").c_str());
  auto load = [&]() -> augur::LlamaModel {
    auto ckpt = augur::LoadCheckpoint(model_dir);
    if (!ckpt.ok()) {
      std::fprintf(stderr, "quant_draft_step: %s\n", std::string(ckpt.status().message()).c_str());
      std::exit(1);
    }
    ckpt->model->eval();
    return ckpt->model;
  };
  // Bytes of the linears as run (every decoder linear and the head), for the torch engine.
  auto torch_bytes = [](augur::LlamaModel& m, const augur::QuantizedLinears* q) {
    int64_t bytes = 0;
    for (const auto& slot : augur::ModelLinears(m, true)) {
      auto it = q != nullptr ? q->find(slot.name) : augur::QuantizedLinears::const_iterator();
      bytes += q != nullptr && it != q->end() ? it->second.bytes() : slot.weight.numel() * 4;
    }
    return bytes;
  };
  std::vector<Variant> variants;
  auto add = [&](augur::LlamaModel m, const std::string& precision, const augur::QuantizedLinears* q) {
    for (const auto& e : engines) {
      Variant v{precision + " " + e, e, precision, nullptr, 0};
      if (e == "torch") {
        v.bytes = torch_bytes(m, q);
        v.decoder = std::make_unique<augur::TorchDecodeModel>(m, context + new_tokens);
      } else {
        auto n = augur::NativeLlama::Create(m, context + new_tokens);
        if (!n.ok()) {
          std::fprintf(stderr, "quant_draft_step: %s\n", std::string(n.status().message()).c_str());
          std::exit(1);
        }
        v.bytes = (*n)->linear_bytes();
        v.decoder = std::move(n).value();
      }
      variants.push_back(std::move(v));
    }
  };
  add(load(), "fp32", nullptr);
  for (auto s : absl::StrSplit(schemes_arg, ',', absl::SkipEmpty())) {
    auto scheme = augur::ParseScheme(std::string(s));
    if (!scheme.ok()) return Usage(std::string(scheme.status().message()).c_str());
    for (bool keep_head : {true, false}) {
      augur::LlamaModel m = load();
      augur::QuantizeModelOptions o;
      o.scheme = *scheme;
      o.keep_head = keep_head;
      o.progress = false;
      auto q = augur::QuantizeModel(m, o, at::Tensor());
      if (!q.ok()) return Usage(std::string(q.status().message()).c_str());
      augur::InstallQuantized(m, *q);
      add(m, scheme->name() + (keep_head ? " (head fp32)" : " (head q)"), &*q);
    }
  }
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1);
  const int64_t vocab = variants[0].decoder->config().vocab_size;
  const at::Tensor prompt_t = at::randint(5, vocab, {context}, gen, torch::kInt64);
  const std::vector<int64_t> prompt(prompt_t.data_ptr<int64_t>(), prompt_t.data_ptr<int64_t>() + context);
  const at::Tensor token_t = at::randint(5, vocab, {new_tokens}, gen, torch::kInt64);
  const std::vector<int64_t> token(token_t.data_ptr<int64_t>(), token_t.data_ptr<int64_t>() + new_tokens);
  for (auto& v : variants) {
    v.decoder->forward(prompt);
    for (int i = 0; i < 10; ++i) {  // warm-up
      v.decoder->forward(token);
      v.decoder->truncate(context);
    }
  }
  std::vector<std::vector<double>> us(variants.size());
  for (int64_t r = 0; r < rounds; ++r)
    for (size_t k = 0; k < variants.size(); ++k) {
      auto& v = variants[k];
      const auto t0 = Clock::now();
      for (int64_t s = 0; s < steps; ++s) {
        v.decoder->forward(token);
        v.decoder->truncate(context);
      }
      us[k].push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count() / steps);
    }
  std::printf("quant_draft_step: %s, context %lld, %lld new token(s) per step, threads %lld, %lld rounds x %lld steps\n",
              model_dir.c_str(), (long long)context, (long long)new_tokens, (long long)threads, (long long)rounds,
              (long long)steps);
  // Ratios: the fp32 torch step (today's drafter) and the fp32 step on the same engine, each
  // divided by this variant's step (2.00x = half the latency).
  auto fp32_us = [&](const std::string& engine) {
    for (size_t k = 0; k < variants.size(); ++k)
      if (variants[k].precision == "fp32" && variants[k].engine == engine) return Median(us[k]);
    return 0.0;
  };
  const double torch_fp32 = fp32_us("torch");
  std::printf("%-28s %11s %10s %14s %14s\n", "variant", "linears MB", "us/step", "vs fp32 torch", "vs fp32 same");
  nlohmann::json out = nlohmann::json::array();
  for (size_t k = 0; k < variants.size(); ++k) {
    const double med = Median(us[k]);
    const double same = fp32_us(variants[k].engine);
    std::printf("%-28s %11.3f %10.1f %13.2fx %13.2fx\n", variants[k].name.c_str(), variants[k].bytes / 1e6, med,
                torch_fp32 > 0 ? torch_fp32 / med : 0.0, same / med);
    out.push_back({{"variant", variants[k].name}, {"engine", variants[k].engine},
                   {"precision", variants[k].precision}, {"us_per_step", med},
                   {"speedup_vs_fp32_torch", torch_fp32 > 0 ? torch_fp32 / med : 0.0},
                   {"speedup_vs_fp32_same_engine", same / med}, {"bytes", variants[k].bytes}});
  }
  if (!json_path.empty()) std::ofstream(json_path) << out.dump(2) << "\n";
  return 0;
}
