// Quantized linear kernels vs fp32 at::linear, side by side in one run, for drafter- and
// target-sized matrices at M = 1, 4, 16 rows of x (a draft step, a verification of a few
// tokens). Each round times every variant once, in turn, so a load change on the machine hits
// all of them alike; the table reports the median time per call over the rounds.
//
// "dequant+gemm" is the route QuantizedLinear takes at M >= DequantGemmMinRows() (qlinear.h).
//   quant_linear [--shapes 256x256,704x256,256x704,4096x256] [--m 1,4,16] [--rounds 15]
//                [--calls 200] [--threads 1] [--json FILE]
// A shape is OUTxIN (the weight [out, in]).
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <absl/strings/numbers.h>
#include <absl/strings/str_split.h>
#include <nlohmann/json.hpp>

#include "runtime/qlinear.h"
#include "bench/bench_util.h"

namespace {

using augur::bench::Clock;
using augur::QuantizedWeight;
using augur::QuantScheme;
using augur::qkernels::CpuKernel;

int Usage(const char* msg) {
  std::fprintf(stderr,
               "quant_linear: %s\nusage: quant_linear [--shapes OUTxIN,...] [--m 1,4,16] [--rounds N] [--calls N] "
               "[--threads N] [--json FILE]\n",
               msg);
  return 2;
}

using augur::bench::Median;

struct Variant {
  std::string name;
  std::function<at::Tensor(const at::Tensor&)> run;
};

}  // namespace

