// safetensors files (https://github.com/huggingface/safetensors): an 8-byte little-endian
// header length N, N bytes of JSON ({name: {dtype, shape, data_offsets}, "__metadata__":
// {str: str}}), then one byte buffer that the tensors tile exactly, without holes or overlap.
//
// Reading maps the file (mmap) and validates the whole header before any tensor is read, so
// a truncated or corrupt file is one error naming the file and the problem. Writing goes to
// a temporary name that is renamed into place. Sharded checkpoints are several files plus
// model.safetensors.index.json ({"metadata": {"total_size": bytes}, "weight_map":
// {name: file}}), the layout transformers' save_pretrained writes.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace augur {

// The dtypes augur reads and writes: floats for model weights, integers for quantized
// payloads (int8/int4 packed in U8/I8, scales in F16/F32, indices in I32/I64), masks in BOOL
// (one byte each, 0 or 1: EAGLE-3's t2d).
enum class StDtype { kF32, kF16, kBF16, kF64, kI8, kU8, kI32, kI64, kBool };

std::string StDtypeName(StDtype d);              // "F32", ...
int64_t StDtypeSize(StDtype d);                  // bytes per element
absl::StatusOr<StDtype> StDtypeFromName(std::string_view name);
absl::StatusOr<StDtype> StDtypeFromTorch(c10::ScalarType t);
c10::ScalarType StDtypeToTorch(StDtype d);

struct StTensorInfo {
  std::string name;
  StDtype dtype = StDtype::kF32;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte range relative to the start of the data buffer
  int64_t numel() const;
};

// "[704,256]"
std::string ShapeString(const std::vector<int64_t>& shape);
std::string ShapeString(at::IntArrayRef shape);

// One safetensors file, mapped read-only for the lifetime of the object.
class SafetensorsFile {
 public:
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Open(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  // Tensors in data order (ascending offsets).
  const std::vector<StTensorInfo>& tensors() const { return tensors_; }
  const StTensorInfo* Find(std::string_view name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // The raw little-endian bytes of a tensor, valid while this object lives.
  std::string_view Bytes(const StTensorInfo& info) const;
  // A CPU tensor (an owned copy) in the file's dtype.
  at::Tensor Read(const StTensorInfo& info) const;
  absl::StatusOr<at::Tensor> Read(std::string_view name) const;

 private:
  SafetensorsFile() = default;
  std::string path_;
  const uint8_t* map_ = nullptr;
  size_t map_size_ = 0;
  const uint8_t* data_ = nullptr;  // start of the byte buffer
  std::vector<StTensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> index_;
  std::map<std::string, std::string> metadata_;
};

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

// Writes `tensors` (any device; written as stored, so convert dtype first) in the given
// order to `path`, atomically. "format": "pt" is always added to the metadata, which
// transformers requires.
absl::Status WriteSafetensors(const std::string& path, const NamedTensors& tensors,
                              const std::map<std::string, std::string>& metadata = {});

// The weights of a model directory: model.safetensors, or shards listed by
// model.safetensors.index.json. model.safetensors wins when both exist (as in transformers).
class SafetensorsCheckpoint {
 public:
  static absl::StatusOr<SafetensorsCheckpoint> Open(const std::string& dir);
  // True when `dir` holds model.safetensors or model.safetensors.index.json.
  static bool Exists(const std::string& dir);

  // All tensor names, sorted.
  std::vector<std::string> names() const;
  // The file holding `name` and its entry; nullptr when absent.
  const SafetensorsFile* FileOf(std::string_view name) const;
  const StTensorInfo* Find(std::string_view name) const;
  absl::StatusOr<at::Tensor> Read(std::string_view name) const;
  bool sharded() const { return files_.size() > 1 || !index_path_.empty(); }
  const std::vector<std::shared_ptr<SafetensorsFile>>& files() const { return files_; }

 private:
  std::vector<std::shared_ptr<SafetensorsFile>> files_;
  std::map<std::string, size_t, std::less<>> where_;  // name -> files_ index
  std::string index_path_;
};

// Writes tensors into `dir` as transformers does: one model.safetensors when
// max_shard_bytes is 0 or everything fits in one shard; otherwise
// model-0000i-of-0000N.safetensors plus model.safetensors.index.json. Files of an earlier
// save in `dir` that the new layout does not use (old shards, a stale index or single
// file) are removed after the new files are in place; until then the directory still
// loads as the old checkpoint. A tensor larger than max_shard_bytes gets a shard of its own.
absl::Status WriteSafetensorsCheckpoint(const std::string& dir, const NamedTensors& tensors,
                                        int64_t max_shard_bytes,
                                        const std::map<std::string, std::string>& metadata = {});

inline constexpr const char* kSafetensorsSingleName = "model.safetensors";
inline constexpr const char* kSafetensorsIndexName = "model.safetensors.index.json";

}  // namespace augur
