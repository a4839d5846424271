#include "datasets/teacher_store.h"

#include <absl/strings/str_cat.h>
#include <absl/strings/str_format.h>
#include <absl/strings/match.h>
#include <absl/strings/strip.h>
#include <c10/util/Half.h>

#include <cmath>
#include <cstdio>
#include <mutex>
#include <unordered_set>

#include "core/fs.h"
#include "core/h5.h"

namespace augur {
namespace {

constexpr size_t kChunkCacheBytes = size_t{32} << 20;
constexpr int64_t kPositionChunk = 1024;  // rows per chunk of the per-position datasets
constexpr int64_t kSequenceChunk = 4096;  // rows per chunk of the per-sequence datasets
constexpr int kFinalDeflate = 1;          // the merged file: shuffle + deflate 1
constexpr int kPartDeflate = 0;           // segments are temporary: write them fast

absl::Status Invalid(const std::string& path, const std::string& what) {
  return absl::FailedPreconditionError(absl::StrCat("teacher store: ", path, ": ", what));
}

// "hdf5: x.h5:/a: msg" -> "teacher store: x.h5:/a: msg".
absl::Status Relabel(const absl::Status& st) {
  absl::string_view msg = st.message();
  if (absl::StartsWith(msg, "teacher store: ")) return st;
  absl::ConsumePrefix(&msg, "hdf5: ");
  return absl::Status(st.code(), absl::StrCat("teacher store: ", msg));
}

template <typename T>
absl::StatusOr<T> Relabeled(absl::StatusOr<T> v) {
  if (!v.ok()) return Relabel(v.status());
  return v;
}

std::string PartName(int64_t n) { return absl::StrFormat("part-%06d.h5", n); }

// The part number of "part-NNNNNN.h5", else -1 (temp files and strays are not parts).
int64_t PartNumber(const std::string& name) {
  if (name.size() != 14 || name.compare(0, 5, "part-") != 0 || name.compare(11, 3, ".h5") != 0) return -1;
  int64_t n = 0;
  for (size_t i = 5; i < 11; ++i) {
    if (name[i] < '0' || name[i] > '9') return -1;
    n = n * 10 + (name[i] - '0');
  }
  return n;
}

uint16_t ToHalf(float x) { return c10::Half(x).x; }
float FromHalf(uint16_t bits) { return static_cast<float>(c10::Half(bits, c10::Half::from_bits())); }

// The fields that define what a store holds; a resumed run must agree on all of them.
absl::Status CheckSameData(const TeacherStoreInfo& have, const TeacherStoreInfo& want, const std::string& where) {
  auto differ = [&](const std::string& field, const std::string& a, const std::string& b) {
    return absl::FailedPreconditionError(absl::StrCat(
        "teacher store: ", where, ": was written with ", field, " ", a, " but this run has ", b,
        "; rerun with the same settings, or delete it to start over"));
  };
  if (have.target_fingerprint != want.target_fingerprint)
    return differ("target fingerprint", have.target_fingerprint, want.target_fingerprint);
  if (have.tokenizer_fingerprint != want.tokenizer_fingerprint)
    return differ("tokenizer fingerprint", have.tokenizer_fingerprint, want.tokenizer_fingerprint);
  if (have.vocab_size != want.vocab_size)
    return differ("vocab size", absl::StrCat(have.vocab_size), absl::StrCat(want.vocab_size));
  if (have.top_k != want.top_k) return differ("top-k", absl::StrCat(have.top_k), absl::StrCat(want.top_k));
  if (have.temperature != want.temperature)
    return differ("temperature", absl::StrCat(have.temperature), absl::StrCat(want.temperature));
  if (have.mode != want.mode) return differ("mode", have.mode, want.mode);
  if (have.generation != want.generation)
    return differ("generation settings", "'" + have.generation + "'", "'" + want.generation + "'");
  if (have.source != want.source) return differ("source", "'" + have.source + "'", "'" + want.source + "'");
  return absl::OkStatus();
}

// Writes one complete store file: datasets grow as sequences are appended; Finish()
// writes the attributes and closes. The caller renames the file into place.
class FileBuilder {
 public:
  static absl::StatusOr<std::unique_ptr<FileBuilder>> Create(const std::string& path, int64_t k, int deflate) {
    auto b = std::make_unique<FileBuilder>();
    b->k_ = k;
    AUGUR_ASSIGN_OR_RETURN(b->file_, h5::File::Create(path));
    const hid_t root = b->file_.id();
    using h5::DType;
    AUGUR_ASSIGN_OR_RETURN(b->tokens_, h5::Dataset::CreateExtendible(root, "tokens", DType::kI32, {}, kPositionChunk * 8, deflate));
    AUGUR_ASSIGN_OR_RETURN(b->offsets_, h5::Dataset::CreateExtendible(root, "seq_offsets", DType::kU64, {}, kSequenceChunk, deflate));
    AUGUR_ASSIGN_OR_RETURN(b->prompt_len_, h5::Dataset::CreateExtendible(root, "prompt_len", DType::kI32, {}, kSequenceChunk, deflate));
    AUGUR_ASSIGN_OR_RETURN(b->prompt_index_, h5::Dataset::CreateExtendible(root, "prompt_index", DType::kI64, {}, kSequenceChunk, deflate));
    AUGUR_ASSIGN_OR_RETURN(b->ids_, h5::Dataset::CreateExtendible(root, "topk_ids", DType::kI32, {k}, kPositionChunk, deflate));
    AUGUR_ASSIGN_OR_RETURN(b->logprobs_, h5::Dataset::CreateExtendible(root, "topk_logprobs", DType::kF16, {k}, kPositionChunk, deflate));
    AUGUR_ASSIGN_OR_RETURN(b->rest_, h5::Dataset::CreateExtendible(root, "rest_logmass", DType::kF32, {}, kPositionChunk * 8, deflate));
    const uint64_t zero = 0;
    AUGUR_RETURN_IF_ERROR(b->offsets_.Append(&zero, 1, DType::kU64));
    return b;
  }

