// The verify-cost curve of the native engine's linears: the ms of one SmolLM2-135M-shaped
// stack (per layer q, k, v, o, gate, up, down; 30 layers; then the 49152 x 576 head) run on
// M = 1..16 rows of x, per weight scheme and thread count, and the ratio to M = 1. A
// speculative verification forward of T tokens runs these linears at M = T, so the ratio is
// what verifying T tokens costs in decode steps (attention and norms not included).
//
// Weights are random codes of the real shapes, each layer its own (the stack streams as many
// bytes from DRAM as the model does); the kernels are the ones the native engine calls
// (Int8GemmCpu / Int4GemmCpu with kAuto, F32GemmCpu). Every round times each (scheme, M)
// once, in turn, so a load change on the machine hits all of them alike; the table reports
// medians.
//   verify_cost [--m 1,2,4,5,8,12,16] [--threads 1,2] [--schemes fp32,int8,int4-g32,int4-g128]
//               [--layers 30] [--rounds 9] [--by-shape] [--cpu-time] [--json FILE]
// --cpu-time times by the calling thread's CPU clock instead of the wall clock (with --threads 1
// only): on a shared machine the time the thread spends descheduled drops out, though not the
// cache and memory traffic of the other processes.
#include <ATen/Parallel.h>

#include <time.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <absl/strings/numbers.h>
#include <absl/strings/str_split.h>
#include <nlohmann/json.hpp>

#include "bench/bench_util.h"
#include "runtime/kernels/kernels_cpu.h"
#include "runtime/kernels/kernels_f32.h"
#include "runtime/scheme.h"

namespace {

using augur::bench::Clock;
using augur::bench::Median;
namespace qk = augur::qkernels;
namespace fk = augur::fkernels;

int Usage(const char* msg) {
  std::fprintf(stderr,
               "verify_cost: %s\nusage: verify_cost [--m 1,2,4,...] [--threads 1,2] "
               "[--schemes fp32,int8,int4-g32,int4-g128] [--layers N] [--rounds N] [--by-shape] [--json FILE]\n",
               msg);
  return 2;
}

struct Shape {
  const char* name;
  int64_t out, in;
};
// SmolLM2-135M: hidden 576, 9 heads / 3 kv heads of 64, MLP 1536, vocab 49152 (tied head).
constexpr Shape kLayer[] = {{"q", 576, 576},     {"k", 192, 576},  {"v", 192, 576},   {"o", 576, 576},
                            {"gate", 1536, 576}, {"up", 1536, 576}, {"down", 576, 1536}};
constexpr Shape kHead = {"head", 49152, 576};

// One linear's weights in one scheme (random codes: the timing does not depend on them).
struct Linear {
  Shape shape;
  std::vector<float> f32, scales;
  std::vector<int8_t> q8;
  std::vector<uint8_t> q4, zeros;
  int64_t in_padded = 0, group = 0;
  int64_t bytes() const {
    return static_cast<int64_t>(f32.size() * 4 + scales.size() * 4 + q8.size() + q4.size() + zeros.size());
  }
};

Linear Make(const Shape& s, const std::string& scheme, std::mt19937& rng) {
  Linear l{s, {}, {}, {}, {}, {}, 0, 0};
  std::uniform_int_distribution<int> byte(0, 255);
  std::normal_distribution<float> nd(0.f, 0.05f);
  if (scheme == "fp32") {
    l.f32.resize(s.out * s.in);
    for (auto& v : l.f32) v = nd(rng);
  } else if (scheme == "int8") {
    l.q8.resize(s.out * s.in);
    for (auto& v : l.q8) v = static_cast<int8_t>(byte(rng) % 255 - 127);
    l.scales.assign(s.out, 0.01f);
  } else {
    l.group = augur::ParseScheme(scheme).value().group;
    l.in_padded = (s.in + l.group - 1) / l.group * l.group;
    l.q4.resize(s.out * l.in_padded / 2);
    for (auto& v : l.q4) v = static_cast<uint8_t>(byte(rng));
    l.scales.assign(s.out * (l.in_padded / l.group), 0.01f);
    l.zeros.assign(s.out * (l.in_padded / l.group), 8);
  }
  return l;
}

void Run(const Linear& l, const float* x, int64_t m, float* y) {
  const Shape& s = l.shape;
  if (!l.f32.empty()) fk::F32GemmCpu(x, m, l.f32.data(), s.out, s.in, nullptr, y);
  else if (!l.q8.empty()) qk::Int8GemmCpu(x, m, {l.q8.data(), l.scales.data(), s.out, s.in}, nullptr, y);
  else
    qk::Int4GemmCpu(x, m, {l.q4.data(), l.scales.data(), l.zeros.data(), s.out, s.in, l.in_padded, l.group}, nullptr,
                    y);
}

}  // namespace

