// augur export: write a checkpoint as a GGUF file for llama.cpp (quantize/gguf_export.h).
#include <cstdio>
#include <map>
#include <string>

#include "cli/args.h"
#include "cli/commands.h"
#include "quantize/gguf_export.h"

namespace augur::cli {

int RunExport(int argc, char** argv, int first) {
  const std::string cmd = "export";
  Args args("export", "augur export: write a float checkpoint as a GGUF v3 file that llama.cpp loads.",
            "augur export --model DIR --format gguf --type f32|f16|q8_0|q4_0 --out FILE.gguf");
  args.flag("model", "DIR", "float checkpoint directory (HF layout with tokenizer.model); not a quantized one", "",
            /*required=*/true)
      .flag("format", "gguf", "output format (only gguf)", "gguf")
      .flag("type", "f32|f16|q8_0|q4_0",
            "type of the weight matrices: f32, f16, q8_0 (8-bit blocks of 32, ~1/4 of f32), q4_0 (4-bit blocks of "
            "32, ~1/7 of f32)",
            "f16")
      .flag("out", "FILE.gguf", "output file (written to a temporary name, then renamed)", "", /*required=*/true)
      .flag("name", "TEXT", "general.name in the file (default: the checkpoint directory's name)")
      .toggle("quiet", "print only errors")
      .note("Norm weights and biases stay f32. A matrix whose rows are not a multiple of 32 cannot take q8_0/q4_0 "
            "and is written as f16 (as llama.cpp's converter does); if no matrix can take it, the export fails. "
            "Llama and Mistral (full-context window) checkpoints export as llama.cpp's 'llama' architecture, with "
            "q_proj/k_proj rows reordered for its rotary layout. Layout: docs/FORMATS.md, 'GGUF export'.");
  if (auto st = args.parse(argc, argv, first); !st.ok()) return Fail(cmd, st);
  if (args.help_requested()) {
    std::printf("%s", args.help().c_str());
    return 0;
  }
  if (args.str("format") != "gguf")
    return Fail(cmd, absl::InvalidArgumentError(absl::StrCat("--format ", args.str("format"),
                                                             ": unknown export format (only gguf)")));
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
