#include "quantize/gguf_reader.h"

#include <absl/strings/escaping.h>
#include <absl/strings/str_join.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>

#include "quantize/gguf_dequant.h"

namespace augur::gguf {

struct GgufFile::Mapping {
  const uint8_t* data = nullptr;
  size_t size = 0;
  ~Mapping() {
    if (data) munmap(const_cast<uint8_t*>(data), size);
  }
};

const char* ValueTypeName(ValueType t) {
  switch (t) {
    case ValueType::kU8: return "u8";
    case ValueType::kI8: return "i8";
    case ValueType::kU16: return "u16";
    case ValueType::kI16: return "i16";
    case ValueType::kU32: return "u32";
    case ValueType::kI32: return "i32";
    case ValueType::kF32: return "f32";
    case ValueType::kBool: return "bool";
    case ValueType::kString: return "string";
    case ValueType::kArray: return "array";
    case ValueType::kU64: return "u64";
    case ValueType::kI64: return "i64";
    case ValueType::kF64: return "f64";
  }
  return "?";
}

namespace {

constexpr int kMaxDims = 4;          // GGML_MAX_DIMS
constexpr int kMaxArrayDepth = 8;    // arrays of arrays: deeper is refused, not recursed into
constexpr uint64_t kMinKvBytes = 8 + 4 + 1;          // empty key, type, a u8
constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 4 + 8;  // empty name, 0 dims, type, offset

bool IsSigned(ValueType t) {
  return t == ValueType::kI8 || t == ValueType::kI16 || t == ValueType::kI32 || t == ValueType::kI64;
}
bool IsUnsigned(ValueType t) {
  return t == ValueType::kU8 || t == ValueType::kU16 || t == ValueType::kU32 || t == ValueType::kU64;
}

// Size of a fixed-size value; 0 for string and array.
uint64_t ScalarBytes(ValueType t) {
  switch (t) {
    case ValueType::kU8: case ValueType::kI8: case ValueType::kBool: return 1;
    case ValueType::kU16: case ValueType::kI16: return 2;
    case ValueType::kU32: case ValueType::kI32: case ValueType::kF32: return 4;
    case ValueType::kU64: case ValueType::kI64: case ValueType::kF64: return 8;
    default: return 0;
  }
}

// The fewest bytes one value of type `t` takes in a file (bounds array counts).
uint64_t MinValueBytes(ValueType t) {
  if (t == ValueType::kString) return 8;
  if (t == ValueType::kArray) return 4 + 8;
  return ScalarBytes(t);
}

bool KnownValueType(uint32_t t) { return t <= static_cast<uint32_t>(ValueType::kF64); }

std::string TypeList() {
  std::vector<std::string> names;
  for (const auto& row : GgmlTypeTable()) names.push_back(row.name);
  return absl::StrJoin(names, ", ");
}

// A value's integer as [lo, hi] check; false when it is not an integer or out of range.
bool IntegerIn(const GgufValue& v, int64_t lo, uint64_t hi, int64_t* out_signed, uint64_t* out_unsigned) {
  if (IsSigned(v.type)) {
    if (v.i < lo || (v.i >= 0 && static_cast<uint64_t>(v.i) > hi)) return false;
    if (out_signed) *out_signed = v.i;
    if (out_unsigned) *out_unsigned = static_cast<uint64_t>(v.i);
    return true;
  }
  if (IsUnsigned(v.type)) {
    if (v.u > hi) return false;
    if (out_signed) *out_signed = static_cast<int64_t>(v.u);
    if (out_unsigned) *out_unsigned = v.u;
    return true;
  }
  return false;
}

std::string Describe(const GgufValue& v) {
  if (v.type == ValueType::kArray) return absl::StrCat("an array of ", ValueTypeName(v.elem_type));
  if (IsSigned(v.type)) return absl::StrCat(ValueTypeName(v.type), " ", v.i);
  if (IsUnsigned(v.type)) return absl::StrCat(ValueTypeName(v.type), " ", v.u);
  return absl::StrCat("a ", ValueTypeName(v.type));
}

}  // namespace

bool GgufValue::is_integer() const { return IsSigned(type) || IsUnsigned(type); }

int64_t TensorInfo::num_values() const {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;  // bounded by the reader (no overflow)
  return n;
}

std::vector<int64_t> TensorInfo::shape() const { return std::vector<int64_t>(dims.rbegin(), dims.rend()); }

// Reads the header, metadata and tensor infos from the mapped bytes into a GgufFile.
class GgufParser {
 public:
  GgufParser(GgufFile* file, const uint8_t* data, uint64_t size) : f_(file), data_(data), size_(size) {}

