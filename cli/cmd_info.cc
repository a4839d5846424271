// augur info: what a checkpoint holds, and what this build and machine can run.
#include <torch/cuda.h>
#include <torch/version.h>

#include <cstdio>

#include "cli/args.h"
#include "cli/commands.h"
#include "core/config.h"
#include "core/device.h"
#include "core/fs.h"

namespace augur::cli {

int RunInfo(int argc, char** argv, int first) {
  Args args("info", "augur info: describe a model config/checkpoint and this machine's devices.",
            "augur info [--model DIR|PRESET|config.json] [--cuda-self-test]");
  args.flag("model", "DIR", "checkpoint directory, preset name or config.json to describe")
      .toggle("cuda-self-test", "run augur's own CUDA kernel once and check its result");
  if (auto st = args.parse(argc, argv, first); !st.ok()) return Fail("info", st);
  if (args.help_requested()) {
    std::printf("%s", args.help().c_str());
    return 0;
  }
  std::printf("augur %s, LibTorch %s, augur CUDA sources %s\n", AUGUR_VERSION_STRING, TORCH_VERSION,
              CudaCompiled() ? "compiled" : "not compiled");
  std::printf("LibTorch sees %d CUDA device(s)\n", static_cast<int>(torch::cuda::device_count()));
  for (const auto& g : CudaDevices())
    std::printf("  gpu %d: %s, %.1f GiB, sm_%d%d\n", g.index, g.name.c_str(), g.memory_bytes / 1073741824.0,
                g.major, g.minor);
  if (args.on("cuda-self-test")) {
    absl::Status st = CudaSelfTest();
    std::printf("cuda self-test: %s\n", st.ok() ? "ok" : std::string(st.message()).c_str());
    if (!st.ok() && !absl::IsUnavailable(st)) return 1;
  }
  if (args.has("model")) {
    auto cfg = ResolveModelConfig(args.str("model"));
    if (!cfg.ok()) return Fail("info", cfg.status());
    const ModelConfig& c = *cfg;
    std::printf("model %s: %s, vocab %lld, hidden %lld, layers %lld, heads %lld/%lld kv, head_dim %lld, ffn %lld, "
                "tied %s, %.2fM parameters\n",
                args.str("model").c_str(), c.architecture.c_str(), (long long)c.vocab_size, (long long)c.hidden_size,
                (long long)c.num_hidden_layers, (long long)c.num_attention_heads, (long long)c.num_key_value_heads,
                (long long)c.head_dim_or_default(), (long long)c.intermediate_size,
                c.tie_word_embeddings ? "yes" : "no", c.num_parameters() / 1e6);
    const std::string meta = args.str("model") + "/augur.json";
    if (FileExists(meta)) {
      auto text = ReadFile(meta);
      if (text.ok()) std::printf("augur.json: %s\n", text->c_str());
    }
  }
  return 0;
}

}  // namespace augur::cli
