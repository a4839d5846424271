#include "quantize/gguf_writer.h"

#include <cstdio>
#include <cstring>

#include "core/fs.h"

namespace augur::gguf {
namespace {

// Appends the little-endian bytes of a trivially copyable value (the hosts augur runs on,
// x86-64 and aarch64, are little-endian).
template <typename T>
void Put(std::string* out, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  out->append(b, sizeof(T));
}

void PutString(std::string* out, const std::string& s) {
  Put<uint64_t>(out, s.size());
  out->append(s);
}

uint64_t AlignUp(uint64_t n) { return (n + kGgufAlignment - 1) / kGgufAlignment * kGgufAlignment; }

}  // namespace

GgufWriter::GgufWriter() { SetU32("general.alignment", kGgufAlignment); }

void GgufWriter::Key(const std::string& key, ValueType type) {
  AUGUR_CHECK(keys_.insert(key).second, "GGUF key set twice: ", key);
  PutString(&kv_, key);
  Put<uint32_t>(&kv_, static_cast<uint32_t>(type));
  ++num_kv_;
}

void GgufWriter::SetU8(const std::string& k, uint8_t v) { Key(k, ValueType::kU8); Put(&kv_, v); }
void GgufWriter::SetI8(const std::string& k, int8_t v) { Key(k, ValueType::kI8); Put(&kv_, v); }
void GgufWriter::SetU16(const std::string& k, uint16_t v) { Key(k, ValueType::kU16); Put(&kv_, v); }
void GgufWriter::SetI16(const std::string& k, int16_t v) { Key(k, ValueType::kI16); Put(&kv_, v); }
void GgufWriter::SetU32(const std::string& k, uint32_t v) { Key(k, ValueType::kU32); Put(&kv_, v); }
void GgufWriter::SetI32(const std::string& k, int32_t v) { Key(k, ValueType::kI32); Put(&kv_, v); }
void GgufWriter::SetU64(const std::string& k, uint64_t v) { Key(k, ValueType::kU64); Put(&kv_, v); }
void GgufWriter::SetI64(const std::string& k, int64_t v) { Key(k, ValueType::kI64); Put(&kv_, v); }
void GgufWriter::SetF32(const std::string& k, float v) { Key(k, ValueType::kF32); Put(&kv_, v); }
void GgufWriter::SetF64(const std::string& k, double v) { Key(k, ValueType::kF64); Put(&kv_, v); }
void GgufWriter::SetBool(const std::string& k, bool v) {
  Key(k, ValueType::kBool);
  Put<uint8_t>(&kv_, v ? 1 : 0);
}
void GgufWriter::SetString(const std::string& k, const std::string& v) {
  Key(k, ValueType::kString);
  PutString(&kv_, v);
}

void GgufWriter::SetStringArray(const std::string& k, const std::vector<std::string>& v) {
  Key(k, ValueType::kArray);
  Put<uint32_t>(&kv_, static_cast<uint32_t>(ValueType::kString));
  Put<uint64_t>(&kv_, v.size());
  for (const auto& s : v) PutString(&kv_, s);
}

void GgufWriter::SetF32Array(const std::string& k, const std::vector<float>& v) {
  Key(k, ValueType::kArray);
  Put<uint32_t>(&kv_, static_cast<uint32_t>(ValueType::kF32));
  Put<uint64_t>(&kv_, v.size());
  for (float x : v) Put(&kv_, x);
}

void GgufWriter::SetI32Array(const std::string& k, const std::vector<int32_t>& v) {
  Key(k, ValueType::kArray);
  Put<uint32_t>(&kv_, static_cast<uint32_t>(ValueType::kI32));
  Put<uint64_t>(&kv_, v.size());
  for (int32_t x : v) Put(&kv_, x);
}

void GgufWriter::AddTensor(const std::string& name, const std::vector<int64_t>& shape, GgmlType type,
                           std::vector<uint8_t> data) {
  AUGUR_CHECK(!shape.empty() && shape.size() <= 4, "GGUF tensor ", name, ": rank ", shape.size());
  int64_t rows = 1;
  for (size_t i = 0; i + 1 < shape.size(); ++i) rows *= shape[i];
  AUGUR_CHECK(shape.back() % BlockSize(type) == 0, "GGUF tensor ", name, ": row length ", shape.back(),
              " is not a multiple of ", BlockSize(type));
  AUGUR_CHECK(data.size() == rows * RowBytes(type, shape.back()), "GGUF tensor ", name, ": ", data.size(),
              " bytes for ", rows, " rows of ", shape.back(), " ", GgmlTypeName(type));
  for (const auto& t : tensors_) AUGUR_CHECK(t.name != name, "GGUF tensor added twice: ", name);
  Tensor t{name, shape, type, std::move(data), data_size_};
  data_size_ = AlignUp(data_size_ + t.data.size());
  tensors_.push_back(std::move(t));
}

std::string GgufWriter::SerializeHeader() const {
  std::string out;
  out.append("GGUF", 4);
  Put<uint32_t>(&out, kGgufVersion);
  Put<uint64_t>(&out, tensors_.size());
  Put<uint64_t>(&out, num_kv_);
  out.append(kv_);
  for (const auto& t : tensors_) {
    PutString(&out, t.name);
    Put<uint32_t>(&out, static_cast<uint32_t>(t.shape.size()));
    for (auto it = t.shape.rbegin(); it != t.shape.rend(); ++it) Put<uint64_t>(&out, static_cast<uint64_t>(*it));
    Put<uint32_t>(&out, static_cast<uint32_t>(t.type));
    Put<uint64_t>(&out, t.offset);
  }
  out.resize(AlignUp(out.size()), '\0');
  return out;
}

uint64_t GgufWriter::file_size() const { return SerializeHeader().size() + data_size_; }

absl::Status GgufWriter::Write(const std::string& path) const {
  const std::string tmp = TempPathFor(path);
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) return absl::PermissionDeniedError(absl::StrCat("gguf: ", path, ": cannot create ", tmp, ": ", std::strerror(errno)));
  const std::string header = SerializeHeader();
  bool ok = std::fwrite(header.data(), 1, header.size(), f) == header.size();
  static const char kZeros[kGgufAlignment] = {};
  uint64_t pos = 0;
  for (const auto& t : tensors_) {
    if (!ok) break;
    ok = std::fwrite(kZeros, 1, t.offset - pos, f) == t.offset - pos &&
         std::fwrite(t.data.data(), 1, t.data.size(), f) == t.data.size();
    pos = t.offset + t.data.size();
  }
  if (ok) ok = std::fwrite(kZeros, 1, data_size_ - pos, f) == data_size_ - pos;
  const int err = ok ? 0 : errno;
  if (std::fclose(f) != 0 && ok) ok = false;
  if (!ok) {
    std::remove(tmp.c_str());
    return absl::InternalError(absl::StrCat("gguf: ", path, ": write failed: ", std::strerror(err ? err : errno)));
  }
  return CommitTempFile(tmp, path);
}

}  // namespace augur::gguf
