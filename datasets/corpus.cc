#include "datasets/corpus.h"

#include <dirent.h>
#include <fnmatch.h>
#include <sys/stat.h>

#include <absl/strings/match.h>
#include <absl/strings/str_cat.h>
#include <absl/strings/str_join.h>
#include <absl/strings/str_split.h>
#include <absl/strings/strip.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>

namespace augur {
namespace {

bool IsJsonlName(const std::string& name) {
  return absl::EndsWith(name, ".jsonl") || absl::EndsWith(name, ".ndjson");
}

bool MatchesAny(const std::vector<std::string>& patterns, const std::string& name) {
  for (const auto& p : patterns) {
    if (!p.empty() && fnmatch(p.c_str(), name.c_str(), 0) == 0) return true;
  }
  return false;
}

absl::Status ReadWhole(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::PermissionDeniedError(
        absl::StrCat("corpus: ", path, ": cannot read (", std::strerror(errno), ")"));
  }
  in.seekg(0, std::ios::end);
  std::streamoff size = in.tellg();
  in.seekg(0, std::ios::beg);
  out->assign(size > 0 ? static_cast<size_t>(size) : 0, '\0');
  if (size > 0) in.read(out->data(), size);
  if (in.bad() || (size > 0 && in.gcount() != size)) {
    return absl::DataLossError(absl::StrCat("corpus: ", path, ": read failed (", std::strerror(errno), ")"));
  }
  return absl::OkStatus();
}

uint64_t Mix64(uint64_t x) {  // splitmix64 finalizer
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

struct PathInfo {
  bool exists = false, is_dir = false, is_file = false, is_link = false;
  int64_t size = 0;
};

PathInfo Stat(const std::string& path) {
  PathInfo info;
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return info;
  info.exists = true;
  info.is_link = S_ISLNK(st.st_mode);
  if (info.is_link && ::stat(path.c_str(), &st) != 0) return PathInfo{};  // dangling link
  info.is_dir = S_ISDIR(st.st_mode);
  info.is_file = S_ISREG(st.st_mode);
  info.size = static_cast<int64_t>(st.st_size);
  return info;
}

std::string BaseName(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  size_t slash = p.rfind('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

// POSIX rather than std::filesystem: libtorch exports its own older copy of the
// std::filesystem symbols, and mixing it with this compiler's inline code crashes.
// Symlinked directories are not followed (no cycles); symlinked files are.
absl::Status Walk(const std::string& dir, const std::string& rel, const CorpusOptions& options,
                  const std::vector<std::string>& globs, std::vector<CorpusFile>* found) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    return absl::PermissionDeniedError(absl::StrCat("corpus: ", dir, ": cannot list (", std::strerror(errno), ")"));
  }
  std::vector<std::string> names;
  while (const dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(std::move(name));
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  for (const std::string& name : names) {
    std::string path = absl::StrCat(dir, dir.back() == '/' ? "" : "/", name);
    std::string key = rel.empty() ? name : absl::StrCat(rel, "/", name);
    PathInfo info = Stat(path);
    if (info.is_dir) {
      if (info.is_link || MatchesAny(options.exclude_dirs, name)) continue;
      AUGUR_RETURN_IF_ERROR(Walk(path, key, options, globs, found));
    } else if (info.is_file && MatchesAny(globs, name)) {
      found->push_back(CorpusFile{path, key, info.size, IsJsonlName(name)});
    }
  }
  return absl::OkStatus();
}

absl::Status ExpandDirectory(const std::string& dir, const CorpusOptions& options,
                             const std::vector<std::string>& globs, std::vector<CorpusFile>* out) {
  std::vector<CorpusFile> found;
  AUGUR_RETURN_IF_ERROR(Walk(dir, "", options, globs, &found));
  if (found.empty()) {
    return absl::NotFoundError(absl::StrCat("corpus: ", dir, ": no files matching '", options.glob,
                                            "' (change it with --glob)"));
  }
  std::sort(found.begin(), found.end(),
            [](const CorpusFile& a, const CorpusFile& b) { return a.split_key < b.split_key; });
  for (auto& f : found) out->push_back(std::move(f));
  return absl::OkStatus();
}

absl::Status ForEachJsonl(const CorpusFile& file, const std::string& field,
                          const std::function<absl::Status(const Document&)>& fn,
                          const std::function<void(int64_t)>& progress) {
  std::ifstream in(file.path, std::ios::binary);
  if (!in) {
    return absl::PermissionDeniedError(
        absl::StrCat("corpus: ", file.path, ": cannot read (", std::strerror(errno), ")"));
  }
  std::string line;
  int64_t lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (progress && lineno % 4096 == 0) progress(static_cast<int64_t>(in.tellg()));
    if (absl::StripAsciiWhitespace(line).empty()) continue;
    nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) {
      return absl::InvalidArgumentError(absl::StrCat("corpus: ", file.path, ":", lineno, ": invalid JSON"));
    }
    if (!j.is_object() || !j.contains(field)) {
      return absl::InvalidArgumentError(absl::StrCat("corpus: ", file.path, ":", lineno, ": no \"", field,
                                                     "\" field (choose it with --jsonl-field)"));
    }
    const auto& value = j[field];
    if (!value.is_string()) {
      return absl::InvalidArgumentError(absl::StrCat("corpus: ", file.path, ":", lineno, ": field \"",
                                                     field, "\" is not a string"));
    }
    const std::string& text = value.get_ref<const std::string&>();
    if (text.empty()) continue;
    Document doc{text, absl::StrCat(file.path, ":", lineno), absl::StrCat(file.split_key, ":", lineno)};
    AUGUR_RETURN_IF_ERROR(fn(doc));
  }
  if (in.bad()) {
    return absl::DataLossError(absl::StrCat("corpus: ", file.path, ":", lineno + 1, ": read failed"));
  }
  return absl::OkStatus();
}

}  // namespace