int main(int argc, char** argv) {
  std::string m_arg = "1,2,4,5,8,12,16", threads_arg = "1,2", schemes_arg = "fp32,int8,int4-g32,int4-g128", json_path;
  int64_t layers = 30, rounds = 9;
  bool by_shape = false, cpu_time = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      Usage("the cost of a SmolLM2-shaped linear stack at M rows vs one row");
      return 0;
    }
    if (a == "--by-shape" || a == "--cpu-time") {
      (a == "--by-shape" ? by_shape : cpu_time) = true;
      continue;
    }
    if (i + 1 >= argc) return Usage(("missing value for " + a).c_str());
    const std::string v = argv[++i];
    bool ok = true;
    if (a == "--m") m_arg = v;
    else if (a == "--threads") threads_arg = v;
    else if (a == "--schemes") schemes_arg = v;
    else if (a == "--json") json_path = v;
    else if (a == "--layers") ok = absl::SimpleAtoi(v, &layers) && layers >= 1;
    else if (a == "--rounds") ok = absl::SimpleAtoi(v, &rounds) && rounds >= 1;
    else return Usage(("unknown flag " + a).c_str());
    if (!ok) return Usage(("bad value for " + a + ": " + v).c_str());
  }
  auto ints = [](const std::string& arg, std::vector<int64_t>* out) {
    for (auto s : absl::StrSplit(arg, ',')) {
      int64_t v = 0;
      if (!absl::SimpleAtoi(s, &v) || v < 1) return false;
      out->push_back(v);
    }
    return true;
  };
  std::vector<int64_t> ms, thread_counts;
  if (!ints(m_arg, &ms)) return Usage(("bad --m " + m_arg).c_str());
  if (!ints(threads_arg, &thread_counts)) return Usage(("bad --threads " + threads_arg).c_str());
  std::vector<std::string> schemes = absl::StrSplit(schemes_arg, ',');
  for (const auto& s : schemes)
    if (s != "fp32" && !augur::ParseScheme(s).ok()) return Usage(("unknown scheme " + s).c_str());
  if (cpu_time && (thread_counts.size() != 1 || thread_counts[0] != 1))
    return Usage("--cpu-time needs --threads 1 (it reads the calling thread's clock)");
  int64_t max_m = 1;
  for (int64_t m : ms) max_m = std::max(max_m, m);

  std::mt19937 rng(1);
  std::map<std::string, std::vector<Linear>> stacks;  // scheme -> layers * 7 + head
  std::map<std::string, int64_t> stack_bytes;
  for (const auto& scheme : schemes) {
    auto& st = stacks[scheme];
    for (int64_t l = 0; l < layers; ++l)
      for (const Shape& s : kLayer) st.push_back(Make(s, scheme, rng));
    st.push_back(Make(kHead, scheme, rng));
    for (const auto& l : st) stack_bytes[scheme] += l.bytes();
  }
  std::normal_distribution<float> nd;
  std::vector<float> x576(max_m * 576), x1536(max_m * 1536), y(max_m * kHead.out);
  for (auto* v : {&x576, &x1536})
    for (auto& f : *v) f = nd(rng);
  auto now_ms = [cpu_time] {
    if (!cpu_time) return std::chrono::duration<double, std::milli>(Clock::now().time_since_epoch()).count();
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
  };
  // One pass over the stack at M rows; adds each shape's ms to by_kind.
  auto pass = [&](const std::vector<Linear>& st, int64_t m, std::map<std::string, double>* by_kind) {
    const double t0 = now_ms();
    for (const auto& l : st) {
      const double a = now_ms();
      Run(l, l.shape.in == 576 ? x576.data() : x1536.data(), m, y.data());
      if (by_kind) (*by_kind)[l.shape.name] += now_ms() - a;
    }
    return now_ms() - t0;
  };

  std::printf("verify_cost: %lld layers x 7 linears + head %lldx%lld; quantized kernel %s, fp32 %s; %lld rounds; %s\n",
              (long long)layers, (long long)kHead.out, (long long)kHead.in,
              qk::CpuKernelName(qk::ResolveCpuKernel(qk::CpuKernel::kAuto)),
              fk::F32KernelName(fk::ResolveF32Kernel(fk::F32Kernel::kAuto)), (long long)rounds,
              cpu_time ? "thread CPU time" : "wall time");
  nlohmann::json out = nlohmann::json::array();
  for (int64_t threads : thread_counts) {
    at::set_num_threads(static_cast<int>(threads));
    // [scheme][m] -> ms per round; per-shape ms of the last rounds' sum
    std::map<std::string, std::vector<std::vector<double>>> ms_of;
    std::map<std::string, std::vector<std::map<std::string, double>>> kinds;
    for (const auto& scheme : schemes) {
      ms_of[scheme].assign(ms.size(), {});
      kinds[scheme].assign(ms.size(), {});
      for (int64_t m : ms) pass(stacks[scheme], m, nullptr);  // warm up
    }
    // Each scheme's timed passes follow an untimed one over the same stack, as a decode
    // step follows the previous one: whatever L3 keeps of a stack then helps every M alike
    // (otherwise the first M timed after another scheme's stack would pay for it alone).
    for (int64_t r = 0; r < rounds; ++r)
      for (const auto& scheme : schemes) {
        pass(stacks[scheme], 1, nullptr);
        for (size_t k = 0; k < ms.size(); ++k) ms_of[scheme][k].push_back(pass(stacks[scheme], ms[k], &kinds[scheme][k]));
      }
    std::printf("\nthreads %lld          ", (long long)threads);
    for (int64_t m : ms) std::printf(" %7s", ("M=" + std::to_string(m)).c_str());
    std::printf("\n");
    for (const auto& scheme : schemes) {
      std::vector<double> med;
      for (auto& v : ms_of[scheme]) med.push_back(Median(v));
      std::printf("%-10s ms         ", scheme.c_str());
      for (double v : med) std::printf(" %7.2f", v);
      std::printf("   (M=1: %.1f GB/s)\n", stack_bytes[scheme] / (med[0] * 1e6));
      std::printf("%-10s x M=1      ", "");
      for (double v : med) std::printf(" %7.2f", v / med[0]);
      std::printf("\n");
      if (by_shape) {
        for (const char* kind : {"q", "k", "v", "o", "gate", "up", "down", "head"}) {
          std::printf("  %-8s x M=1      ", kind);
          for (size_t k = 0; k < ms.size(); ++k) std::printf(" %7.2f", kinds[scheme][k][kind] / kinds[scheme][0][kind]);
          std::printf("   (M=1: %.3f ms)\n", kinds[scheme][0][kind] / rounds);
        }
      }
      for (size_t k = 0; k < ms.size(); ++k)
        out.push_back({{"scheme", scheme}, {"threads", threads}, {"m", ms[k]}, {"ms", med[k]},
                       {"ratio_to_m1", med[k] / med[0]}});
    }
  }
  if (!json_path.empty()) std::ofstream(json_path) << out.dump(2) << "\n";
  return 0;
}
