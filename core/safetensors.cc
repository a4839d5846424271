#include "core/safetensors.h"

#include <ATen/ATen.h>
#include <absl/strings/str_format.h>
#include <absl/strings/str_join.h>
#include <fcntl.h>
#include <nlohmann/json.hpp>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <regex>
#include <set>

#include "core/fs.h"

namespace augur {
namespace {

using json = nlohmann::json;

// The reference implementation refuses headers above 100 MB; so do we, before allocating.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

struct DtypeRow {
  StDtype dtype;
  const char* name;
  int64_t size;
  c10::ScalarType torch;
};
// One table drives names, sizes and torch types.
constexpr DtypeRow kDtypes[] = {
    {StDtype::kF32, "F32", 4, c10::ScalarType::Float},
    {StDtype::kF16, "F16", 2, c10::ScalarType::Half},
    {StDtype::kBF16, "BF16", 2, c10::ScalarType::BFloat16},
    {StDtype::kF64, "F64", 8, c10::ScalarType::Double},
    {StDtype::kI8, "I8", 1, c10::ScalarType::Char},
    {StDtype::kU8, "U8", 1, c10::ScalarType::Byte},
    {StDtype::kI32, "I32", 4, c10::ScalarType::Int},
    {StDtype::kI64, "I64", 8, c10::ScalarType::Long},
    {StDtype::kBool, "BOOL", 1, c10::ScalarType::Bool},
};

const DtypeRow& RowOf(StDtype d) {
  for (const auto& r : kDtypes)
    if (r.dtype == d) return r;
  AUGUR_CHECK(false, "unknown StDtype");
  return kDtypes[0];
}


absl::Status Err(const std::string& path, const std::string& problem) {
  return absl::InvalidArgumentError(absl::StrCat("safetensors: ", path, ": ", problem));
}

std::string RangeString(uint64_t b, uint64_t e) { return absl::StrCat("[", b, ",", e, "]"); }

// Parses one header entry; `data_size` is the length of the byte buffer.
absl::StatusOr<StTensorInfo> ParseEntry(const std::string& path, const std::string& name,
                                        const json& v, uint64_t data_size) {
  if (name.empty()) return Err(path, "header has a tensor with an empty name");
  if (!v.is_object())
    return Err(path, absl::StrCat("header entry for tensor ", name, " is not a JSON object"));
  StTensorInfo info;
  info.name = name;
  auto dt = v.find("dtype");
  if (dt == v.end() || !dt->is_string())
    return Err(path, absl::StrCat("tensor ", name, " has no \"dtype\" string"));
  auto parsed = StDtypeFromName(dt->get<std::string>());
  if (!parsed.ok())
    return Err(path, absl::StrCat("tensor ", name, " has ", parsed.status().message()));
  info.dtype = *parsed;

  auto sh = v.find("shape");
  if (sh == v.end() || !sh->is_array())
    return Err(path, absl::StrCat("tensor ", name, " has no \"shape\" array"));
  uint64_t numel = 1;
  bool overflow = false;
  for (const auto& d : *sh) {
    if (!d.is_number_unsigned())
      return Err(path, absl::StrCat("tensor ", name, " has shape ", sh->dump(),
                                    " with an entry that is not a non-negative integer"));
    uint64_t x = d.get<uint64_t>();
    if (x > static_cast<uint64_t>(INT64_MAX)) overflow = true;
    info.shape.push_back(static_cast<int64_t>(x));
    if (__builtin_mul_overflow(numel, x, &numel)) overflow = true;
  }
  auto off = v.find("data_offsets");
  if (off == v.end() || !off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() ||
      !(*off)[1].is_number_unsigned())
    return Err(path, absl::StrCat("tensor ", name,
                                  " has no \"data_offsets\" pair of non-negative integers"));
  info.begin = (*off)[0].get<uint64_t>();
  info.end = (*off)[1].get<uint64_t>();
  if (info.begin > info.end)
    return Err(path, absl::StrCat("tensor ", name, " has data_offsets ",
                                  RangeString(info.begin, info.end), " with begin after end"));
  if (info.end > data_size)
    return Err(path, absl::StrCat("tensor ", name, " has data_offsets ",
                                  RangeString(info.begin, info.end),
                                  " past the end of the data (", data_size, " bytes)"));
  uint64_t bytes = 0;
  if (overflow || __builtin_mul_overflow(numel, static_cast<uint64_t>(StDtypeSize(info.dtype)), &bytes))
    return Err(path, absl::StrCat("tensor ", name, " has shape ", ShapeString(info.shape),
                                  " whose byte size overflows"));
  if (bytes != info.end - info.begin)
    return Err(path, absl::StrCat("tensor ", name, " has shape ", ShapeString(info.shape), " and dtype ",
                                  StDtypeName(info.dtype), " (", bytes, " bytes) but data_offsets ",
                                  RangeString(info.begin, info.end), " span ",
                                  info.end - info.begin, " bytes"));
  return info;
}

// Writes the safetensors encoding of `tensors` to `path` (not atomically; callers write to
// a temporary name). Tensors must be CPU and contiguous.
absl::Status WriteRaw(const std::string& path, const std::string& shown,
                      const NamedTensors& tensors, const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  json meta = json::object();
  for (const auto& [k, v] : metadata) meta[k] = v;
  meta["format"] = "pt";
  header["__metadata__"] = meta;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    auto dt = StDtypeFromTorch(t.scalar_type());
    if (!dt.ok()) return Err(shown, absl::StrCat("tensor ", name, ": ", dt.status().message()));
    uint64_t bytes = static_cast<uint64_t>(t.numel()) * StDtypeSize(*dt);
    json shape = json::array();
    for (int64_t d : t.sizes()) shape.push_back(d);
    header[name] = {{"dtype", std::string(StDtypeName(*dt))},
                    {"shape", shape},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  // Pad with spaces so the data buffer starts 8-byte aligned, as the reference writer does.
  text.append((8 - text.size() % 8) % 8, ' ');
  uint64_t n = text.size();
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(n >> (8 * i));

  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return Err(shown, absl::StrCat("cannot create: ", std::strerror(errno)));
  bool ok = std::fwrite(len, 1, 8, f) == 8 && std::fwrite(text.data(), 1, n, f) == n;
  for (const auto& [name, t] : tensors) {
    if (!ok) break;
    size_t bytes = t.numel() * t.element_size();
    if (bytes > 0) ok = std::fwrite(t.data_ptr(), 1, bytes, f) == bytes;
  }
  int err = errno;
  if (std::fclose(f) != 0 && ok) {
    ok = false;
    err = errno;
  }
  if (!ok) {
    std::remove(path.c_str());
    return Err(shown, absl::StrCat("write failed: ", std::strerror(err)));
  }
  return absl::OkStatus();
}

// CPU, contiguous, names unique and non-empty, dtypes writable.
absl::StatusOr<NamedTensors> Prepare(const std::string& shown, const NamedTensors& tensors) {
  NamedTensors out;
  out.reserve(tensors.size());
  std::set<std::string> seen;
  for (const auto& [name, t] : tensors) {
    if (name.empty()) return Err(shown, "cannot write a tensor with an empty name");
    if (name == "__metadata__") return Err(shown, "\"__metadata__\" is reserved, not a tensor name");
    if (!seen.insert(name).second) return Err(shown, absl::StrCat("tensor ", name, " given twice"));
    if (!t.defined()) return Err(shown, absl::StrCat("tensor ", name, " is undefined"));
    auto dt = StDtypeFromTorch(t.scalar_type());
    if (!dt.ok()) return Err(shown, absl::StrCat("tensor ", name, ": ", dt.status().message()));
    out.emplace_back(name, t.detach().to(at::kCPU).contiguous());
  }
  return out;
}

// Removes a file if present (best effort: a leftover is harmless, never an error).
void RemoveIfExists(const std::string& path) { ::unlink(path.c_str()); }

// Plain names in `dir` (POSIX, not std::filesystem: libtorch.so exports its own copy of
// std::filesystem, and calls may bind to it).
const std::regex& ShardNamePattern() {
  static const std::regex re(R"(model-\d{5}-of-\d{5}\.safetensors)");
  return re;
}

}  // namespace

std::string StDtypeName(StDtype d) { return RowOf(d).name; }
int64_t StDtypeSize(StDtype d) { return RowOf(d).size; }
c10::ScalarType StDtypeToTorch(StDtype d) { return RowOf(d).torch; }

absl::StatusOr<StDtype> StDtypeFromName(std::string_view name) {
  for (const auto& r : kDtypes)
    if (name == r.name) return r.dtype;
  return absl::InvalidArgumentError(absl::StrCat(
      "unsupported dtype \"", std::string(name), "\" (augur reads F32, F16, BF16, F64, I8, U8, I32, I64)"));
}

absl::StatusOr<StDtype> StDtypeFromTorch(c10::ScalarType t) {
  for (const auto& r : kDtypes)
    if (r.torch == t) return r.dtype;
  return absl::InvalidArgumentError(
      absl::StrCat("torch dtype ", c10::toString(t), " has no safetensors encoding in augur"));
}

int64_t StTensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ","), "]");
}
std::string ShapeString(at::IntArrayRef shape) {
  return ShapeString(std::vector<int64_t>(shape.begin(), shape.end()));
}