bool IsValidSplit(std::string_view split_key, double valid_fraction) {
  uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a 64
  for (unsigned char c : split_key) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  double u = static_cast<double>(Mix64(h) >> 11) * 0x1.0p-53;
  return u < valid_fraction;
}

absl::StatusOr<Corpus> Corpus::Open(const CorpusOptions& options) {
  if (options.inputs.empty()) return absl::InvalidArgumentError("corpus: no inputs given");
  Corpus c;
  c.options_ = options;
  std::vector<std::string> globs = absl::StrSplit(options.glob, ',', absl::SkipWhitespace());
  for (auto& g : globs) g = std::string(absl::StripAsciiWhitespace(g));
  if (globs.empty()) return absl::InvalidArgumentError("corpus: --glob is empty");
  for (const std::string& input : options.inputs) {
    PathInfo info = Stat(input);
    if (!info.exists) {
      return absl::NotFoundError(absl::StrCat("corpus: ", input, ": no such file or directory"));
    }
    size_t before = c.files_.size();
    if (info.is_dir) {
      AUGUR_RETURN_IF_ERROR(ExpandDirectory(input, options, globs, &c.files_));
      c.sources_.push_back(absl::StrCat(input, " (", c.files_.size() - before, " files)"));
    } else {
      std::string name = BaseName(input);
      c.files_.push_back(CorpusFile{input, name, info.size, IsJsonlName(name)});
      c.sources_.push_back(input);
    }
  }
  for (const auto& f : c.files_) c.total_bytes_ += f.bytes;
  if (!options.label.empty()) {
    c.sources_ = {absl::StrCat(options.label, " (", c.files_.size(), " files)")};
  }
  return c;
}

std::vector<std::string> Corpus::sources() const { return sources_; }

std::string Corpus::describe() const {
  return options_.label.empty() ? absl::StrJoin(options_.inputs, ", ") : options_.label;
}

bool Corpus::has_jsonl() const {
  return std::any_of(files_.begin(), files_.end(), [](const CorpusFile& f) { return f.jsonl; });
}

int64_t Corpus::progress_total() const {
  return has_jsonl() ? total_bytes_ >> 20 : static_cast<int64_t>(files_.size());
}

absl::Status Corpus::ForEach(const std::function<absl::Status(const Document&)>& fn,
                             const ProgressFn& progress) const {
  int64_t consumed = 0, files_done = 0;
  std::string text;
  for (const CorpusFile& file : files_) {
    if (file.jsonl) {
      std::function<void(int64_t)> within;
      if (progress) within = [&](int64_t pos) { progress(files_done, consumed + pos); };
      AUGUR_RETURN_IF_ERROR(ForEachJsonl(file, options_.jsonl_field, fn, within));
    } else {
      AUGUR_RETURN_IF_ERROR(ReadWhole(file.path, &text));
      if (!text.empty()) {
        Document doc{text, file.path, file.split_key};
        AUGUR_RETURN_IF_ERROR(fn(doc));
      }
    }
    consumed += file.bytes;
    ++files_done;
    if (progress) progress(files_done, consumed);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> StdlibDir() {
  if (const char* env = std::getenv("AUGUR_STDLIB_DIR"); env != nullptr && *env != '\0') {
    if (!Stat(env).is_dir) {
      return absl::NotFoundError(absl::StrCat("corpus: AUGUR_STDLIB_DIR=", env, ": not a directory"));
    }
    return std::string(env);
  }
  static std::mutex mu;
  static std::string cached;
  std::lock_guard<std::mutex> lock(mu);
  if (!cached.empty()) return cached;
  FILE* pipe = popen("python3 -c \"import sysconfig;print(sysconfig.get_paths()['stdlib'])\" 2>/dev/null", "r");
  std::string out;
  if (pipe != nullptr) {
    char buf[4096];
    while (fgets(buf, sizeof(buf), pipe) != nullptr) out += buf;
    int rc = pclose(pipe);
    if (rc != 0) out.clear();
  }
  out = std::string(absl::StripAsciiWhitespace(out));
  if (out.empty() || !Stat(out).is_dir) {
    return absl::NotFoundError(
        "corpus: default corpus: cannot find the Python standard library (python3 missing?); "
        "pass --input PATH or set AUGUR_STDLIB_DIR");
  }
  cached = out;
  return cached;
}

absl::StatusOr<CorpusOptions> DefaultCorpusOptions() {
  AUGUR_ASSIGN_OR_RETURN(std::string dir, StdlibDir());
  CorpusOptions o;
  o.inputs = {dir};
  o.glob = "*.py";
  o.exclude_dirs = {".*", "__pycache__", "test", "tests", "idle_test", "site-packages", "dist-packages"};
  o.label = absl::StrCat("python-stdlib:", dir);
  return o;
}

}  // namespace augur
