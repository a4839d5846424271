#include "datasets/token_store.h"

#include <absl/strings/str_cat.h>
#include <absl/strings/strip.h>

#include "core/tokenizer.h"

namespace augur {
namespace {

constexpr size_t kChunkCacheBytes = size_t{32} << 20;

absl::Status Invalid(const std::string& path, const std::string& what) {
  return absl::FailedPreconditionError(absl::StrCat("token store: ", path, ": ", what));
}

// Re-labels an h5 helper error as a token-store error ("hdf5: x.h5:/a: msg" -> "token
// store: x.h5:/a: msg").
absl::Status Relabel(const absl::Status& st) {
  absl::string_view msg = st.message();
  absl::ConsumePrefix(&msg, "hdf5: ");
  return absl::Status(st.code(), absl::StrCat("token store: ", msg));
}

std::string Short(const std::string& fingerprint) { return fingerprint.substr(0, 12); }

}  // namespace

const char* SplitName(Split split) { return split == Split::kTrain ? "train" : "valid"; }

absl::StatusOr<Split> ParseSplit(const std::string& name) {
  if (name == "train") return Split::kTrain;
  if (name == "valid" || name == "validation") return Split::kValid;
  return absl::InvalidArgumentError(absl::StrCat("unknown split '", name, "' (train or valid)"));
}

absl::StatusOr<std::shared_ptr<const TokenStore>> TokenStore::Open(const std::string& path) {
  auto store = std::make_shared<TokenStore>();
  store->path_ = path;
  auto file = h5::File::Open(path);
  if (!file.ok()) {
    if (absl::IsNotFound(file.status())) {
      return absl::NotFoundError(absl::StrCat("token store: ", path,
                                              ": no such file (build one with `augur data build`)"));
    }
    return Relabel(file.status());
  }
  store->file_ = std::move(file).value();
  const hid_t root = store->file_.id();

  auto format = h5::ReadAttrString(root, "format");
  if (!format.ok()) return Invalid(path, "not an augur token store (no 'format' attribute)");
  if (*format != kTokenStoreFormat) {
    return Invalid(path, absl::StrCat("is a '", *format, "' file, not a ", kTokenStoreFormat));
  }
  TokenStoreInfo& m = store->info_;
  auto version = h5::ReadAttrInt(root, "format_version");
  if (!version.ok()) return Invalid(path, "missing attribute 'format_version'");
  m.format_version = *version;
  if (m.format_version < 1 || m.format_version > kTokenStoreVersion) {
    return Invalid(path, absl::StrCat("format version ", m.format_version, " is not supported (this augur reads version ",
                                      kTokenStoreVersion, "); rebuild it with `augur data build`"));
  }
  auto read_int = [&](const char* name, int64_t* out) -> absl::Status {
    auto v = h5::ReadAttrInt(root, name);
    if (!v.ok()) return Invalid(path, absl::StrCat("missing or bad attribute '", name, "'"));
    *out = *v;
    return absl::OkStatus();
  };
  auto fp = h5::ReadAttrString(root, "tokenizer_fingerprint");
  if (!fp.ok()) return Invalid(path, "missing attribute 'tokenizer_fingerprint'");
  m.tokenizer_fingerprint = *fp;
  AUGUR_RETURN_IF_ERROR(read_int("vocab_size", &m.vocab_size));
  AUGUR_RETURN_IF_ERROR(read_int("bos_id", &m.bos_id));
  AUGUR_RETURN_IF_ERROR(read_int("eos_id", &m.eos_id));
  AUGUR_RETURN_IF_ERROR(read_int("num_docs", &m.num_docs));
  AUGUR_RETURN_IF_ERROR(read_int("num_tokens", &m.num_tokens));
  for (int s = 0; s < 2; ++s) {
    const char* name = SplitName(static_cast<Split>(s));
    AUGUR_RETURN_IF_ERROR(read_int(absl::StrCat("num_", name, "_docs").c_str(), &m.split_docs[s]));
    AUGUR_RETURN_IF_ERROR(read_int(absl::StrCat("num_", name, "_tokens").c_str(), &m.split_tokens[s]));
  }
  if (auto v = h5::ReadAttrString(root, "sources"); v.ok()) m.sources = *v;
  if (auto v = h5::ReadAttrDouble(root, "valid_fraction"); v.ok()) m.valid_fraction = *v;
  if (auto v = h5::ReadAttrString(root, "created_by"); v.ok()) m.created_by = *v;
  if (auto v = h5::ReadAttrString(root, "tokenizer_path"); v.ok()) m.tokenizer_path = *v;

  auto tokens = h5::Dataset::Open(root, "tokens", kChunkCacheBytes);
  if (!tokens.ok()) return Relabel(tokens.status());
  store->tokens_ = std::move(tokens).value();
  const h5::DType tt = store->tokens_.dtype();
  if (store->tokens_.shape().size() != 1 || (tt != h5::DType::kU16 && tt != h5::DType::kU32)) {
    return Invalid(path, "/tokens must be a 1-D uint16 or uint32 dataset");
  }
  if (store->tokens_.rows() != m.num_tokens) {
    return Invalid(path, absl::StrCat("/tokens has ", store->tokens_.rows(), " tokens but num_tokens says ", m.num_tokens));
  }
  auto offsets_ds = h5::Dataset::Open(root, "doc_offsets");
  if (!offsets_ds.ok()) return Relabel(offsets_ds.status());
  auto offsets = offsets_ds->ReadAll<int64_t>();
  if (!offsets.ok()) return Relabel(offsets.status());
  store->offsets_ = std::move(offsets).value();
  const auto& off = store->offsets_;
  if (static_cast<int64_t>(off.size()) != m.num_docs + 1 || off.front() != 0 || off.back() != m.num_tokens) {
    return Invalid(path, absl::StrCat("/doc_offsets must hold num_docs+1 = ", m.num_docs + 1,
                                      " offsets from 0 to num_tokens = ", m.num_tokens));
  }
  for (size_t i = 1; i < off.size(); ++i) {
    if (off[i] < off[i - 1]) return Invalid(path, absl::StrCat("/doc_offsets decreases at document ", i - 1));
  }
  for (int s = 0; s < 2; ++s) {
    const char* name = SplitName(static_cast<Split>(s));
    auto ds = h5::Dataset::Open(root, absl::StrCat("split/", name));
    if (!ds.ok()) return Relabel(ds.status());
    auto docs = ds->ReadAll<int64_t>();
    if (!docs.ok()) return Relabel(docs.status());
    int64_t tokens_in_split = 0;
    for (size_t i = 0; i < docs->size(); ++i) {
      int64_t d = (*docs)[i];
      if (d < 0 || d >= m.num_docs || (i > 0 && d <= (*docs)[i - 1])) {
        return Invalid(path, absl::StrCat("/split/", name, " must be ascending document indices in [0, ", m.num_docs, ")"));
      }
      tokens_in_split += off[d + 1] - off[d];
    }
    if (static_cast<int64_t>(docs->size()) != m.split_docs[s] || tokens_in_split != m.split_tokens[s]) {
      return Invalid(path, absl::StrCat("/split/", name, " disagrees with num_", name, "_docs/num_", name, "_tokens"));
    }
    store->split_[s] = std::move(docs).value();
  }
  if (h5::Exists(root, "doc_names")) {
    auto names = h5::Dataset::Open(root, "doc_names");
    if (names.ok() && names->rows() == m.num_docs) store->names_ = std::move(names).value();
  }
  return std::shared_ptr<const TokenStore>(std::move(store));
}

absl::Status TokenStore::Check(const Tokenizer& tokenizer) const {
  if (tokenizer.fingerprint() != info_.tokenizer_fingerprint || tokenizer.vocab_size() != info_.vocab_size) {
    return absl::FailedPreconditionError(absl::StrCat(
        "token store: ", path_, ": made with tokenizer ", Short(info_.tokenizer_fingerprint), " (vocab ",
        info_.vocab_size, ") but ", tokenizer.source(), " is tokenizer ", Short(tokenizer.fingerprint()),
        " (vocab ", tokenizer.vocab_size(), "); rebuild the store with `augur data build --tokenizer` or use the matching tokenizer"));
  }
  return absl::OkStatus();
}

absl::Status TokenStore::ReadTokens(int64_t begin, int64_t count, int64_t* out) const {
  absl::Status st = tokens_.ReadRows(begin, count, h5::DType::kI64, out);
  return st.ok() ? st : Relabel(st);
}

absl::Status TokenStore::ReadTokens(int64_t begin, int64_t count, int32_t* out) const {
  absl::Status st = tokens_.ReadRows(begin, count, h5::DType::kI32, out);
  return st.ok() ? st : Relabel(st);
}

absl::StatusOr<std::vector<int32_t>> TokenStore::DocumentTokens(int64_t doc) const {
  if (doc < 0 || doc >= num_docs()) {
    return absl::OutOfRangeError(absl::StrCat("token store: ", path_, ": document ", doc,
                                              " outside [0, ", num_docs(), ")"));
  }
  std::vector<int32_t> out(static_cast<size_t>(doc_length(doc)));
  AUGUR_RETURN_IF_ERROR(ReadTokens(offsets_[doc], doc_length(doc), out.data()));
  return out;
}

absl::StatusOr<std::string> TokenStore::DocumentName(int64_t doc) const {
  if (doc < 0 || doc >= num_docs()) {
    return absl::OutOfRangeError(absl::StrCat("token store: ", path_, ": document ", doc,
                                              " outside [0, ", num_docs(), ")"));
  }
  if (!names_.is_open()) return absl::StrCat("doc", doc);
  AUGUR_ASSIGN_OR_RETURN(auto names, names_.ReadStrings(doc, 1));
  return names[0];
}

}  // namespace augur