  // `seq` has been validated by the caller.
  absl::Status Append(const TeacherSequence& seq) {
    using h5::DType;
    const int64_t L = seq.length();
    half_.resize(seq.topk_logprobs.size());
    for (size_t i = 0; i < half_.size(); ++i) half_[i] = ToHalf(seq.topk_logprobs[i]);
    AUGUR_RETURN_IF_ERROR(tokens_.Append(seq.tokens.data(), L, DType::kI32));
    AUGUR_RETURN_IF_ERROR(ids_.Append(seq.topk_ids.data(), L, DType::kI32));
    AUGUR_RETURN_IF_ERROR(logprobs_.Append(half_.data(), L, DType::kF16));
    AUGUR_RETURN_IF_ERROR(rest_.Append(seq.rest_logmass.data(), L, DType::kF32));
    positions_ += L;
    const uint64_t end = static_cast<uint64_t>(positions_);
    const int32_t plen = static_cast<int32_t>(seq.prompt_len);
    AUGUR_RETURN_IF_ERROR(offsets_.Append(&end, 1, DType::kU64));
    AUGUR_RETURN_IF_ERROR(prompt_len_.Append(&plen, 1, DType::kI32));
    AUGUR_RETURN_IF_ERROR(prompt_index_.Append(&seq.prompt_index, 1, DType::kI64));
    ++sequences_;
    return absl::OkStatus();
  }