  absl::Status Parse() {
    if (size_ < 4) return Err(absl::StrCat("truncated: ", size_, " bytes, not even the 4-byte magic \"GGUF\""));
    if (std::memcmp(data_, "GGUF", 4) != 0)
      return Err(absl::StrCat("bad magic \"",
                              absl::CHexEscape(absl::string_view(reinterpret_cast<const char*>(data_), 4)),
                              "\" (a GGUF file starts with \"GGUF\")"));
    pos_ = 4;
    uint32_t version;
    AUGUR_RETURN_IF_ERROR(Read(&version, "the version"));
    if (version != 2 && version != 3) {
      if (version == 1) return Err("GGUF version 1 is not supported (augur reads versions 2 and 3; re-convert the model)");
      if ((version & 0xFFFF) == 0 && (version >> 16) != 0)
        return Err(absl::StrCat("version field 0x", absl::Hex(version, absl::kZeroPad8),
                                " looks byte-swapped: big-endian GGUF is not supported"));
      return Err(absl::StrCat("unsupported GGUF version ", version, " (augur reads versions 2 and 3)"));
    }
    f_->version_ = version;
    uint64_t n_tensors, n_kv;
    AUGUR_RETURN_IF_ERROR(Read(&n_tensors, "the tensor count"));
    AUGUR_RETURN_IF_ERROR(Read(&n_kv, "the metadata count"));
    if (n_kv > Left() / kMinKvBytes)
      return Err(absl::StrCat("header says ", n_kv, " metadata keys, more than the ", Left(),
                              " bytes after the header can hold"));
    f_->metadata_.reserve(n_kv);
    for (uint64_t k = 0; k < n_kv; ++k) AUGUR_RETURN_IF_ERROR(ReadKv(k));
    AUGUR_RETURN_IF_ERROR(ReadAlignment());

    if (n_tensors > Left() / kMinTensorInfoBytes)
      return Err(absl::StrCat("header says ", n_tensors, " tensors, more than the ", Left(),
                              " bytes after the metadata can hold"));
    f_->tensors_.reserve(n_tensors);
    for (uint64_t t = 0; t < n_tensors; ++t) AUGUR_RETURN_IF_ERROR(ReadTensorInfo(t));

    const uint64_t a = f_->alignment_;
    f_->data_offset_ = (pos_ + a - 1) / a * a;  // pos_ <= size_, no overflow
    for (const TensorInfo& t : f_->tensors_) {
      const uint64_t start = f_->data_offset_;
      const bool fits = start <= size_ && t.offset <= size_ - start && t.bytes <= size_ - start - t.offset;
      if (!fits)
        return Err(absl::StrCat("tensor '", t.name, "' (offset ", t.offset, ", ", t.bytes,
                                " bytes) extends past the end of the file (", size_, " bytes)"));
    }
    return absl::OkStatus();
  }

 private:
  absl::Status Err(const std::string& msg) const { return f_->Error(msg); }
  uint64_t Left() const { return size_ - pos_; }