// ---- SafetensorsFile --------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    std::string why = std::strerror(errno);
    if (errno == ENOENT) return absl::NotFoundError(absl::StrCat("safetensors: ", path, ": no such file"));
    return Err(path, absl::StrCat("cannot open: ", why));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return Err(path, "not a regular file");
  }
  uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size < 8) {
    ::close(fd);
    return Err(path, absl::StrCat("file is ", size, " bytes, shorter than the 8-byte header length"));
  }
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  int map_errno = errno;
  ::close(fd);
  if (map == MAP_FAILED) return Err(path, absl::StrCat("mmap failed: ", std::strerror(map_errno)));

  std::unique_ptr<SafetensorsFile> f(new SafetensorsFile());
  f->path_ = path;
  f->map_ = static_cast<const uint8_t*>(map);
  f->map_size_ = size;

  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | f->map_[i];
  if (n > size - 8)
    return Err(path, absl::StrCat("header length ", n, " exceeds file size ", size));
  if (n > kMaxHeaderBytes)
    return Err(path, absl::StrCat("header length ", n, " exceeds the limit of ", kMaxHeaderBytes, " bytes"));
  std::string_view text(reinterpret_cast<const char*>(f->map_ + 8), n);
  json header;
  try {
    header = json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    // e.what() is one line: "[json.exception.parse_error.101] parse error at line 1, ..."
    return Err(path, absl::StrCat("header is not valid JSON: ", e.what()));
  }
  if (!header.is_object()) return Err(path, "header is not a JSON object");
  uint64_t data_size = size - 8 - n;
  f->data_ = f->map_ + 8 + n;

  for (const auto& [key, value] : header.items()) {
    if (key == "__metadata__") {
      if (!value.is_object()) return Err(path, "__metadata__ is not a JSON object");
      for (const auto& [mk, mv] : value.items()) {
        if (!mv.is_string())
          return Err(path, absl::StrCat("__metadata__ value for \"", mk, "\" is not a string"));
        f->metadata_[mk] = mv.get<std::string>();
      }
      continue;
    }
    AUGUR_ASSIGN_OR_RETURN(StTensorInfo info, ParseEntry(path, key, value, data_size));
    f->tensors_.push_back(std::move(info));
  }
  std::sort(f->tensors_.begin(), f->tensors_.end(), [](const StTensorInfo& a, const StTensorInfo& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  // The tensors must tile the data buffer exactly: no overlap, no hole, nothing after.
  uint64_t pos = 0;
  const StTensorInfo* prev = nullptr;
  for (const auto& t : f->tensors_) {
    if (t.begin < pos)
      return Err(path, absl::StrCat("tensors ", prev->name, " ", RangeString(prev->begin, prev->end), " and ",
                                    t.name, " ", RangeString(t.begin, t.end), " overlap"));
    if (t.begin > pos)
      return Err(path, absl::StrCat("data is not contiguous: ", t.begin - pos, " unused bytes at offset ",
                                    pos, " before tensor ", t.name));
    pos = t.end;
    prev = &t;
  }
  if (pos != data_size)
    return Err(path, absl::StrCat("data is not contiguous: ", data_size - pos,
                                  " bytes after the last tensor are not covered by the header"));
  for (size_t i = 0; i < f->tensors_.size(); ++i) f->index_[f->tensors_[i].name] = i;
  return f;
}

SafetensorsFile::~SafetensorsFile() {
  if (map_) ::munmap(const_cast<uint8_t*>(map_), map_size_);
}

const StTensorInfo* SafetensorsFile::Find(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

std::string_view SafetensorsFile::Bytes(const StTensorInfo& info) const {
  return std::string_view(reinterpret_cast<const char*>(data_ + info.begin), info.end - info.begin);
}

at::Tensor SafetensorsFile::Read(const StTensorInfo& info) const {
  // A BOOL byte from a file may be any value, which a torch bool must not hold: read bytes,
  // then compare with zero.
  const bool is_bool = info.dtype == StDtype::kBool;
  at::Tensor t = at::empty(info.shape, at::TensorOptions().dtype(is_bool ? c10::ScalarType::Byte
                                                                         : StDtypeToTorch(info.dtype)));
  // The mapped bytes may be unaligned for the dtype, so copy rather than wrap them.
  if (info.end > info.begin) std::memcpy(t.data_ptr(), data_ + info.begin, info.end - info.begin);
  return is_bool ? t.ne(0) : t;
}

absl::StatusOr<at::Tensor> SafetensorsFile::Read(std::string_view name) const {
  const StTensorInfo* info = Find(name);
  if (!info) return absl::NotFoundError(absl::StrCat("safetensors: ", path_, ": no tensor ", std::string(name)));
  return Read(*info);
}

// ---- writing ----------------------------------------------------------------------------

absl::Status WriteSafetensors(const std::string& path, const NamedTensors& tensors,
                              const std::map<std::string, std::string>& metadata) {
  AUGUR_ASSIGN_OR_RETURN(NamedTensors ready, Prepare(path, tensors));
  std::string tmp = TempPathFor(path);
  AUGUR_RETURN_IF_ERROR(WriteRaw(tmp, path, ready, metadata));
  return CommitTempFile(tmp, path);
}

absl::Status WriteSafetensorsCheckpoint(const std::string& dir, const NamedTensors& tensors,
                                        int64_t max_shard_bytes,
                                        const std::map<std::string, std::string>& metadata) {
  std::string single = JoinPath(dir, kSafetensorsSingleName);
  std::string index = JoinPath(dir, kSafetensorsIndexName);
  AUGUR_ASSIGN_OR_RETURN(NamedTensors ready, Prepare(dir, tensors));

  // Greedy sharding in the given order, as transformers does.
  std::vector<NamedTensors> shards(1);
  uint64_t cur = 0, total = 0;
  for (auto& nt : ready) {
    uint64_t bytes = nt.second.numel() * nt.second.element_size();
    if (max_shard_bytes > 0 && !shards.back().empty() && cur + bytes > static_cast<uint64_t>(max_shard_bytes)) {
      shards.emplace_back();
      cur = 0;
    }
    shards.back().push_back(std::move(nt));
    cur += bytes;
    total += bytes;
  }

  std::set<std::string> keep;
  if (shards.size() == 1) {
    // model.safetensors takes precedence over an index, so once it is in place the old
    // index and shards are dead and can go.
    std::string tmp = TempPathFor(single);
    AUGUR_RETURN_IF_ERROR(WriteRaw(tmp, single, shards[0], metadata));
    AUGUR_RETURN_IF_ERROR(CommitTempFile(tmp, single));
    keep.insert(kSafetensorsSingleName);
    RemoveIfExists(index);
  } else {
    // All shards go to temporary names first and are renamed together, so an earlier
    // sharded save with the same file names is never half replaced for long.
    const size_t n = shards.size();
    std::vector<std::pair<std::string, std::string>> staged;  // tmp, final
    json weight_map = json::object();
    for (size_t i = 0; i < n; ++i) {
      std::string name = absl::StrFormat("model-%05d-of-%05d.safetensors", i + 1, n);
      std::string path = JoinPath(dir, name);
      std::string tmp = TempPathFor(path);
      absl::Status st = WriteRaw(tmp, path, shards[i], metadata);
      if (!st.ok()) {
        for (auto& [t, p] : staged) RemoveIfExists(t);
        return st;
      }
      staged.emplace_back(tmp, path);
      keep.insert(name);
      for (const auto& nt : shards[i]) weight_map[nt.first] = name;
    }
    for (size_t i = 0; i < staged.size(); ++i) {
      absl::Status st = CommitTempFile(staged[i].first, staged[i].second);
      if (!st.ok()) {
        for (size_t j = i + 1; j < staged.size(); ++j) RemoveIfExists(staged[j].first);
        return st;
      }
    }
    json idx = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
    AUGUR_RETURN_IF_ERROR(WriteFileAtomic(index, idx.dump(2) + "\n"));
    keep.insert(kSafetensorsIndexName);
    RemoveIfExists(single);
  }
  // Shards of an earlier save that this one did not overwrite.
  for (const std::string& name : ListDir(dir))
    if (!keep.count(name) && std::regex_match(name, ShardNamePattern())) RemoveIfExists(JoinPath(dir, name));
  return absl::OkStatus();
}

// ---- SafetensorsCheckpoint --------------------------------------------------------------

bool SafetensorsCheckpoint::Exists(const std::string& dir) {
  return FileExists(JoinPath(dir, kSafetensorsSingleName)) || FileExists(JoinPath(dir, kSafetensorsIndexName));
}

absl::StatusOr<SafetensorsCheckpoint> SafetensorsCheckpoint::Open(const std::string& dir) {
  SafetensorsCheckpoint ck;
  std::string single = JoinPath(dir, kSafetensorsSingleName);
  std::string index = JoinPath(dir, kSafetensorsIndexName);
  if (FileExists(single)) {
    AUGUR_ASSIGN_OR_RETURN(auto f, SafetensorsFile::Open(single));
    ck.files_.push_back(std::move(f));
    for (const auto& t : ck.files_[0]->tensors()) ck.where_[t.name] = 0;
    return ck;
  }
  if (!FileExists(index))
    return absl::NotFoundError(absl::StrCat("safetensors: ", dir, ": no ", kSafetensorsSingleName,
                                            " or ", kSafetensorsIndexName));
  ck.index_path_ = index;
  AUGUR_ASSIGN_OR_RETURN(std::string text, ReadFile(index));
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    return Err(index, absl::StrCat("not valid JSON: ", e.what()));
  }
  if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
    return Err(index, "no \"weight_map\" object");
  std::map<std::string, size_t> file_index;  // shard file name -> files_ index
  for (const auto& [name, file] : j["weight_map"].items()) {
    if (!file.is_string()) return Err(index, absl::StrCat("weight_map entry for ", name, " is not a string"));
    std::string fname = file.get<std::string>();
    if (fname.empty() || fname[0] == '/' || fname.find("..") != std::string::npos)
      return Err(index, absl::StrCat("weight_map names file \"", fname, "\" outside the directory"));
    auto it = file_index.find(fname);
    if (it == file_index.end()) {
      auto opened = SafetensorsFile::Open(JoinPath(dir, fname));
      if (!opened.ok()) {
        if (absl::IsNotFound(opened.status()))
          return Err(index, absl::StrCat("weight_map names shard ", fname, ", which does not exist"));
        return opened.status();
      }
      ck.files_.push_back(std::move(*opened));
      it = file_index.emplace(fname, ck.files_.size() - 1).first;
    }
    if (!ck.files_[it->second]->Find(name))
      return Err(index, absl::StrCat("weight_map puts tensor ", name, " in ", fname, ", which does not hold it"));
    ck.where_[name] = it->second;
  }
  // Every tensor of every shard must be listed, or some file disagrees with the index.
  for (const auto& f : ck.files_)
    for (const auto& t : f->tensors()) {
      auto w = ck.where_.find(t.name);
      if (w == ck.where_.end())
        return Err(index, absl::StrCat("shard ", f->path(), " holds tensor ", t.name, ", which weight_map does not list"));
      if (ck.files_[w->second].get() != f.get())
        return Err(index, absl::StrCat("tensor ", t.name, " is in both ", f->path(), " and ",
                                       ck.files_[w->second]->path()));
    }
  return ck;
}

std::vector<std::string> SafetensorsCheckpoint::names() const {
  std::vector<std::string> out;
  out.reserve(where_.size());
  for (const auto& [n, i] : where_) out.push_back(n);
  return out;
}

const SafetensorsFile* SafetensorsCheckpoint::FileOf(std::string_view name) const {
  auto it = where_.find(name);
  return it == where_.end() ? nullptr : files_[it->second].get();
}

const StTensorInfo* SafetensorsCheckpoint::Find(std::string_view name) const {
  const SafetensorsFile* f = FileOf(name);
  return f ? f->Find(name) : nullptr;
}

absl::StatusOr<at::Tensor> SafetensorsCheckpoint::Read(std::string_view name) const {
  const SafetensorsFile* f = FileOf(name);
  if (!f) return absl::NotFoundError(absl::StrCat("safetensors: no tensor ", std::string(name), " in the checkpoint"));
  return f->Read(*f->Find(name));
}

}  // namespace augur