  absl::Status Finish(TeacherStoreInfo info) {
    info.num_sequences = sequences_;
    info.num_positions = positions_;
    const hid_t root = file_.id();
    AUGUR_RETURN_IF_ERROR(h5::WriteAttr(root, "format", kTeacherStoreFormat));
    AUGUR_RETURN_IF_ERROR(h5::WriteAttr(root, "format_version", kTeacherStoreVersion));
    AUGUR_RETURN_IF_ERROR(h5::WriteAttr(root, "target_fingerprint", info.target_fingerprint));
    AUGUR_RETURN_IF_ERROR(h5::WriteAttr(root, "tokenizer_fingerprint", info.tokenizer_fingerprint));
    AUGUR_RETURN_IF_ERROR(h5::WriteAttr(root, "vocab_size", info.vocab_size));
    AUGUR_RETURN_IF_ERROR(h5::WriteAttr(root, "top_k", info.top_k));
    AUGUR_RETURN_IF_ERROR(h5::WriteAttr(root, "temperature", info.temperature));
    AUGUR_RETURN_IF_ERROR(h5::WriteAttr(root, "mode", info.mode));
    AUGUR_RETURN_IF_ERROR(h5::WriteAttr(root, "generation", info.generation));
    AUGUR_RETURN_IF_ERROR(h5::WriteAttr(root, "source", info.source));
    AUGUR_RETURN_IF_ERROR(h5::WriteAttr(root, "created_by", info.created_by));
    AUGUR_RETURN_IF_ERROR(h5::WriteAttr(root, "num_sequences", info.num_sequences));
    AUGUR_RETURN_IF_ERROR(h5::WriteAttr(root, "num_positions", info.num_positions));
    for (h5::Dataset* d : {&tokens_, &offsets_, &prompt_len_, &prompt_index_, &ids_, &logprobs_, &rest_}) *d = h5::Dataset();
    return file_.Close();
  }

  int64_t sequences() const { return sequences_; }