  absl::Status Need(uint64_t n, const std::string& what) {
    if (n > Left())
      return Err(absl::StrCat("truncated: ", what, " at byte ", pos_, " needs ", n, " bytes, the file has ", size_, " bytes"));
    return absl::OkStatus();
  }

  template <typename T>
  absl::Status Read(T* v, const std::string& what) {
    AUGUR_RETURN_IF_ERROR(Need(sizeof(T), what));
    std::memcpy(v, data_ + pos_, sizeof(T));  // little-endian hosts
    pos_ += sizeof(T);
    return absl::OkStatus();
  }

  absl::Status ReadString(std::string* s, const std::string& what) {
    uint64_t len;
    AUGUR_RETURN_IF_ERROR(Read(&len, absl::StrCat("the length of ", what)));
    if (len > Left())
      return Err(absl::StrCat(what, " has length ", len, ", more than the ", Left(), " bytes left in the file"));
    s->assign(reinterpret_cast<const char*>(data_ + pos_), len);
    pos_ += len;
    return absl::OkStatus();
  }

  absl::Status ReadKv(uint64_t k) {
    std::string key;
    AUGUR_RETURN_IF_ERROR(ReadString(&key, absl::StrCat("metadata key #", k)));
    if (f_->key_index_.count(key)) return Err(absl::StrCat("duplicate metadata key '", key, "'"));
    uint32_t type;
    AUGUR_RETURN_IF_ERROR(Read(&type, absl::StrCat("the type of key '", key, "'")));
    if (!KnownValueType(type)) return Err(absl::StrCat("key '", key, "' has unknown value type ", type));
    GgufValue v;
    AUGUR_RETURN_IF_ERROR(ReadValue(static_cast<ValueType>(type), &v, absl::StrCat("key '", key, "'"), 0));
    f_->key_index_[key] = f_->metadata_.size();
    f_->metadata_.emplace_back(std::move(key), std::move(v));
    return absl::OkStatus();
  }

  absl::Status ReadValue(ValueType type, GgufValue* v, const std::string& what, int depth) {
    v->type = type;
    switch (type) {
      case ValueType::kU8: { uint8_t x; AUGUR_RETURN_IF_ERROR(Read(&x, what)); v->u = x; break; }
      case ValueType::kI8: { int8_t x; AUGUR_RETURN_IF_ERROR(Read(&x, what)); v->i = x; break; }
      case ValueType::kU16: { uint16_t x; AUGUR_RETURN_IF_ERROR(Read(&x, what)); v->u = x; break; }
      case ValueType::kI16: { int16_t x; AUGUR_RETURN_IF_ERROR(Read(&x, what)); v->i = x; break; }
      case ValueType::kU32: { uint32_t x; AUGUR_RETURN_IF_ERROR(Read(&x, what)); v->u = x; break; }
      case ValueType::kI32: { int32_t x; AUGUR_RETURN_IF_ERROR(Read(&x, what)); v->i = x; break; }
      case ValueType::kU64: { uint64_t x; AUGUR_RETURN_IF_ERROR(Read(&x, what)); v->u = x; break; }
      case ValueType::kI64: { int64_t x; AUGUR_RETURN_IF_ERROR(Read(&x, what)); v->i = x; break; }
      case ValueType::kF32: { float x; AUGUR_RETURN_IF_ERROR(Read(&x, what)); v->f = x; break; }
      case ValueType::kF64: { double x; AUGUR_RETURN_IF_ERROR(Read(&x, what)); v->f = x; break; }
      case ValueType::kBool: { uint8_t x; AUGUR_RETURN_IF_ERROR(Read(&x, what)); v->u = x != 0; break; }
      case ValueType::kString: return ReadString(&v->str, what);
      case ValueType::kArray: {
        if (depth >= kMaxArrayDepth)
          return Err(absl::StrCat(what, ": arrays nested deeper than ", kMaxArrayDepth));
        uint32_t elem;
        AUGUR_RETURN_IF_ERROR(Read(&elem, absl::StrCat("the element type of ", what)));
        if (!KnownValueType(elem)) return Err(absl::StrCat(what, " is an array of unknown value type ", elem));
        v->elem_type = static_cast<ValueType>(elem);
        uint64_t count;
        AUGUR_RETURN_IF_ERROR(Read(&count, absl::StrCat("the length of ", what)));
        if (count > Left() / MinValueBytes(v->elem_type))
          return Err(absl::StrCat(what, " is an array of ", count, " ", ValueTypeName(v->elem_type),
                                  " values, more than the ", Left(), " bytes left in the file can hold"));
        v->items.resize(count);
        for (uint64_t j = 0; j < count; ++j)
          AUGUR_RETURN_IF_ERROR(ReadValue(v->elem_type, &v->items[j], absl::StrCat(what, " item ", j), depth + 1));
        break;
      }
    }
    return absl::OkStatus();
  }

