// Small RAII helpers over the HDF5 C API, shared by the token store and the teacher store.
// Every function returns a Status whose message names the file and the object
// ("hdf5: data.h5:/tokens: ..."), with HDF5's own innermost error appended; HDF5's habit
// of printing its error stack to stderr is switched off.
//
// Layout conventions: 1-D or N-D datasets grow along dimension 0 ("rows"), chunked and
// deflate-compressed; scalar attributes are int64, double or variable-length UTF-8 strings
// (h5py reads them as int, float and str).
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace augur::h5 {

// Element types. kF16 is IEEE half (h5py reads it as numpy float16); in memory it is raw
// 16-bit patterns (uint16_t). kString is a variable-length UTF-8 string (memory: const char*).
enum class DType { kU8, kU16, kU32, kU64, kI8, kI16, kI32, kI64, kF16, kF32, kF64, kString };

size_t DTypeSize(DType dtype);  // bytes per element in memory
const char* DTypeName(DType dtype);

template <typename T>
constexpr DType DTypeOf();
template <> constexpr DType DTypeOf<uint8_t>() { return DType::kU8; }
template <> constexpr DType DTypeOf<uint16_t>() { return DType::kU16; }
template <> constexpr DType DTypeOf<uint32_t>() { return DType::kU32; }
template <> constexpr DType DTypeOf<uint64_t>() { return DType::kU64; }
template <> constexpr DType DTypeOf<int8_t>() { return DType::kI8; }
template <> constexpr DType DTypeOf<int16_t>() { return DType::kI16; }
template <> constexpr DType DTypeOf<int32_t>() { return DType::kI32; }
template <> constexpr DType DTypeOf<int64_t>() { return DType::kI64; }
template <> constexpr DType DTypeOf<float>() { return DType::kF32; }
template <> constexpr DType DTypeOf<double>() { return DType::kF64; }

// Owns one HDF5 identifier of any kind and closes it with the matching H5*close.
class Handle {
 public:
  Handle() = default;
  explicit Handle(hid_t id) : id_(id) {}
  ~Handle() { reset(); }
  Handle(Handle&& o) noexcept : id_(o.id_) { o.id_ = -1; }
  Handle& operator=(Handle&& o) noexcept;
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;

  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }
  void reset();

 private:
  hid_t id_ = -1;
};

class File {
 public:
  File() = default;
  // Creates (truncating) a file for writing.
  static absl::StatusOr<File> Create(const std::string& path);
  // Opens an existing file; the error says whether it is missing or not HDF5.
  static absl::StatusOr<File> Open(const std::string& path, bool writable = false);

  hid_t id() const { return handle_.get(); }
  bool is_open() const { return handle_.valid(); }
  const std::string& path() const { return path_; }
  // Flushes and closes, reporting failures (the destructor closes silently).
  absl::Status Close();

 private:
  Handle handle_;
  std::string path_;
};

// "file.h5:/group/name" for messages.
std::string Describe(hid_t object);
// The innermost message on this thread's HDF5 error stack ("" if none).
std::string LastError();

// Link paths are relative to `loc` (a file id means the root group); "a/b" is allowed.
bool Exists(hid_t loc, const std::string& path);
// Creates the group and any missing parents.
absl::Status CreateGroup(hid_t loc, const std::string& path);

// Scalar attributes on the object `loc` (file id = root group). Writing replaces.
bool HasAttr(hid_t loc, const std::string& name);
absl::Status WriteAttr(hid_t loc, const std::string& name, int64_t value);
absl::Status WriteAttr(hid_t loc, const std::string& name, double value);
absl::Status WriteAttr(hid_t loc, const std::string& name, const std::string& value);
absl::Status WriteAttr(hid_t loc, const std::string& name, const char* value);
// Reading converts between integer/float widths; a string attribute may be fixed or
// variable length. A missing attribute is NotFound naming it.
absl::StatusOr<int64_t> ReadAttrInt(hid_t loc, const std::string& name);
absl::StatusOr<double> ReadAttrDouble(hid_t loc, const std::string& name);
absl::StatusOr<std::string> ReadAttrString(hid_t loc, const std::string& name);

