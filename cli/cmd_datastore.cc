// augur data datastore: a token store's split -> the retrieval drafter's suffix-array
// datastore (eval/ngram_index.h; layout in docs/FORMATS.md "N-gram datastore").
#include <chrono>
#include <cstdio>

#include "cli/args.h"
#include "cli/commands.h"
#include "eval/ngram_index.h"

namespace augur::cli {

int RunDatastoreBuild(int argc, char** argv, int first) {
  const char* cmd = "data datastore";
  Args args(cmd,
            "augur data datastore: index a token store's documents for the retrieval drafter\n"
            "(--drafter ngram:FILE.h5): the tokens concatenated in document order and their suffix\n"
            "array, so every occurrence of the context's longest matching suffix is found by binary\n"
            "search and the drafter proposes what most often followed it.",
            "augur data datastore --store FILE.h5 --out FILE.h5 [--split train] [--max-tokens N]");
  args.flag("store", "FILE.h5", "token store from `augur data build`", "", true)
      .flag("out", "FILE.h5", "datastore to write (atomically)", "", true)
      .flag("split", "NAME", "documents to index: train or valid (keep valid for evaluation prompts)", "train")
      .flag("max-tokens", "N", "index at most the first N tokens of the split (0 = all)", "0")
      .note("Memory: about 32 bytes per token while building (tokens, suffix array, ranks, sort keys).");
  if (auto st = args.parse(argc, argv, first); !st.ok()) return Fail(cmd, st);
  if (args.help_requested()) {
    std::printf("%s", args.help().c_str());
    return 0;
  }
  NgramBuildOptions options;
  options.split = args.str("split");
  auto max_tokens = args.i64("max-tokens");
  if (!max_tokens.ok()) return Fail(cmd, max_tokens.status());
  if (*max_tokens < 0) return Fail(cmd, absl::InvalidArgumentError("--max-tokens must be >= 0"));
  options.max_tokens = *max_tokens;
  const auto t0 = std::chrono::steady_clock::now();
  int64_t docs = 0;
  auto index = BuildNgramIndex(args.str("store"), options, &docs);
  if (!index.ok()) return Fail(cmd, index.status());
  const std::string source = absl::StrCat(args.str("store"), " split ", options.split);
  if (auto st = index->Save(args.str("out"), source, absl::StrCat("augur ", AUGUR_VERSION_STRING, ": ", args.command_line()));
      !st.ok())
    return Fail(cmd, st);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("wrote %s: %lld tokens from %lld documents (%s split) in %.1f s\n", args.str("out").c_str(),
              static_cast<long long>(index->size()), static_cast<long long>(docs), options.split.c_str(), s);
  return 0;
}

}  // namespace augur::cli