  absl::Status ReadAlignment() {
    const GgufValue* a = f_->Find("general.alignment");
    if (!a) return absl::OkStatus();  // the default, 32
    uint64_t v = 0;
    if (!IntegerIn(*a, 0, std::numeric_limits<uint32_t>::max(), nullptr, &v))
      return Err(absl::StrCat("general.alignment is ", Describe(*a), ", not a u32"));
    if (v == 0 || (v & (v - 1)) != 0) return Err(absl::StrCat("general.alignment ", v, " is not a power of two"));
    f_->alignment_ = static_cast<uint32_t>(v);
    return absl::OkStatus();
  }

  absl::Status ReadTensorInfo(uint64_t index) {
    TensorInfo t;
    AUGUR_RETURN_IF_ERROR(ReadString(&t.name, absl::StrCat("the name of tensor #", index)));
    if (f_->tensor_index_.count(t.name)) return Err(absl::StrCat("duplicate tensor name '", t.name, "'"));
    const std::string what = absl::StrCat("tensor '", t.name, "'");
    uint32_t n_dims;
    AUGUR_RETURN_IF_ERROR(Read(&n_dims, absl::StrCat("the dimension count of ", what)));
    if (n_dims > kMaxDims) return Err(absl::StrCat(what, " has ", n_dims, " dimensions (at most ", kMaxDims, ")"));
    uint64_t count = 1;  // product of the dims so far; kept <= INT64_MAX
    for (uint32_t d = 0; d < n_dims; ++d) {
      uint64_t ne;
      AUGUR_RETURN_IF_ERROR(Read(&ne, absl::StrCat("dimension ", d, " of ", what)));
      if (ne > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
          (ne != 0 && count > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / ne))
        return Err(absl::StrCat(what, " has dimensions whose product overflows (dimension ", d, " is ", ne, ")"));
      count *= ne;
      t.dims.push_back(static_cast<int64_t>(ne));
    }
    uint32_t type;
    AUGUR_RETURN_IF_ERROR(Read(&type, absl::StrCat("the type of ", what)));
    const GgmlTypeTraits* traits = FindGgmlType(type);
    if (!traits)
      return Err(absl::StrCat(what, " has tensor type ", type, ", which augur does not read (it reads ", TypeList(),
                              ")"));
    t.type = traits->type;
    const uint64_t row = t.dims.empty() ? 1 : static_cast<uint64_t>(t.dims[0]);
    if (row % traits->block_size != 0)
      return Err(absl::StrCat(what, " has rows of ", row, " values, not a multiple of ", traits->name, "'s block of ",
                              traits->block_size));
    // bytes = count / block_size * block_bytes; in the file's range or refused below.
    const uint64_t blocks = count / traits->block_size;
    if (blocks > std::numeric_limits<uint64_t>::max() / traits->block_bytes)
      return Err(absl::StrCat(what, " has ", count, " values, too many bytes to address"));
    t.bytes = blocks * traits->block_bytes;
    AUGUR_RETURN_IF_ERROR(Read(&t.offset, absl::StrCat("the offset of ", what)));
    if (t.offset % f_->alignment_ != 0)
      return Err(absl::StrCat(what, " has offset ", t.offset, ", not a multiple of the alignment ", f_->alignment_));
    f_->tensor_index_[t.name] = f_->tensors_.size();
    f_->tensors_.push_back(std::move(t));
    return absl::OkStatus();
  }