class Dataset {
 public:
  Dataset() = default;

  // An empty dataset of shape [0, inner...] that grows along dim 0 without limit.
  // chunk_rows rows per chunk; deflate_level 0 = no compression (1..9 adds shuffle+deflate).
  static absl::StatusOr<Dataset> CreateExtendible(hid_t loc, const std::string& name,
                                                  DType dtype, const std::vector<int64_t>& inner,
                                                  int64_t chunk_rows, int deflate_level);
  // A fixed-shape dataset written at once from `data` (memory type = dtype).
  static absl::StatusOr<Dataset> CreateFixed(hid_t loc, const std::string& name, DType dtype,
                                             const std::vector<int64_t>& shape, const void* data,
                                             int deflate_level = 0);
  // chunk_cache_bytes > 0 sizes the raw chunk cache (helps repeated random reads).
  static absl::StatusOr<Dataset> Open(hid_t loc, const std::string& name,
                                      size_t chunk_cache_bytes = 0);

  hid_t id() const { return handle_.get(); }
  bool is_open() const { return handle_.valid(); }
  const std::vector<int64_t>& shape() const { return shape_; }
  int64_t rows() const { return shape_.empty() ? 1 : shape_[0]; }
  int64_t row_elements() const;  // product of the inner dimensions
  DType dtype() const { return dtype_; }
  const std::string& describe() const { return describe_; }

  // Grows dim 0 by `rows` and writes them from `data` (memory layout: row-major, type mem).
  absl::Status Append(const void* data, int64_t rows, DType mem);
  // Reads rows [begin, begin+count) into `out`, converting to `mem` (strings: ReadStrings).
  // For kString datasets, Append/WriteRows take an array of const char*.
  absl::Status ReadRows(int64_t begin, int64_t count, DType mem, void* out) const;
  absl::Status WriteRows(int64_t begin, int64_t count, DType mem, const void* data);

  template <typename T>
  absl::StatusOr<std::vector<T>> ReadAll() const {
    std::vector<T> out(static_cast<size_t>(rows() * row_elements()));
    AUGUR_RETURN_IF_ERROR(ReadRows(0, rows(), DTypeOf<T>(), out.data()));
    return out;
  }
  absl::StatusOr<std::vector<std::string>> ReadStrings(int64_t begin, int64_t count) const;

 private:
  absl::Status Select(int64_t begin, int64_t count, Handle* file_space, Handle* mem_space) const;
  Handle handle_;
  std::vector<int64_t> shape_;
  DType dtype_ = DType::kU8;
  std::string describe_;
};

// Buffers rows for a 1-D extendible dataset and appends them in blocks, so a writer's
// memory stays bounded however much it writes. T = memory element type.
template <typename T>
class Appender {
 public:
  Appender() = default;
  Appender(Dataset* dataset, size_t buffer_rows) : dataset_(dataset), limit_(buffer_rows) {
    buffer_.reserve(buffer_rows);
  }
  absl::Status Push(const T& value) {
    buffer_.push_back(value);
    return buffer_.size() >= limit_ ? Flush() : absl::OkStatus();
  }
  template <typename It>
  absl::Status Push(It first, It last) {
    for (; first != last; ++first) AUGUR_RETURN_IF_ERROR(Push(static_cast<T>(*first)));
    return absl::OkStatus();
  }
  absl::Status Flush() {
    if (buffer_.empty()) return absl::OkStatus();
    absl::Status st = dataset_->Append(buffer_.data(), static_cast<int64_t>(buffer_.size()),
                                       DTypeOf<T>());
    buffer_.clear();
    return st;
  }

 private:
  Dataset* dataset_ = nullptr;
  size_t limit_ = 0;
  std::vector<T> buffer_;
};

}  // namespace augur::h5