 private:
  int64_t k_ = 0, sequences_ = 0, positions_ = 0;
  h5::File file_;
  h5::Dataset tokens_, offsets_, prompt_len_, prompt_index_, ids_, logprobs_, rest_;
  std::vector<uint16_t> half_;
};

}  // namespace

std::string TeacherPartsDir(const std::string& path) { return path + ".parts"; }

// ---- reading --------------------------------------------------------------------------

struct TeacherStore::Impl {
  h5::File file;
  h5::Dataset tokens, ids, logprobs, rest;
  std::vector<int64_t> offsets;  // S+1
  std::vector<int32_t> prompt_len;
  std::vector<int64_t> prompt_index;
  mutable std::mutex mu;  // the HDF5 library build is not thread-safe
};

TeacherStore::~TeacherStore() = default;

absl::StatusOr<std::shared_ptr<const TeacherStore>> TeacherStore::Open(const std::string& path) {
  std::shared_ptr<TeacherStore> store(new TeacherStore());
  store->path_ = path;
  store->impl_ = std::make_unique<Impl>();
  Impl& im = *store->impl_;
  auto file = h5::File::Open(path);
  if (!file.ok()) {
    if (absl::IsNotFound(file.status()))
      return absl::NotFoundError(
          absl::StrCat("teacher store: ", path, ": no such file (make one with `augur distill gen`)"));
    return Relabel(file.status());
  }
  im.file = std::move(file).value();
  const hid_t root = im.file.id();

  auto format = h5::ReadAttrString(root, "format");
  if (!format.ok()) return Invalid(path, "not an augur teacher store (no 'format' attribute)");
  if (*format != kTeacherStoreFormat)
    return Invalid(path, absl::StrCat("is a '", *format, "' file, not a ", kTeacherStoreFormat,
                                      " (make one with `augur distill gen`)"));
  TeacherStoreInfo& m = store->info_;
  auto read_int = [&](const char* name, int64_t* out) -> absl::Status {
    auto v = h5::ReadAttrInt(root, name);
    if (!v.ok()) return Invalid(path, absl::StrCat("missing or bad attribute '", name, "'"));
    *out = *v;
    return absl::OkStatus();
  };
  auto read_str = [&](const char* name, std::string* out) -> absl::Status {
    auto v = h5::ReadAttrString(root, name);
    if (!v.ok()) return Invalid(path, absl::StrCat("missing or bad attribute '", name, "'"));
    *out = *v;
    return absl::OkStatus();
  };
  AUGUR_RETURN_IF_ERROR(read_int("format_version", &m.format_version));
  if (m.format_version < 1 || m.format_version > kTeacherStoreVersion)
    return Invalid(path, absl::StrCat("format version ", m.format_version, " is not supported (this augur reads version ",
                                      kTeacherStoreVersion, "); regenerate it with `augur distill gen`"));
  AUGUR_RETURN_IF_ERROR(read_str("target_fingerprint", &m.target_fingerprint));
  AUGUR_RETURN_IF_ERROR(read_str("tokenizer_fingerprint", &m.tokenizer_fingerprint));
  AUGUR_RETURN_IF_ERROR(read_int("vocab_size", &m.vocab_size));
  AUGUR_RETURN_IF_ERROR(read_int("top_k", &m.top_k));
  auto temperature = h5::ReadAttrDouble(root, "temperature");
  if (!temperature.ok()) return Invalid(path, "missing or bad attribute 'temperature'");
  m.temperature = *temperature;
  AUGUR_RETURN_IF_ERROR(read_str("mode", &m.mode));
  AUGUR_RETURN_IF_ERROR(read_str("generation", &m.generation));
  AUGUR_RETURN_IF_ERROR(read_str("source", &m.source));
  AUGUR_RETURN_IF_ERROR(read_str("created_by", &m.created_by));
  AUGUR_RETURN_IF_ERROR(read_int("num_sequences", &m.num_sequences));
  AUGUR_RETURN_IF_ERROR(read_int("num_positions", &m.num_positions));
  if (m.vocab_size <= 0 || m.top_k <= 0 || m.top_k > m.vocab_size || m.num_sequences < 0 || m.num_positions < 0)
    return Invalid(path, absl::StrCat("bad attributes: vocab_size ", m.vocab_size, ", top_k ", m.top_k,
                                      ", num_sequences ", m.num_sequences, ", num_positions ", m.num_positions));

  const int64_t S = m.num_sequences, N = m.num_positions, K = m.top_k;
  auto open = [&](const char* name, h5::DType dtype, std::vector<int64_t> shape, h5::Dataset* out) -> absl::Status {
    AUGUR_ASSIGN_OR_RETURN(*out, Relabeled(h5::Dataset::Open(root, name, kChunkCacheBytes)));
    if (out->dtype() != dtype || out->shape() != shape) {
      std::string have, want;
      for (int64_t d : out->shape()) absl::StrAppend(&have, have.empty() ? "" : ",", d);
      for (int64_t d : shape) absl::StrAppend(&want, want.empty() ? "" : ",", d);
      return Invalid(path, absl::StrCat("/", name, " is ", h5::DTypeName(out->dtype()), " [", have, "], expected ",
                                        h5::DTypeName(dtype), " [", want, "] (num_sequences ", S,
                                        ", num_positions ", N, ", top_k ", K, ")"));
    }
    return absl::OkStatus();
  };
  h5::Dataset offsets, prompt_len, prompt_index;
  AUGUR_RETURN_IF_ERROR(open("tokens", h5::DType::kI32, {N}, &im.tokens));
  AUGUR_RETURN_IF_ERROR(open("seq_offsets", h5::DType::kU64, {S + 1}, &offsets));
  AUGUR_RETURN_IF_ERROR(open("prompt_len", h5::DType::kI32, {S}, &prompt_len));
  AUGUR_RETURN_IF_ERROR(open("prompt_index", h5::DType::kI64, {S}, &prompt_index));
  AUGUR_RETURN_IF_ERROR(open("topk_ids", h5::DType::kI32, {N, K}, &im.ids));
  AUGUR_RETURN_IF_ERROR(open("topk_logprobs", h5::DType::kF16, {N, K}, &im.logprobs));
  AUGUR_RETURN_IF_ERROR(open("rest_logmass", h5::DType::kF32, {N}, &im.rest));
  AUGUR_ASSIGN_OR_RETURN(im.offsets, Relabeled(offsets.ReadAll<int64_t>()));
  AUGUR_ASSIGN_OR_RETURN(im.prompt_len, Relabeled(prompt_len.ReadAll<int32_t>()));
  AUGUR_ASSIGN_OR_RETURN(im.prompt_index, Relabeled(prompt_index.ReadAll<int64_t>()));
  if (im.offsets.front() != 0 || im.offsets.back() != N)
    return Invalid(path, absl::StrCat("/seq_offsets must run from 0 to num_positions = ", N));
  for (int64_t s = 0; s < S; ++s) {
    const int64_t len = im.offsets[s + 1] - im.offsets[s];
    if (len < 1) return Invalid(path, absl::StrCat("/seq_offsets: sequence ", s, " is empty or out of order"));
    if (im.prompt_len[s] < 0 || im.prompt_len[s] > len)
      return Invalid(path, absl::StrCat("/prompt_len[", s, "] = ", im.prompt_len[s], " is outside [0, ", len, "]"));
  }
  return std::shared_ptr<const TeacherStore>(std::move(store));
}

int64_t TeacherStore::sequence_length(int64_t s) const { return impl_->offsets[s + 1] - impl_->offsets[s]; }
int64_t TeacherStore::sequence_offset(int64_t s) const { return impl_->offsets[s]; }
int64_t TeacherStore::prompt_len(int64_t s) const { return impl_->prompt_len[s]; }
int64_t TeacherStore::prompt_index(int64_t s) const { return impl_->prompt_index[s]; }

absl::StatusOr<TeacherSequence> TeacherStore::Read(int64_t s) const {
  if (s < 0 || s >= num_sequences())
    return absl::OutOfRangeError(
        absl::StrCat("teacher store: ", path_, ": sequence ", s, " outside [0, ", num_sequences(), ")"));
  const Impl& im = *impl_;
  const int64_t begin = im.offsets[s], L = im.offsets[s + 1] - begin, K = info_.top_k;
  TeacherSequence seq;
  seq.prompt_index = im.prompt_index[s];
  seq.prompt_len = im.prompt_len[s];
  seq.tokens.resize(L);
  seq.topk_ids.resize(L * K);
  seq.topk_logprobs.resize(L * K);
  seq.rest_logmass.resize(L);
  std::vector<uint16_t> half(L * K);
  {
    std::lock_guard<std::mutex> lock(im.mu);
    for (const absl::Status& st :
         {im.tokens.ReadRows(begin, L, h5::DType::kI32, seq.tokens.data()),
          im.ids.ReadRows(begin, L, h5::DType::kI32, seq.topk_ids.data()),
          im.logprobs.ReadRows(begin, L, h5::DType::kF16, half.data()),
          im.rest.ReadRows(begin, L, h5::DType::kF32, seq.rest_logmass.data())})
      if (!st.ok()) return Relabel(st);
  }
  for (size_t i = 0; i < half.size(); ++i) seq.topk_logprobs[i] = FromHalf(half[i]);
  return seq;
}

// ---- writing --------------------------------------------------------------------------

struct TeacherStoreWriter::Impl {
  std::string path, parts_dir;
  TeacherStoreInfo info;
  std::string base;                   // a finished store at `path` that Finish() extends
  std::vector<std::string> segments;  // finished parts, in write order
  std::vector<bool> segment_is_stale; // already inside `base` (a kill after Finish's rename)
  std::vector<int64_t> done;
  std::unordered_set<int64_t> done_set;
  std::vector<TeacherSequence> pending;
  int64_t pending_positions = 0;
  int64_t next_part = 0;
  bool finished = false;

