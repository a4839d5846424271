// Corpus inputs -> a stream of documents. An input is a file (one document), a directory
// (searched recursively for files matching the glob, each one document) or a JSONL file
// (*.jsonl / *.ndjson: one line = one document, its text in a named field). Without
// inputs, the embedded default corpus is the Python standard library installed on the
// machine (nothing of it is copied into the repository).
//
// Train/valid split: per document, by a hash of its split key (the path relative to the
// input directory, or the file name for a file input; "+:LINE" for JSONL lines), so the
// split is deterministic and does not depend on the order or the machine.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace augur {

struct CorpusOptions {
  std::vector<std::string> inputs;
  // Comma-separated fnmatch patterns for files found in directories.
  std::string glob = "*.py";
  std::string jsonl_field = "text";
  // Directory names (fnmatch patterns) skipped while searching directories.
  std::vector<std::string> exclude_dirs = {".*", "__pycache__"};
  // Shown in messages and store attributes instead of the inputs (default corpus).
  std::string label;
};

struct CorpusFile {
  std::string path;        // as opened
  std::string split_key;   // relative path (directory input) or file name
  int64_t bytes = 0;
  bool jsonl = false;
};

struct Document {
  std::string_view text;
  std::string name;       // "path" or "path:LINE"
  std::string split_key;  // hashed for the split
};

class Corpus {
 public:
  // Expands the inputs; fails on a missing or unreadable input, or a directory with no
  // matching file. Empty `inputs` is an error here (use DefaultCorpusOptions()).
  static absl::StatusOr<Corpus> Open(const CorpusOptions& options);

  const std::vector<CorpusFile>& files() const { return files_; }
  int64_t total_bytes() const { return total_bytes_; }
  // One line per input for provenance ("python-stdlib:/usr/lib/python3.11 (734 files)").
  std::vector<std::string> sources() const;
  std::string describe() const;  // for messages: the inputs, comma-separated

  // Calls fn for each document in order (files sorted within each directory; empty
  // documents skipped). Stops at the first error: an unreadable file, or a JSONL line
  // that is not valid JSON or lacks the field (named as file:line).
  // `progress`, if set, is called with (files done, bytes read) after each file and every
  // few thousand JSONL lines.
  using ProgressFn = std::function<void(int64_t files, int64_t bytes)>;
  absl::Status ForEach(const std::function<absl::Status(const Document&)>& fn,
                       const ProgressFn& progress = nullptr) const;
  bool has_jsonl() const;
  // A progress bar over the corpus counts files, or MB when it holds JSONL (few, big files).
  int64_t progress_total() const;
  const char* progress_unit() const { return has_jsonl() ? "MB" : "files"; }
  int64_t progress_value(int64_t files, int64_t bytes) const { return has_jsonl() ? bytes >> 20 : files; }

 private:
  CorpusOptions options_;
  std::vector<CorpusFile> files_;
  std::vector<std::string> sources_;
  int64_t total_bytes_ = 0;
};

// The default corpus: *.py under python3's sysconfig stdlib path (or $AUGUR_STDLIB_DIR),
// without test/, tests/, idle_test/, site-packages/, dist-packages/ and __pycache__/.
absl::StatusOr<CorpusOptions> DefaultCorpusOptions();
// Directory of the default corpus (env override, else asks python3).
absl::StatusOr<std::string> StdlibDir();

// True when the document with this split key belongs to the validation split.
bool IsValidSplit(std::string_view split_key, double valid_fraction);

}  // namespace augur
