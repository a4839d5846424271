// augur export: write a checkpoint as a GGUF file for llama.cpp (quantize/gguf_export.h), or an
// eagle-drafter as the EAGLE-3 directory serving engines load (quantize/eagle3_export.h).
#include <cstdio>
#include <map>
#include <string>

#include "cli/args.h"
#include "cli/commands.h"
#include "quantize/eagle3_export.h"
#include "quantize/gguf_export.h"

namespace augur::cli {
namespace {

int RunExportEagle3(const Args& args) {
  const std::string cmd = "export";
  auto summary = eagle3::Export(args.str("model"), args.str("out"));
  if (!summary.ok()) return Fail(cmd, summary.status());
  if (!args.on("quiet"))
    std::fprintf(stderr, "augur export: wrote %s: EAGLE-3 drafter, %zu tensors, %.2f MiB%s\n", args.str("out").c_str(),
                 summary->tensors.size(), summary->safetensors_bytes / 1048576.0,
                 summary->source_quantization.empty()
                     ? ""
                     : absl::StrCat(" (", summary->source_quantization, " weights dequantized to float32)").c_str());
  return 0;
}

}  // namespace

int RunExport(int argc, char** argv, int first) {
  const std::string cmd = "export";
  Args args("export",
            "augur export: write a float checkpoint as a GGUF v3 file that llama.cpp loads, or an eagle-drafter as "
            "the EAGLE-3 checkpoint vLLM, SGLang and llama.cpp's converter load.",
            "augur export --model DIR --format gguf --type f32|f16|q8_0|q4_0 --out FILE.gguf\n"
            "  augur export --model EAGLE_DIR --format eagle3 --out DIR");
  args.flag("model", "DIR",
            "gguf: float checkpoint directory (HF layout with a tokenizer); eagle3: an eagle-drafter checkpoint "
            "(augur distill eagle; a quantized one is dequantized to float32)",
            "", /*required=*/true)
      .flag("format", "gguf|eagle3", "output format", "gguf")
      .flag("type", "f32|f16|q8_0|q4_0",
            "gguf: type of the weight matrices: f32, f16, q8_0 (8-bit blocks of 32, ~1/4 of f32), q4_0 (4-bit blocks of "
            "32, ~1/7 of f32)",
            "f16")
      .flag("out", "FILE.gguf|DIR",
            "gguf: output file; eagle3: output directory (staged next to it, then renamed; an earlier EAGLE-3 "
            "export there is replaced)",
            "", /*required=*/true)
      .flag("name", "TEXT", "general.name in the file (default: the checkpoint directory's name)")
      .toggle("quiet", "print only errors")
      .note("Norm weights and biases stay f32. A matrix whose rows are not a multiple of 32 cannot take q8_0/q4_0 "
            "and is written as f16 (as llama.cpp's converter does); if no matrix can take it, the export fails. "
            "Llama and Mistral (full-context window) checkpoints export as llama.cpp's 'llama' architecture, with "
            "q_proj/k_proj rows reordered for its rotary layout. Layout: docs/FORMATS.md, 'GGUF export'. "
            "eagle3: config.json (LlamaForCausalLMEagle3), model.safetensors (fc, midlayer.*, norm, lm_head, d2t, t2d; "
            "float32, Hugging Face q/k order, no embedding: engines use the target's) and augur.json; convert for "
            "llama.cpp with convert_hf_to_gguf.py DIR --target-model-dir TARGET. Layout: docs/FORMATS.md, "
            "'EAGLE-3 export'.");
  if (auto st = args.parse(argc, argv, first); !st.ok()) return Fail(cmd, st);
  if (args.help_requested()) {
    std::printf("%s", args.help().c_str());
    return 0;
  }
  if (args.str("format") == "eagle3") {
    if (args.has("type") || args.has("name"))
      return Fail(cmd, absl::InvalidArgumentError("--type and --name apply to --format gguf only"));
    return RunExportEagle3(args);
  }
  if (args.str("format") != "gguf")
    return Fail(cmd, absl::InvalidArgumentError(absl::StrCat("--format ", args.str("format"),
                                                             ": unknown export format (gguf or eagle3)")));
  auto type = gguf::GgmlTypeFromName(args.str("type"));
  if (!type.ok()) return Fail(cmd, absl::InvalidArgumentError(absl::StrCat("--type: ", type.status().message())));

  gguf::ExportOptions options;
  options.type = *type;
  options.name = args.str("name");
  auto summary = gguf::ExportGguf(args.str("model"), args.str("out"), options);
  if (!summary.ok()) return Fail(cmd, summary.status());

  if (!args.on("quiet")) {
    std::map<std::string, int> counts;
    for (const auto& t : summary->tensors) {
      ++counts[gguf::GgmlTypeName(t.type)];
      if (t.fell_back)
        std::fprintf(stderr, "augur export: %s (%s, rows of %lld) cannot take %s; written as f16\n", t.name.c_str(),
                     t.source.c_str(), static_cast<long long>(t.shape.back()), args.str("type").c_str());
    }
    std::string types;
    for (const auto& [name, n] : counts) types += absl::StrCat(types.empty() ? "" : ", ", n, " ", name);
    std::fprintf(stderr, "augur export: wrote %s: %zu tensors (%s), %.2f MiB, general.file_type %u\n",
                 args.str("out").c_str(), summary->tensors.size(), types.c_str(), summary->file_bytes / 1048576.0,
                 summary->file_type);
  }
  return 0;
}

}  // namespace augur::cli
