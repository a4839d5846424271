// A GGUF reader (versions 2 and 3; the layout is in gguf_writer.h and docs/FORMATS.md). The file
// is mapped read-only; metadata is parsed into values, tensor data stays in the mapping.
//
// The input is untrusted: every count, string length, array length, dimension count (<= 4),
// dimension product and tensor extent is checked against the real file size before anything
// is allocated, and every problem is a one-line error naming the file, e.g.
//   "gguf: /x/model.gguf: tensor 'blk.0.attn_q.weight' (offset 123, 4096 bytes) extends past
//    the end of the file (2000 bytes)".
// Tensor types: the GgmlType table (gguf_quant.h); any other type value is refused.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"
#include "quantize/gguf_quant.h"
#include "quantize/gguf_writer.h"  // ValueType

namespace augur::gguf {

const char* ValueTypeName(ValueType t);  // "u8", ..., "string", "array"

// One metadata value. Integers keep their type; `u` holds unsigned ones and bool (0/1), `i`
// signed ones, `f` f32/f64 (an f32 exactly), `str` a string, and an array has `elem_type` and
// `items` (each item's `type` is elem_type; arrays may nest).
struct GgufValue {
  ValueType type = ValueType::kU8;
  uint64_t u = 0;
  int64_t i = 0;
  double f = 0;
  std::string str;
  ValueType elem_type = ValueType::kU8;
  std::vector<GgufValue> items;

  bool is_integer() const;
};

struct TensorInfo {
  std::string name;
  std::vector<int64_t> dims;  // GGML order (ne), innermost first; at most 4
  GgmlType type = GgmlType::kF32;
  uint64_t offset = 0;  // from the start of the data section
  uint64_t bytes = 0;   // bytes of data

  int64_t num_values() const;
  // PyTorch order, outermost first (dims reversed): ne {576, 49152} -> [49152, 576].
  std::vector<int64_t> shape() const;
};

class GgufFile {
 public:
  static absl::StatusOr<GgufFile> Open(const std::string& path);

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint64_t file_size() const { return file_size_; }
  uint32_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }  // start of the data section in the file

  // Metadata in file order; Find returns nullptr when the key is absent.
  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return metadata_; }
  bool Has(const std::string& key) const { return Find(key) != nullptr; }
  const GgufValue* Find(const std::string& key) const;

  // Typed getters: a one-line error when the key is missing or its value does not have the type
  // asked for. Integer getters take any integer type whose value fits; float getters take f32
  // or f64 (GetF32 rounds an f64).
  absl::StatusOr<uint32_t> GetU32(const std::string& key) const;
  absl::StatusOr<uint64_t> GetU64(const std::string& key) const;
  absl::StatusOr<int64_t> GetI64(const std::string& key) const;
  absl::StatusOr<float> GetF32(const std::string& key) const;
  absl::StatusOr<bool> GetBool(const std::string& key) const;
  absl::StatusOr<std::string> GetString(const std::string& key) const;
  absl::StatusOr<std::vector<std::string>> GetStringArray(const std::string& key) const;
  absl::StatusOr<std::vector<int32_t>> GetI32Array(const std::string& key) const;
  absl::StatusOr<std::vector<float>> GetF32Array(const std::string& key) const;

  // Tensor infos in file order; FindTensor returns nullptr when the name is absent.
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* FindTensor(const std::string& name) const;
  // The first byte of a tensor's data (info.bytes bytes; aligned to alignment() in the file).
  const uint8_t* TensorData(const TensorInfo& info) const;

 private:
  struct Mapping;
  GgufFile() = default;
  friend class GgufParser;

  absl::StatusOr<const GgufValue*> Require(const std::string& key, ValueType want, const char* what) const;
  absl::StatusOr<const GgufValue*> RequireArray(const std::string& key, const char* what) const;
  absl::Status Error(const std::string& msg) const;

  std::string path_;
  std::shared_ptr<const Mapping> map_;  // shared: a GgufFile copies cheaply
  uint64_t file_size_ = 0;
  uint32_t version_ = 0;
  uint32_t alignment_ = kGgufAlignment;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, GgufValue>> metadata_;
  std::map<std::string, size_t> key_index_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t> tensor_index_;
};

// A whole tensor as float32 values (GGML order: row after row of dims[0] values). Errors when
// the innermost dimension is not a multiple of the type's block size.
absl::StatusOr<std::vector<float>> DequantizeTensor(const GgufFile& file, const TensorInfo& info);

}  // namespace augur::gguf