int main(int argc, char** argv) {
  std::string shapes_arg = "256x256,704x256,256x704,4096x256", m_arg = "1,4,16", json_path;
  int64_t rounds = 15, calls = 200, threads = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      Usage("quantized linear kernels vs fp32 at::linear");
      return 0;
    }
    if (i + 1 >= argc) return Usage(("missing value for " + a).c_str());
    const std::string v = argv[++i];
    bool ok = true;
    if (a == "--shapes") shapes_arg = v;
    else if (a == "--m") m_arg = v;
    else if (a == "--json") json_path = v;
    else if (a == "--rounds") ok = absl::SimpleAtoi(v, &rounds) && rounds >= 1;
    else if (a == "--calls") ok = absl::SimpleAtoi(v, &calls) && calls >= 1;
    else if (a == "--threads") ok = absl::SimpleAtoi(v, &threads) && threads >= 1;
    else return Usage(("unknown flag " + a).c_str());
    if (!ok) return Usage(("bad value for " + a + ": " + v).c_str());
  }
  std::vector<std::pair<int64_t, int64_t>> shapes;
  for (auto s : absl::StrSplit(shapes_arg, ',')) {
    std::vector<std::string> p = absl::StrSplit(s, 'x');
    int64_t o = 0, n = 0;
    if (p.size() != 2 || !absl::SimpleAtoi(p[0], &o) || !absl::SimpleAtoi(p[1], &n) || o < 1 || n < 1)
      return Usage(("bad shape " + std::string(s)).c_str());
    shapes.emplace_back(o, n);
  }
  std::vector<int64_t> ms;
  for (auto s : absl::StrSplit(m_arg, ',')) {
    int64_t m = 0;
    if (!absl::SimpleAtoi(s, &m) || m < 1) return Usage(("bad M " + std::string(s)).c_str());
    ms.push_back(m);
  }
  torch::set_num_threads(static_cast<int>(threads));
  torch::NoGradGuard no_grad;
  std::printf("quant_linear: threads %lld, %lld rounds x %lld calls, AVX2 kernels %s, AVX-512 VNNI kernels %s\n",
              (long long)threads, (long long)rounds, (long long)calls,
              augur::qkernels::Avx2Available() ? "on" : "off (scalar)",
              augur::qkernels::Avx512VnniAvailable() ? "on" : "off");
  std::printf("%-10s %3s %-22s %10s %8s\n", "shape", "M", "kernel", "us/call", "vs fp32");
  nlohmann::json out = nlohmann::json::array();
  for (const auto& [o, n] : shapes) {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(1);
    const at::Tensor w = at::randn({o, n}, gen, torch::kFloat32) * 0.05;
    const QuantizedWeight q8 = augur::QuantizeRtn(w, QuantScheme{8, 0});
    const QuantizedWeight q4 = augur::QuantizeRtn(w, QuantScheme{4, 32});
    const QuantizedWeight q4g128 = augur::QuantizeRtn(w, QuantScheme{4, 128});
    const at::Tensor none;
    std::vector<Variant> variants = {
        {"fp32 at::linear", [&](const at::Tensor& x) { return at::linear(x, w); }},
        {"int8 avx2-q8", [&](const at::Tensor& x) { return augur::QuantizedLinear(x, q8, none, CpuKernel::kAvx2Q8); }},
        {"int4-g32 avx2-q8", [&](const at::Tensor& x) { return augur::QuantizedLinear(x, q4, none, CpuKernel::kAvx2Q8); }},
        {"int4-g128 avx2-q8", [&](const at::Tensor& x) { return augur::QuantizedLinear(x, q4g128, none, CpuKernel::kAvx2Q8); }},
        {"int8 avx512-vnni", [&](const at::Tensor& x) { return augur::QuantizedLinear(x, q8, none, CpuKernel::kAvx512Vnni); }},
        {"int4-g32 avx512-vnni", [&](const at::Tensor& x) { return augur::QuantizedLinear(x, q4, none, CpuKernel::kAvx512Vnni); }},
        {"int4-g128 avx512-vnni", [&](const at::Tensor& x) { return augur::QuantizedLinear(x, q4g128, none, CpuKernel::kAvx512Vnni); }},
        {"int8 avx2", [&](const at::Tensor& x) { return augur::QuantizedLinear(x, q8, none, CpuKernel::kAvx2); }},
        {"int4-g32 avx2", [&](const at::Tensor& x) { return augur::QuantizedLinear(x, q4, none, CpuKernel::kAvx2); }},
        {"int4-g128 avx2", [&](const at::Tensor& x) { return augur::QuantizedLinear(x, q4g128, none, CpuKernel::kAvx2); }},
        {"int8 dequant+gemm", [&](const at::Tensor& x) { return augur::DequantGemmLinear(x, q8, none); }},
        {"int4-g32 dequant+gemm", [&](const at::Tensor& x) { return augur::DequantGemmLinear(x, q4, none); }},
        {"int4-g128 dequant+gemm", [&](const at::Tensor& x) { return augur::DequantGemmLinear(x, q4g128, none); }},
        {"int8 scalar", [&](const at::Tensor& x) { return augur::QuantizedLinear(x, q8, none, CpuKernel::kScalar); }},
        {"int4-g32 scalar", [&](const at::Tensor& x) { return augur::QuantizedLinear(x, q4, none, CpuKernel::kScalar); }},
    };
    if (!augur::qkernels::Avx512VnniAvailable())  // they would run avx2-q8 under another name
      variants.erase(std::remove_if(variants.begin(), variants.end(),
                                    [](const Variant& v) { return v.name.find("avx512") != std::string::npos; }),
                     variants.end());
    for (int64_t m : ms) {
      const at::Tensor x = at::randn({m, n}, gen, torch::kFloat32);
      std::vector<std::vector<double>> us(variants.size());
      for (auto& v : variants)
        for (int i = 0; i < 20; ++i) v.run(x);  // warm up caches and allocator
      for (int64_t r = 0; r < rounds; ++r)
        for (size_t k = 0; k < variants.size(); ++k) {
          const auto t0 = Clock::now();
          for (int64_t c = 0; c < calls; ++c) variants[k].run(x);
          us[k].push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count() / calls);
        }
      const double base = Median(us[0]);
      for (size_t k = 0; k < variants.size(); ++k) {
        const double med = Median(us[k]);
        std::printf("%-10s %3lld %-22s %10.2f %7.2fx\n", (std::to_string(o) + "x" + std::to_string(n)).c_str(),
                    (long long)m, variants[k].name.c_str(), med, base / med);
        out.push_back({{"out", o}, {"in", n}, {"m", m}, {"kernel", variants[k].name}, {"us_per_call", med},
                       {"speedup_vs_fp32", base / med}});
      }
    }
  }
  if (!json_path.empty()) std::ofstream(json_path) << out.dump(2) << "\n";
  return 0;
}