  GgufFile* f_;
  const uint8_t* data_;
  uint64_t size_;
  uint64_t pos_ = 0;
};

absl::StatusOr<GgufFile> GgufFile::Open(const std::string& path) {
  GgufFile file;
  file.path_ = path;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return file.Error(absl::StrCat("cannot open: ", std::strerror(errno)));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return file.Error(absl::StrCat("cannot stat: ", std::strerror(err)));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return file.Error("not a regular file");
  }
  auto mapping = std::make_shared<Mapping>();
  mapping->size = static_cast<size_t>(st.st_size);
  if (mapping->size > 0) {
    void* p = mmap(nullptr, mapping->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      return file.Error(absl::StrCat("cannot map ", mapping->size, " bytes: ", std::strerror(err)));
    }
    mapping->data = static_cast<const uint8_t*>(p);
  }
  ::close(fd);  // the mapping stays valid
  file.file_size_ = mapping->size;
  file.map_ = std::move(mapping);
  GgufParser parser(&file, file.map_->data, file.file_size_);
  AUGUR_RETURN_IF_ERROR(parser.Parse());
  return file;
}

absl::Status GgufFile::Error(const std::string& msg) const {
  return absl::InvalidArgumentError(absl::StrCat("gguf: ", path_, ": ", msg));
}

const GgufValue* GgufFile::Find(const std::string& key) const {
  auto it = key_index_.find(key);
  return it == key_index_.end() ? nullptr : &metadata_[it->second].second;
}

const TensorInfo* GgufFile::FindTensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const uint8_t* GgufFile::TensorData(const TensorInfo& info) const { return map_->data + data_offset_ + info.offset; }

absl::StatusOr<const GgufValue*> GgufFile::Require(const std::string& key, ValueType want, const char* what) const {
  const GgufValue* v = Find(key);
  if (!v) return Error(absl::StrCat("key '", key, "' is missing"));
  if (v->type != want) return Error(absl::StrCat("key '", key, "' is ", Describe(*v), ", not ", what));
  return v;
}

absl::StatusOr<const GgufValue*> GgufFile::RequireArray(const std::string& key, const char* what) const {
  return Require(key, ValueType::kArray, what);
}

namespace {
template <typename T>
absl::StatusOr<T> IntegerGetter(const GgufFile& f, const std::string& key, const char* name) {
  const GgufValue* v = f.Find(key);
  if (!v)
    return absl::InvalidArgumentError(absl::StrCat("gguf: ", f.path(), ": key '", key, "' is missing"));
  int64_t s = 0;
  uint64_t u = 0;
  const int64_t lo = std::numeric_limits<T>::min();
  const uint64_t hi = static_cast<uint64_t>(std::numeric_limits<T>::max());
  if (!IntegerIn(*v, lo, hi, &s, &u))
    return absl::InvalidArgumentError(absl::StrCat("gguf: ", f.path(), ": key '", key, "' is ", Describe(*v),
                                                   ", not an integer that fits ", name));
  return std::numeric_limits<T>::is_signed ? static_cast<T>(s) : static_cast<T>(u);
}
}  // namespace

absl::StatusOr<uint32_t> GgufFile::GetU32(const std::string& key) const { return IntegerGetter<uint32_t>(*this, key, "u32"); }
absl::StatusOr<uint64_t> GgufFile::GetU64(const std::string& key) const { return IntegerGetter<uint64_t>(*this, key, "u64"); }
absl::StatusOr<int64_t> GgufFile::GetI64(const std::string& key) const { return IntegerGetter<int64_t>(*this, key, "i64"); }

