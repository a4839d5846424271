// Test support for tests/python/test_interop_checkpoint.py (not a user tool):
//   ckpt_tool init --config JSON --seed S --out DIR [--dtype D] [--shard-bytes N]
//       random init (LlamaModel::init_weights) and SaveCheckpoint. JSON is a config.json
//       path or inline JSON text.
//   ckpt_tool logits --model DIR --ids 1,2,3 [--dtype D]
//       LoadCheckpoint and print {"shape": [T, V], "logits": [[...], ...]} (float32) to stdout.
#include <absl/strings/numbers.h>
#include <absl/strings/str_split.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "core/checkpoint.h"
#include "core/config.h"

namespace augur {
namespace {

using json = nlohmann::json;

int Fail(const std::string& msg) {
  std::fprintf(stderr, "ckpt_tool: %s\n", msg.c_str());
  return 1;
}

// --key value pairs after the subcommand.
absl::StatusOr<std::map<std::string, std::string>> ParseFlags(int argc, char** argv) {
  std::map<std::string, std::string> flags;
  for (int i = 2; i < argc; i += 2) {
    std::string key = argv[i];
    if (key.rfind("--", 0) != 0 || i + 1 >= argc)
      return absl::InvalidArgumentError(absl::StrCat("expected --flag value, got '", key, "'"));
    flags[key.substr(2)] = argv[i + 1];
  }
  return flags;
}

absl::StatusOr<torch::Dtype> Dtype(const std::string& name) {
  if (name == "float32") return torch::kFloat32;
  if (name == "float16") return torch::kFloat16;
  if (name == "bfloat16") return torch::kBFloat16;
  return absl::InvalidArgumentError(absl::StrCat("unknown dtype '", name, "'"));
}

int Init(std::map<std::string, std::string>& f) {
  if (!f.count("config") || !f.count("out")) return Fail("init needs --config and --out");
  absl::StatusOr<ModelConfig> cfg;
  const std::string& spec = f["config"];
  if (!spec.empty() && spec[0] == '{') {
    json j = json::parse(spec, nullptr, false);
    if (j.is_discarded()) return Fail("--config is not valid JSON");
    cfg = ModelConfig::FromJson(j, "--config");
  } else {
    cfg = ModelConfig::FromFile(spec);
  }
  if (!cfg.ok()) return Fail(std::string(cfg.status().message()));
  uint64_t seed = 0;
  if (f.count("seed") && !absl::SimpleAtoi(f["seed"], &seed)) return Fail("bad --seed");
  SaveOptions opts;
  if (f.count("dtype")) opts.dtype = f["dtype"];
  if (f.count("shard-bytes") && !absl::SimpleAtoi(f["shard-bytes"], &opts.max_shard_bytes))
    return Fail("bad --shard-bytes");
  LlamaModel model(*cfg);
  model->init_weights(seed);
  AugurMeta meta;
  meta.command_line = "ckpt_tool init";
  absl::Status st = SaveCheckpoint(model, meta, f["out"], opts);
  if (!st.ok()) return Fail(std::string(st.message()));
  return 0;
}

int Logits(std::map<std::string, std::string>& f) {
  if (!f.count("model") || !f.count("ids")) return Fail("logits needs --model and --ids");
  std::vector<int64_t> ids;
  for (absl::string_view s : absl::StrSplit(f["ids"], ',')) {
    int64_t id;
    if (!absl::SimpleAtoi(s, &id)) return Fail(absl::StrCat("bad id '", s, "' in --ids"));
    ids.push_back(id);
  }
  auto dtype = Dtype(f.count("dtype") ? f["dtype"] : "float32");
  if (!dtype.ok()) return Fail(std::string(dtype.status().message()));
  auto ck = LoadCheckpoint(f["model"], torch::kCPU, *dtype);
  if (!ck.ok()) return Fail(std::string(ck.status().message()));
  torch::NoGradGuard no_grad;
  at::Tensor logits = ck->model->logits(torch::tensor(ids, torch::kInt64).unsqueeze(0))[0].contiguous();
  const int64_t t = logits.size(0), v = logits.size(1);
  const float* p = logits.data_ptr<float>();
  // %.9g round-trips float32 exactly.
  std::string out = absl::StrCat("{\"shape\": [", t, ", ", v, "], \"logits\": [");
  char buf[32];
  for (int64_t i = 0; i < t; ++i) {
    out += i ? ",\n[" : "[";
    for (int64_t j = 0; j < v; ++j) {
      std::snprintf(buf, sizeof(buf), j ? ",%.9g" : "%.9g", p[i * v + j]);
      out += buf;
    }
    out += "]";
  }
  out += "]}\n";
  std::fputs(out.c_str(), stdout);
  return 0;
}

}  // namespace
}  // namespace augur

int main(int argc, char** argv) {
  if (argc < 2) return augur::Fail("usage: ckpt_tool init|logits --flag value ...");
  auto flags = augur::ParseFlags(argc, argv);
  if (!flags.ok()) return augur::Fail(std::string(flags.status().message()));
  std::string cmd = argv[1];
  if (cmd == "init") return augur::Init(*flags);
  if (cmd == "logits") return augur::Logits(*flags);
  return augur::Fail(absl::StrCat("unknown subcommand '", cmd, "'"));
}
