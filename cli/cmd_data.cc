// augur data tokenizer | build | encode: corpus -> tokenizer -> HDF5 token store.
#include <absl/strings/str_format.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <thread>

#include "cli/args.h"
#include "cli/commands.h"
#include "core/fs.h"
#include "core/tokenizer.h"
#include "datasets/build_store.h"
#include "datasets/corpus.h"
#include "datasets/token_store.h"
#include "datasets/tokenizer_train.h"

namespace augur::cli {
namespace {

constexpr char kInputsNote[] =
    "Inputs: a file is one document; a directory is searched recursively for files matching --glob\n"
    "(hidden directories and __pycache__ skipped), each one document; a *.jsonl / *.ndjson file holds\n"
    "one document per line, its text in --jsonl-field. Without --input: the embedded default corpus,\n"
    "the Python standard library of this machine's python3 (or $AUGUR_STDLIB_DIR), without tests.\n"
    "The validation split takes each document whose split key (path relative to the input directory,\n"
    "or file name; JSONL adds :LINE) hashes below --valid-fraction: deterministic and order-free.";

void CorpusFlags(Args& args) {
  args.flag("input", "PATH", "file, directory or JSONL file (default: the Python standard library)", "", false, true)
      .flag("glob", "PATTERN", "file pattern(s) for directories, comma-separated", "*.py")
      .flag("jsonl-field", "NAME", "JSONL field holding the text", "text")
      .flag("valid-fraction", "F", "fraction of documents held out for validation", "0.05");
}

absl::StatusOr<Corpus> OpenCorpus(const Args& args) {
  CorpusOptions options;
  if (args.has("input")) {
    options.inputs = args.list("input");
  } else {
    AUGUR_ASSIGN_OR_RETURN(options, DefaultCorpusOptions());
  }
  if (args.has("glob")) options.glob = args.str("glob");
  options.jsonl_field = args.str("jsonl-field");
  return Corpus::Open(options);
}

absl::StatusOr<double> ValidFraction(const Args& args) {
  AUGUR_ASSIGN_OR_RETURN(double f, args.f64("valid-fraction"));
  if (!(f >= 0 && f < 1)) {
    return absl::InvalidArgumentError(absl::StrCat("--valid-fraction ", f, " outside [0, 1)"));
  }
  return f;
}

std::string Millions(int64_t n) { return absl::StrFormat("%.2fM", n / 1e6); }

}  // namespace

int RunDataTokenizer(int argc, char** argv, int first) {
  const char* cmd = "data tokenizer";
  Args args(cmd,
            "augur data tokenizer: train a SentencePiece BPE tokenizer for source code. It keeps text\n"
            "verbatim (decode(encode(x)) == x: identity normalization, whitespace and indentation kept,\n"
            "byte fallback for rare characters); ids unk=0 <s>=1 </s>=2 <pad>=3 <mask>=4.",
            "augur data tokenizer [--input PATH...] [--vocab-size N] --out DIR");
  CorpusFlags(args);
  args.flag("vocab-size", "N", "vocabulary size", "8192")
      .flag("out", "DIR", "output directory: tokenizer.model, tokenizer_config.json", "", true)
      .flag("max-train-mb", "MB", "sample the training text down to about this much", "24")
      .flag("threads", "N", "SentencePiece trainer threads (0 = all cores)", "0")
      .note(kInputsNote)
      .note("Validation documents are left out of tokenizer training. Output: DIR/tokenizer.model,\n"
            "DIR/tokenizer_config.json (transformers: AutoTokenizer.from_pretrained(DIR) gives the same\n"
            "ids), DIR/augur_tokenizer.json (provenance).");
  if (auto st = args.parse(argc, argv, first); !st.ok()) return Fail(cmd, st);
  if (args.help_requested()) {
    std::printf("%s", args.help().c_str());
    return 0;
  }
  TokenizerTrainOptions options;
  auto vocab = args.i64("vocab-size");
  if (!vocab.ok()) return Fail(cmd, vocab.status());
  options.vocab_size = static_cast<int>(*vocab);
  auto mb = args.f64("max-train-mb");
  if (!mb.ok()) return Fail(cmd, mb.status());
  if (*mb <= 0) return Fail(cmd, absl::InvalidArgumentError("--max-train-mb must be positive"));
  options.max_train_bytes = static_cast<int64_t>(*mb * 1048576.0);
  auto threads = args.i64("threads");
  if (!threads.ok()) return Fail(cmd, threads.status());
  options.num_threads = *threads > 0 ? static_cast<int>(*threads)
                                     : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  auto valid = ValidFraction(args);
  if (!valid.ok()) return Fail(cmd, valid.status());
  options.valid_fraction = *valid;
  options.command_line = args.command_line();
  auto corpus = OpenCorpus(args);
  if (!corpus.ok()) return Fail(cmd, corpus.status());
  auto summary = TrainTokenizer(*corpus, options, args.str("out"));
  if (!summary.ok()) return Fail(cmd, summary.status());
  const auto& s = *summary;
  std::printf("wrote %s: vocab %d, fingerprint %s\n", s.model_path.c_str(), s.vocab_size,
              s.fingerprint.substr(0, 16).c_str());
  std::printf("trained on %lld documents (%.1f MB used of %.1f MB) in %.1f s (reading %.1f s); "
              "round trip exact on %lld/%lld samples\n",
              static_cast<long long>(s.docs), s.bytes_used / 1048576.0, s.bytes_seen / 1048576.0,
              s.train_seconds, s.read_seconds, static_cast<long long>(s.roundtrip_checked - s.roundtrip_failed),
              static_cast<long long>(s.roundtrip_checked));
  if (s.roundtrip_failed > 0) {
    std::fprintf(stderr, "augur %s: warning: %lld samples did not round-trip exactly (invalid UTF-8 in the input?)\n",
                 cmd, static_cast<long long>(s.roundtrip_failed));
  }
  return 0;
}

int RunDataBuild(int argc, char** argv, int first) {
  const char* cmd = "data build";
  Args args(cmd,
            "augur data build: tokenize a corpus into an HDF5 token store (each document stored as\n"
            "<s> + ids + </s>; layout in docs/FORMATS.md).",
            "augur data build [--input PATH...] --tokenizer DIR --out FILE.h5 [--valid-fraction F]");
  CorpusFlags(args);
  args.flag("tokenizer", "DIR", "tokenizer directory (or .model file) from `augur data tokenizer`", "", true)
      .flag("out", "FILE.h5", "token store to write (atomically)", "", true)
      .flag("threads", "N", "encoder threads (0 = all cores)", "0")
      .note(kInputsNote);
  if (auto st = args.parse(argc, argv, first); !st.ok()) return Fail(cmd, st);
  if (args.help_requested()) {
    std::printf("%s", args.help().c_str());
    return 0;
  }
  auto valid = ValidFraction(args);
  if (!valid.ok()) return Fail(cmd, valid.status());
  auto tokenizer = Tokenizer::Load(args.str("tokenizer"));
  if (!tokenizer.ok()) return Fail(cmd, tokenizer.status());
  auto corpus = OpenCorpus(args);
  if (!corpus.ok()) return Fail(cmd, corpus.status());
  BuildStoreOptions options;
  options.valid_fraction = *valid;
  auto threads = args.i64("threads");
  if (!threads.ok()) return Fail(cmd, threads.status());
  options.num_threads = static_cast<int>(*threads);
  options.created_by = absl::StrCat("augur ", AUGUR_VERSION_STRING, ": ", args.command_line());
  auto summary = BuildTokenStore(*corpus, *tokenizer, args.str("out"), options);
  if (!summary.ok()) return Fail(cmd, summary.status());
  const auto& s = *summary;
  const int tr = static_cast<int>(Split::kTrain), va = static_cast<int>(Split::kValid);
  std::printf("wrote %s: %lld documents, %s tokens (%.2f bytes/token) in %.1f s\n", args.str("out").c_str(),
              static_cast<long long>(s.docs), Millions(s.tokens).c_str(),
              s.tokens > 0 ? static_cast<double>(s.bytes) / s.tokens : 0.0, s.seconds);
  std::printf("  train: %lld documents, %s tokens\n  valid: %lld documents, %s tokens\n",
              static_cast<long long>(s.split_docs[tr]), Millions(s.split_tokens[tr]).c_str(),
              static_cast<long long>(s.split_docs[va]), Millions(s.split_tokens[va]).c_str());
  if (s.split_docs[va] == 0 && *valid > 0) {
    std::fprintf(stderr, "augur %s: warning: no document fell into the valid split (raise --valid-fraction)\n", cmd);
  }
  return 0;
}

int RunDataEncode(int argc, char** argv, int first) {
  const char* cmd = "data encode";
  Args args(cmd, "augur data encode: print the token ids of a text as a JSON array (no <s>/</s> unless asked).",
            "augur data encode --tokenizer DIR (--text TEXT | --file PATH) [--pieces] [--bos] [--eos]");
  args.flag("tokenizer", "DIR", "tokenizer directory or .model file", "", true)
      .flag("text", "TEXT", "text to encode (use --text=... for text starting with --)")
      .flag("file", "PATH", "encode the exact bytes of this file instead")
      .toggle("pieces", "print the pieces instead of the ids")
      .toggle("bos", "prepend <s>")
      .toggle("eos", "append </s>");
  if (auto st = args.parse(argc, argv, first); !st.ok()) return Fail(cmd, st);
  if (args.help_requested()) {
    std::printf("%s", args.help().c_str());
    return 0;
  }
  if (args.has("text") == args.has("file")) {
    return Fail(cmd, absl::InvalidArgumentError("give exactly one of --text TEXT or --file PATH"));
  }
  auto tokenizer = Tokenizer::Load(args.str("tokenizer"));
  if (!tokenizer.ok()) return Fail(cmd, tokenizer.status());
  std::string text = args.str("text");
  if (args.has("file")) {
    auto bytes = ReadFile(args.str("file"));
    if (!bytes.ok()) return Fail(cmd, bytes.status());
    text = *bytes;
  }
  std::vector<int32_t> ids;
  if (args.on("bos")) ids.push_back(tokenizer->bos_id());
  std::vector<int32_t> body = tokenizer->Encode(text);
  ids.insert(ids.end(), body.begin(), body.end());
  if (args.on("eos")) ids.push_back(tokenizer->eos_id());
  nlohmann::json out = nlohmann::json::array();
  for (int32_t id : ids) {
    if (args.on("pieces")) out.push_back(tokenizer->IdToPiece(id));
    else out.push_back(id);
  }
  // Pieces may hold byte sequences that are not UTF-8 on their own; replace rather than throw.
  std::printf("%s\n", out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  return 0;
}

}  // namespace augur::cli
