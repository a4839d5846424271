// The augur binary: subcommand dispatch only. Each subcommand parses its own flags
// (cli/args.h) and calls into the module libraries.
#include <c10/util/Exception.h>

#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "cli/commands.h"

namespace {

struct Command {
  std::vector<std::string> words;  // e.g. {"data", "build"}
  int (*run)(int, char**, int);
  const char* summary;
};

const std::vector<Command>& Commands() {
  using namespace augur::cli;
  static const std::vector<Command> table = {
      {{"data", "tokenizer"}, RunDataTokenizer, "train a SentencePiece tokenizer on a corpus"},
      {{"data", "build"}, RunDataBuild, "tokenize a corpus into an HDF5 token store"},
      {{"data", "encode"}, RunDataEncode, "print the token ids of a text"},
      {{"data", "datastore"}, RunDatastoreBuild, "index a token store for the retrieval (ngram) drafter"},
      {{"import"}, RunImport, "import a GGUF file as a checkpoint directory (dequantized, tokenizer.json)"},
      {{"train"}, RunTrain, "train a model (target or drafter) on a token store"},
      {{"generate"}, RunGenerate, "generate text from a checkpoint"},
      {{"distill", "gen"}, RunDistillGen, "score prompts with a target into a teacher store"},
      {{"distill", "ar"}, RunDistillAr, "distill a target into a compact autoregressive drafter"},
      {{"distill", "nat"}, RunDistillNat, "distill a target into a parallel (NAT) drafter"},
      {{"distill", "eagle"}, RunDistillEagle, "distill a target into an EAGLE-3 feature drafter (one layer on its hidden states)"},
      {{"quantize"}, RunQuantize, "quantize a drafter's weights to int8/int4 (RTN or GPTQ)"},
      {{"export"}, RunExport, "export a checkpoint as GGUF (f32/f16/q8_0/q4_0)"},
      {{"eval"}, RunEval, "measure drafters against a target: acceptance, tau, speedup, report"},
      {{"bench"}, RunBench, "sweep gamma and drafter sets with the speculative engine"},
      {{"info"}, RunInfo, "describe a checkpoint, a token store, or this machine's devices"},
  };
  return table;
}

void PrintHelp() {
  std::printf(
      "augur: draft models for speculative decoding (distill, quantize, evaluate).\n\n"
      "usage: augur <command> [flags]   (augur <command> --help for its flags)\n\ncommands:\n");
  for (const auto& c : Commands()) {
    std::string name;
    for (const auto& w : c.words) name += (name.empty() ? "" : " ") + w;
    std::printf("  %-18s %s\n", name.c_str(), c.summary);
  }
  std::printf("\nThe whole pipeline on the embedded default corpus: scripts/quickstart.sh\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "help")) {
    PrintHelp();
    return argc < 2 ? 1 : 0;
  }
  if (!std::strcmp(argv[1], "--version")) {
    std::printf("augur %s\n", AUGUR_VERSION_STRING);
    return 0;
  }
  // Longest match of the subcommand words.
  const Command* best = nullptr;
  for (const auto& c : Commands()) {
    bool match = static_cast<int>(c.words.size()) < argc;
    for (size_t i = 0; match && i < c.words.size(); ++i) match = c.words[i] == argv[1 + i];
    if (match && (best == nullptr || c.words.size() > best->words.size())) best = &c;
  }
  if (best == nullptr) {
    std::string cmd = argv[1];
    if (argc > 2 && argv[2][0] != '-') cmd += std::string(" ") + argv[2];
    std::fprintf(stderr, "augur: unknown command '%s' (run augur --help for the list)\n", cmd.c_str());
    return 2;
  }
  try {
    return best->run(argc, argv, 1 + static_cast<int>(best->words.size()));
  } catch (const c10::Error& e) {
    // Torch errors carry a backtrace after the first line; the user needs the first line.
    std::string msg = e.what_without_backtrace();
    std::fprintf(stderr, "augur: %s\n", msg.substr(0, msg.find('\n')).c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "augur: %s\n", e.what());
  }
  return 1;
}