absl::StatusOr<float> GgufFile::GetF32(const std::string& key) const {
  const GgufValue* v = Find(key);
  if (v && v->type == ValueType::kF64) return static_cast<float>(v->f);
  AUGUR_ASSIGN_OR_RETURN(v, Require(key, ValueType::kF32, "a float"));
  return static_cast<float>(v->f);
}

absl::StatusOr<bool> GgufFile::GetBool(const std::string& key) const {
  AUGUR_ASSIGN_OR_RETURN(const GgufValue* v, Require(key, ValueType::kBool, "a bool"));
  return v->u != 0;
}

absl::StatusOr<std::string> GgufFile::GetString(const std::string& key) const {
  AUGUR_ASSIGN_OR_RETURN(const GgufValue* v, Require(key, ValueType::kString, "a string"));
  return v->str;
}

absl::StatusOr<std::vector<std::string>> GgufFile::GetStringArray(const std::string& key) const {
  AUGUR_ASSIGN_OR_RETURN(const GgufValue* v, RequireArray(key, "an array of strings"));
  if (v->elem_type != ValueType::kString)
    return Error(absl::StrCat("key '", key, "' is ", Describe(*v), ", not an array of strings"));
  std::vector<std::string> out;
  out.reserve(v->items.size());
  for (const auto& item : v->items) out.push_back(item.str);
  return out;
}

absl::StatusOr<std::vector<int32_t>> GgufFile::GetI32Array(const std::string& key) const {
  AUGUR_ASSIGN_OR_RETURN(const GgufValue* v, RequireArray(key, "an array of integers"));
  if (!IsSigned(v->elem_type) && !IsUnsigned(v->elem_type))
    return Error(absl::StrCat("key '", key, "' is ", Describe(*v), ", not an array of integers"));
  std::vector<int32_t> out;
  out.reserve(v->items.size());
  for (size_t j = 0; j < v->items.size(); ++j) {
    int64_t s = 0;
    if (!IntegerIn(v->items[j], std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max(), &s, nullptr))
      return Error(absl::StrCat("key '", key, "' item ", j, " is ", Describe(v->items[j]), ", which does not fit i32"));
    out.push_back(static_cast<int32_t>(s));
  }
  return out;
}

absl::StatusOr<std::vector<float>> GgufFile::GetF32Array(const std::string& key) const {
  AUGUR_ASSIGN_OR_RETURN(const GgufValue* v, RequireArray(key, "an array of floats"));
  if (v->elem_type != ValueType::kF32 && v->elem_type != ValueType::kF64)
    return Error(absl::StrCat("key '", key, "' is ", Describe(*v), ", not an array of floats"));
  std::vector<float> out;
  out.reserve(v->items.size());
  for (const auto& item : v->items) out.push_back(static_cast<float>(item.f));
  return out;
}

absl::StatusOr<std::vector<float>> DequantizeTensor(const GgufFile& file, const TensorInfo& info) {
  const int64_t block = BlockSize(info.type);
  const int64_t row = info.dims.empty() ? 1 : info.dims[0];
  if (row % block != 0)
    return absl::InvalidArgumentError(absl::StrCat("gguf: ", file.path(), ": tensor '", info.name, "' has rows of ",
                                                   row, " values, not a multiple of ", GgmlTypeName(info.type),
                                                   "'s block of ", block));
  std::vector<float> out(static_cast<size_t>(info.num_values()));
  const absl::Status st = DequantizeRows(info.type, file.TensorData(info), info.bytes, info.num_values(), out.data());
  if (!st.ok())
    return absl::InvalidArgumentError(absl::StrCat("gguf: ", file.path(), ": tensor '", info.name, "': ", st.message()));
  return out;
}

}  // namespace augur::gguf
