// A GGUF v3 file writer (the format llama.cpp loads; spec: ggml's docs/gguf.md).
//
// Layout, all little-endian:
//   "GGUF" | u32 version=3 | u64 n_tensors | u64 n_kv
//   n_kv x  { string key | u32 value_type | value }        (string = u64 length + bytes)
//   n_tensors x { string name | u32 n_dims | u64 ne[n_dims] | u32 ggml_type | u64 offset }
//   zero padding to `alignment`, then the data section: each tensor at its offset (relative to
//   the section start, a multiple of `alignment`), zero padding between tensors.
// ne is GGML's dimension order, innermost first: a PyTorch [rows, cols] matrix is ne = {cols,
// rows}; the bytes are the same row-major rows. The alignment written here is 32, the GGUF
// default, and is also stated as general.alignment so that readers need not assume it.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "core/status.h"
#include "quantize/gguf_quant.h"

namespace augur::gguf {

inline constexpr uint32_t kGgufVersion = 3;
inline constexpr uint32_t kGgufAlignment = 32;

// gguf_type (value types of metadata).
enum class ValueType : uint32_t {
  kU8 = 0, kI8 = 1, kU16 = 2, kI16 = 3, kU32 = 4, kI32 = 5, kF32 = 6, kBool = 7,
  kString = 8, kArray = 9, kU64 = 10, kI64 = 11, kF64 = 12,
};

class GgufWriter {
 public:
  GgufWriter();  // adds general.alignment

  // Metadata, kept in the order added. A key may be set once (an internal check).
  void SetU8(const std::string& key, uint8_t v);
  void SetI8(const std::string& key, int8_t v);
  void SetU16(const std::string& key, uint16_t v);
  void SetI16(const std::string& key, int16_t v);
  void SetU32(const std::string& key, uint32_t v);
  void SetI32(const std::string& key, int32_t v);
  void SetU64(const std::string& key, uint64_t v);
  void SetI64(const std::string& key, int64_t v);
  void SetF32(const std::string& key, float v);
  void SetF64(const std::string& key, double v);
  void SetBool(const std::string& key, bool v);
  void SetString(const std::string& key, const std::string& v);
  void SetStringArray(const std::string& key, const std::vector<std::string>& v);
  void SetF32Array(const std::string& key, const std::vector<float>& v);
  void SetI32Array(const std::string& key, const std::vector<int32_t>& v);

  // `shape` in PyTorch order (outermost first); `data` holds the encoded rows of `type`
  // (its size is checked against the shape).
  void AddTensor(const std::string& name, const std::vector<int64_t>& shape, GgmlType type,
                 std::vector<uint8_t> data);

  // Header + tensor infos + padding (everything before the data section).
  std::string SerializeHeader() const;
  // Writes the whole file to a temporary sibling and renames it onto `path`.
  absl::Status Write(const std::string& path) const;
  uint64_t file_size() const;

  size_t num_kv() const { return num_kv_; }
  size_t num_tensors() const { return tensors_.size(); }

 private:
  struct Tensor {
    std::string name;
    std::vector<int64_t> shape;
    GgmlType type;
    std::vector<uint8_t> data;
    uint64_t offset = 0;
  };
  void Key(const std::string& key, ValueType type);

  std::string kv_;  // serialized key/value pairs
  size_t num_kv_ = 0;
  std::set<std::string> keys_;
  std::vector<Tensor> tensors_;
  uint64_t data_size_ = 0;  // data section bytes, padded
};

}  // namespace augur::gguf
