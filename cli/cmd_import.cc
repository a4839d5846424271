// augur import: a GGUF file as a Hugging Face / augur checkpoint directory
// (quantize/gguf_import.h).
#include <cstdio>
#include <string>

#include "cli/args.h"
#include "cli/commands.h"
#include "quantize/gguf_import.h"

namespace augur::cli {

int RunImport(int argc, char** argv, int first) {
  const std::string cmd = "import";
  Args args("import",
            "augur import: turn a GGUF file (as llama.cpp users download it) into a checkpoint directory that every "
            "augur command and transformers' from_pretrained load.",
            "augur import --gguf FILE.gguf --out DIR [--dtype f32|bf16|f16]");
  args.flag("gguf", "FILE.gguf", "the GGUF file (v2 or v3; architectures llama, mistral, qwen2)", "",
            /*required=*/true)
      .flag("out", "DIR", "output checkpoint directory; must not exist (or be empty)", "", /*required=*/true)
      .flag("dtype", "f32|bf16|f16", "dtype of the tensors written to model.safetensors", "f32")
      .toggle("quiet", "print only errors")
      .note("Every tensor is dequantized (F32, F16, BF16, Q8_0, Q4_0/1, Q5_0/1, Q2_K..Q6_K) to float32 and stored "
            "as --dtype; llama-arch q/k rows are put back in Hugging Face's rotary order. The tokenizer "
            "(tokenizer.ggml.*, byte-level BPE) becomes tokenizer.json, its chat template goes into "
            "tokenizer_config.json, and augur.json records the source file and its sha256. The directory is "
            "written under a temporary name and renamed into place at the end.");
  if (auto st = args.parse(argc, argv, first); !st.ok()) return Fail(cmd, st);
  if (args.help_requested()) {
    std::printf("%s", args.help().c_str());
    return 0;
  }
  gguf::ImportOptions options;
  options.dtype = args.str("dtype");
  options.command_line = args.command_line();
  options.progress = !args.on("quiet");
  auto summary = gguf::ImportGguf(args.str("gguf"), args.str("out"), options);
  if (!summary.ok()) return Fail(cmd, summary.status());
  if (!args.on("quiet")) {
    std::string types;
    for (const auto& [name, n] : summary->types) types += absl::StrCat(types.empty() ? "" : ", ", n, " ", name);
    std::fprintf(stderr, "augur import: wrote %s: %s (gguf '%s'), %lld tensors (%s), %.1fM parameters, sha256 %s\n",
                 args.str("out").c_str(), summary->architecture.c_str(), summary->gguf_architecture.c_str(),
                 static_cast<long long>(summary->num_tensors), types.c_str(), summary->num_parameters / 1e6,
                 summary->sha256.c_str());
  }
  return 0;
}

}  // namespace augur::cli