  absl::Status Validate(const TeacherSequence& seq) const;
  absl::Status WritePart();
};

TeacherStoreWriter::~TeacherStoreWriter() = default;

absl::StatusOr<std::unique_ptr<TeacherStoreWriter>> TeacherStoreWriter::Create(const std::string& path,
                                                                               const TeacherStoreInfo& info) {
  const std::string parts = TeacherPartsDir(path);
  if (FileExists(path) || IsDirectory(parts))
    return absl::AlreadyExistsError(absl::StrCat(
        "teacher store: ", FileExists(path) ? path : parts,
        ": already exists; pass --resume to continue or extend it, or delete it to start over"));
  return Resume(path, info);
}

absl::StatusOr<std::unique_ptr<TeacherStoreWriter>> TeacherStoreWriter::Resume(const std::string& path,
                                                                               const TeacherStoreInfo& info) {
  if (info.vocab_size <= 0 || info.top_k <= 0 || info.top_k > info.vocab_size)
    return absl::InvalidArgumentError(absl::StrCat("teacher store: ", path, ": top-k ", info.top_k,
                                                   " must be in [1, vocab size ", info.vocab_size, "]"));
  if (!(info.temperature > 0) || !std::isfinite(info.temperature))
    return absl::InvalidArgumentError(
        absl::StrCat("teacher store: ", path, ": temperature ", info.temperature, " must be > 0"));
  std::unique_ptr<TeacherStoreWriter> w(new TeacherStoreWriter());
  w->impl_ = std::make_unique<Impl>();
  Impl& im = *w->impl_;
  im.path = path;
  im.parts_dir = TeacherPartsDir(path);
  im.info = info;
  im.info.format_version = kTeacherStoreVersion;
  auto take = [&](const TeacherStore& store) {
    for (int64_t s = 0; s < store.num_sequences(); ++s) {
      im.done.push_back(store.prompt_index(s));
      im.done_set.insert(store.prompt_index(s));
    }
  };
  if (FileExists(path)) {
    AUGUR_ASSIGN_OR_RETURN(auto store, TeacherStore::Open(path));
    AUGUR_RETURN_IF_ERROR(CheckSameData(store->info(), im.info, path));
    take(*store);
    im.base = path;
  }
  if (IsDirectory(im.parts_dir)) {
    for (const std::string& name : ListDir(im.parts_dir)) {
      const std::string file = im.parts_dir + "/" + name;
      const int64_t n = PartNumber(name);
      if (n < 0) {
        // A segment that was being written when the run stopped (never renamed).
        if (name.find(".tmp.") != std::string::npos) std::remove(file.c_str());
        continue;
      }
      AUGUR_ASSIGN_OR_RETURN(auto part, TeacherStore::Open(file));
      AUGUR_RETURN_IF_ERROR(CheckSameData(part->info(), im.info, file));
      int64_t seen = 0;
      for (int64_t s = 0; s < part->num_sequences(); ++s) seen += im.done_set.count(part->prompt_index(s));
      // A part is either new, or wholly inside the finished store (Finish renamed the
      // merged file but was stopped before removing the parts).
      if (seen != 0 && seen != part->num_sequences())
        return Invalid(file, absl::StrCat("repeats ", seen, " of its ", part->num_sequences(),
                                          " prompts already written elsewhere; the parts directory is inconsistent, delete ",
                                          im.parts_dir, " and resume"));
      const bool stale = seen != 0;
      if (!stale) take(*part);
      im.segments.push_back(file);
      im.segment_is_stale.push_back(stale);
      im.next_part = std::max(im.next_part, n + 1);
    }
  }
  return w;
}

const std::vector<int64_t>& TeacherStoreWriter::done_prompts() const { return impl_->done; }
bool TeacherStoreWriter::is_done(int64_t prompt_index) const { return impl_->done_set.count(prompt_index) > 0; }

absl::Status TeacherStoreWriter::Impl::Validate(const TeacherSequence& seq) const {
  const int64_t L = seq.length(), K = info.top_k;
  const std::string where = absl::StrCat("teacher store: ", path, ": prompt ", seq.prompt_index, ": ");
  if (seq.prompt_index < 0) return absl::InvalidArgumentError(where + "prompt index must be >= 0");
  if (done_set.count(seq.prompt_index)) return absl::AlreadyExistsError(where + "already written");
  if (L < 1) return absl::InvalidArgumentError(where + "empty sequence");
  if (seq.prompt_len < 0 || seq.prompt_len > L)
    return absl::InvalidArgumentError(absl::StrCat(where, "prompt length ", seq.prompt_len, " outside [0, ", L, "]"));
  if (static_cast<int64_t>(seq.topk_ids.size()) != L * K || static_cast<int64_t>(seq.topk_logprobs.size()) != L * K ||
      static_cast<int64_t>(seq.rest_logmass.size()) != L)
    return absl::InvalidArgumentError(absl::StrCat(where, "expected ", L, "x", K, " top-k ids and log-probs and ", L,
                                                   " rest log-masses, got ", seq.topk_ids.size(), ", ",
                                                   seq.topk_logprobs.size(), " and ", seq.rest_logmass.size()));
  for (int32_t id : seq.tokens)
    if (id < 0 || id >= info.vocab_size)
      return absl::InvalidArgumentError(absl::StrCat(where, "token id ", id, " outside [0, ", info.vocab_size, ")"));
  for (int32_t id : seq.topk_ids)
    if (id < 0 || id >= info.vocab_size)
      return absl::InvalidArgumentError(absl::StrCat(where, "top-k id ", id, " outside [0, ", info.vocab_size, ")"));
  return absl::OkStatus();
}

absl::Status TeacherStoreWriter::Add(const TeacherSequence& seq) {
  Impl& im = *impl_;
  if (im.finished) return absl::FailedPreconditionError(absl::StrCat("teacher store: ", im.path, ": Add after Finish"));
  AUGUR_RETURN_IF_ERROR(im.Validate(seq));
  im.pending.push_back(seq);
  im.pending_positions += seq.length();
  im.done.push_back(seq.prompt_index);
  im.done_set.insert(seq.prompt_index);
  if (im.pending_positions >= kTeacherSegmentPositions) return im.WritePart();
  return absl::OkStatus();
}

absl::Status TeacherStoreWriter::Impl::WritePart() {
  if (pending.empty()) return absl::OkStatus();
  AUGUR_RETURN_IF_ERROR(MakeDirs(parts_dir));
  const std::string file = parts_dir + "/" + PartName(next_part);
  const std::string tmp = TempPathFor(file);
  absl::Status st = [&]() -> absl::Status {
    AUGUR_ASSIGN_OR_RETURN(auto builder, FileBuilder::Create(tmp, info.top_k, kPartDeflate));
    for (const TeacherSequence& seq : pending) AUGUR_RETURN_IF_ERROR(builder->Append(seq));
    AUGUR_RETURN_IF_ERROR(builder->Finish(info));
    return CommitTempFile(tmp, file);
  }();
  if (!st.ok()) {
    std::remove(tmp.c_str());
    return Relabel(st);
  }
  segments.push_back(file);
  segment_is_stale.push_back(false);
  ++next_part;
  pending.clear();
  pending_positions = 0;
  return absl::OkStatus();
}

absl::Status TeacherStoreWriter::Flush() {
  if (impl_->finished) return absl::OkStatus();
  return impl_->WritePart();
}

absl::Status TeacherStoreWriter::Finish() {
  Impl& im = *impl_;
  if (im.finished) return absl::OkStatus();
  AUGUR_RETURN_IF_ERROR(im.WritePart());
  bool fresh = false;  // segments that the file at `path` does not hold yet
  for (size_t i = 0; i < im.segments.size(); ++i) fresh |= !im.segment_is_stale[i];
  if (fresh || im.base.empty()) {
    const std::string tmp = TempPathFor(im.path);
    absl::Status st = [&]() -> absl::Status {
      if (size_t slash = im.path.rfind('/'); slash != std::string::npos && slash > 0)
        AUGUR_RETURN_IF_ERROR(MakeDirs(im.path.substr(0, slash)));
      AUGUR_ASSIGN_OR_RETURN(auto builder, FileBuilder::Create(tmp, im.info.top_k, kFinalDeflate));
      std::vector<std::string> inputs;
      if (!im.base.empty()) inputs.push_back(im.base);
      for (size_t i = 0; i < im.segments.size(); ++i)
        if (!im.segment_is_stale[i]) inputs.push_back(im.segments[i]);
      for (const std::string& input : inputs) {
        AUGUR_ASSIGN_OR_RETURN(auto store, TeacherStore::Open(input));
        for (int64_t s = 0; s < store->num_sequences(); ++s) {
          AUGUR_ASSIGN_OR_RETURN(TeacherSequence seq, store->Read(s));
          AUGUR_RETURN_IF_ERROR(builder->Append(seq));
        }
      }
      AUGUR_RETURN_IF_ERROR(builder->Finish(im.info));
      return CommitTempFile(tmp, im.path);
    }();
    if (!st.ok()) {
      std::remove(tmp.c_str());
      return Relabel(st);
    }
  }
  // Only now that `path` holds everything may the segments go.
  RemoveTree(im.parts_dir);
  im.finished = true;
  return absl::OkStatus();
}

std::string TeacherStoreFingerprint(const TeacherStore& store) {
  const auto& i = store.info();
  return Fingerprint(absl::StrCat(i.target_fingerprint, "|", i.tokenizer_fingerprint, "|", i.vocab_size, "|",
                                  i.top_k, "|", i.temperature, "|", i.mode, "|", i.source, "|", i.num_sequences,
                                  "|", i.num_positions));
}

}  // namespace augur
