// Test support for tests/python/test_gguf_dequant.py (not a user tool):
//   gguf_tool info FILE
//       GgufFile::Open and print {"version", "alignment", "data_offset", "metadata": {key: value},
//       "types": {key: value type}, "tensors": [{"name", "type", "dims", "shape", "offset",
//       "bytes"}]} as JSON to stdout (metadata in file order).
//   gguf_tool dequant FILE OUTDIR [NAME ...]
//       DequantizeTensor each tensor (or the named ones) and write OUTDIR/<name>.f32, raw
//       little-endian float32 in GGML order.
// Errors: one line on stderr, exit 1.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <string>
#include <vector>

#include "core/fs.h"
#include "quantize/gguf_reader.h"

namespace augur::gguf {
namespace {

using json = nlohmann::ordered_json;

int Fail(const std::string& msg) {
  std::fprintf(stderr, "gguf_tool: %s\n", msg.c_str());
  return 1;
}

json ToJson(const GgufValue& v) {
  switch (v.type) {
    case ValueType::kU8: case ValueType::kU16: case ValueType::kU32: case ValueType::kU64: return v.u;
    case ValueType::kI8: case ValueType::kI16: case ValueType::kI32: case ValueType::kI64: return v.i;
    case ValueType::kF32: case ValueType::kF64: return v.f;
    case ValueType::kBool: return v.u != 0;
    case ValueType::kString: return v.str;
    case ValueType::kArray: {
      json a = json::array();
      for (const auto& item : v.items) a.push_back(ToJson(item));
      return a;
    }
  }
  return nullptr;
}

std::string TypeOf(const GgufValue& v) {
  if (v.type != ValueType::kArray) return ValueTypeName(v.type);
  // Nested arrays: "array[array[i16]]" from the first item (empty inner arrays: "array[array]").
  if (v.elem_type == ValueType::kArray)
    return absl::StrCat("array[", v.items.empty() ? "array" : TypeOf(v.items[0]), "]");
  return absl::StrCat("array[", ValueTypeName(v.elem_type), "]");
}

int Info(const std::string& path) {
  auto f = GgufFile::Open(path);
  if (!f.ok()) return Fail(std::string(f.status().message()));
  json out;
  out["version"] = f->version();
  out["alignment"] = f->alignment();
  out["data_offset"] = f->data_offset();
  json meta = json::object(), types = json::object(), tensors = json::array();
  for (const auto& [key, value] : f->metadata()) {
    meta[key] = ToJson(value);
    types[key] = TypeOf(value);
  }
  for (const TensorInfo& t : f->tensors())
    tensors.push_back({{"name", t.name}, {"type", GgmlTypeName(t.type)}, {"type_id", static_cast<uint32_t>(t.type)},
                       {"dims", t.dims}, {"shape", t.shape()}, {"offset", t.offset}, {"bytes", t.bytes}});
  out["metadata"] = std::move(meta);
  out["types"] = std::move(types);
  out["tensors"] = std::move(tensors);
  std::printf("%s\n", out.dump(-1, ' ', false, json::error_handler_t::replace).c_str());
  return 0;
}

int Dequant(const std::string& path, const std::string& out_dir, const std::vector<std::string>& names) {
  auto f = GgufFile::Open(path);
  if (!f.ok()) return Fail(std::string(f.status().message()));
  if (auto st = MakeDirs(out_dir); !st.ok()) return Fail(std::string(st.message()));
  std::vector<const TensorInfo*> todo;
  if (names.empty()) {
    for (const TensorInfo& t : f->tensors()) todo.push_back(&t);
  } else {
    for (const auto& name : names) {
      const TensorInfo* t = f->FindTensor(name);
      if (!t) return Fail(absl::StrCat(path, ": no tensor '", name, "'"));
      todo.push_back(t);
    }
  }
  for (const TensorInfo* t : todo) {
    auto values = DequantizeTensor(*f, *t);
    if (!values.ok()) return Fail(std::string(values.status().message()));
    const std::string out = out_dir + "/" + t->name + ".f32";
    FILE* fp = std::fopen(out.c_str(), "wb");
    if (!fp) return Fail(absl::StrCat(out, ": cannot create"));
    const size_t n = values->size();
    const bool ok = std::fwrite(values->data(), sizeof(float), n, fp) == n;
    if (std::fclose(fp) != 0 || !ok) return Fail(absl::StrCat(out, ": write failed"));
  }
  return 0;
}

}  // namespace
}  // namespace augur::gguf

int main(int argc, char** argv) {
  using augur::gguf::Fail;
  const std::string cmd = argc > 1 ? argv[1] : "";
  if (cmd == "info" && argc == 3) return augur::gguf::Info(argv[2]);
  if (cmd == "dequant" && argc >= 4)
    return augur::gguf::Dequant(argv[2], argv[3], std::vector<std::string>(argv + 4, argv + argc));
  return Fail("usage: gguf_tool info FILE | gguf_tool dequant FILE OUTDIR [NAME ...]");
}
