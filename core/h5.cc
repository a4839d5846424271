#include "core/h5.h"

#include <absl/strings/str_cat.h>

#include <algorithm>

#include "core/fs.h"

namespace augur::h5 {
namespace {

// HDF5 prints its error stack to stderr by default; the stack is per thread in the
// thread-safe build, so every entry point silences it for the calling thread.
void Quiet() {
  thread_local bool quiet = false;
  if (!quiet) {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    quiet = true;
  }
}

absl::Status Error(hid_t object, const std::string& what) {
  std::string detail = LastError();
  std::string where = object >= 0 ? Describe(object) : std::string("hdf5");
  return absl::InternalError(
      absl::StrCat("hdf5: ", where, ": ", what, detail.empty() ? "" : absl::StrCat(" (", detail, ")")));
}

// IEEE 754 half precision, the layout h5py maps to numpy float16.
hid_t HalfType() {
  static hid_t type = [] {
    hid_t t = H5Tcopy(H5T_IEEE_F32LE);
    H5Tset_fields(t, 15, 10, 5, 0, 10);
    H5Tset_size(t, 2);
    H5Tset_ebias(t, 15);
    H5Tlock(t);
    return t;
  }();
  return type;
}

hid_t StringType() {
  static hid_t type = [] {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    H5Tlock(t);
    return t;
  }();
  return type;
}

hid_t MemType(DType d) {
  switch (d) {
    case DType::kU8: return H5T_NATIVE_UINT8;
    case DType::kU16: return H5T_NATIVE_UINT16;
    case DType::kU32: return H5T_NATIVE_UINT32;
    case DType::kU64: return H5T_NATIVE_UINT64;
    case DType::kI8: return H5T_NATIVE_INT8;
    case DType::kI16: return H5T_NATIVE_INT16;
    case DType::kI32: return H5T_NATIVE_INT32;
    case DType::kI64: return H5T_NATIVE_INT64;
    case DType::kF16: return HalfType();
    case DType::kF32: return H5T_NATIVE_FLOAT;
    case DType::kF64: return H5T_NATIVE_DOUBLE;
    case DType::kString: return StringType();
  }
  return -1;
}

hid_t FileType(DType d) {
  switch (d) {
    case DType::kU8: return H5T_STD_U8LE;
    case DType::kU16: return H5T_STD_U16LE;
    case DType::kU32: return H5T_STD_U32LE;
    case DType::kU64: return H5T_STD_U64LE;
    case DType::kI8: return H5T_STD_I8LE;
    case DType::kI16: return H5T_STD_I16LE;
    case DType::kI32: return H5T_STD_I32LE;
    case DType::kI64: return H5T_STD_I64LE;
    case DType::kF16: return HalfType();
    case DType::kF32: return H5T_IEEE_F32LE;
    case DType::kF64: return H5T_IEEE_F64LE;
    case DType::kString: return StringType();
  }
  return -1;
}

// Maps a stored datatype back to the DType whose memory type reads it without loss.
DType ClassifyType(hid_t type) {
  H5T_class_t cls = H5Tget_class(type);
  size_t size = H5Tget_size(type);
  if (cls == H5T_STRING) return DType::kString;
  if (cls == H5T_FLOAT) return size == 2 ? DType::kF16 : size == 4 ? DType::kF32 : DType::kF64;
  bool is_signed = cls == H5T_INTEGER && H5Tget_sign(type) == H5T_SGN_2;
  switch (size) {
    case 1: return is_signed ? DType::kI8 : DType::kU8;
    case 2: return is_signed ? DType::kI16 : DType::kU16;
    case 4: return is_signed ? DType::kI32 : DType::kU32;
    default: return is_signed ? DType::kI64 : DType::kU64;
  }
}

herr_t WalkFirst(unsigned n, const H5E_error2_t* err, void* data) {
  auto* out = static_cast<std::string*>(data);
  if (n == 0 && err->desc != nullptr) *out = err->desc;
  return 0;
}

absl::Status WriteAttrTyped(hid_t loc, const std::string& name, hid_t file_type, hid_t mem_type,
                            const void* value) {
  Quiet();
  if (H5Aexists(loc, name.c_str()) > 0 && H5Adelete(loc, name.c_str()) < 0) {
    return Error(loc, absl::StrCat("cannot replace attribute '", name, "'"));
  }
  Handle space(H5Screate(H5S_SCALAR));
  Handle attr(H5Acreate2(loc, name.c_str(), file_type, space.get(), H5P_DEFAULT, H5P_DEFAULT));
  if (!attr.valid() || H5Awrite(attr.get(), mem_type, value) < 0) {
    return Error(loc, absl::StrCat("cannot write attribute '", name, "'"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Handle> OpenAttr(hid_t loc, const std::string& name) {
  Quiet();
  if (H5Aexists(loc, name.c_str()) <= 0) {
    return absl::NotFoundError(
        absl::StrCat("hdf5: ", Describe(loc), ": missing attribute '", name, "'"));
  }
  Handle attr(H5Aopen(loc, name.c_str(), H5P_DEFAULT));
  if (!attr.valid()) return Error(loc, absl::StrCat("cannot open attribute '", name, "'"));
  return attr;
}

// Default format bounds: files stay readable by older HDF5 (and h5py) builds.
absl::StatusOr<Handle> MakeFileAccess() { return Handle(H5Pcreate(H5P_FILE_ACCESS)); }

// Creates `name` under `loc` (intermediate groups too) with the given space and creation
// properties; shared by the extendible and fixed-size datasets.
Handle CreateDatasetHandle(hid_t loc, const std::string& name, DType dtype, hid_t space, hid_t dcpl) {
  Handle lcpl(H5Pcreate(H5P_LINK_CREATE));
  H5Pset_create_intermediate_group(lcpl.get(), 1);
  return Handle(H5Dcreate2(loc, name.c_str(), FileType(dtype), space, lcpl.get(), dcpl, H5P_DEFAULT));
}

}  // namespace

size_t DTypeSize(DType d) {
  switch (d) {
    case DType::kU8: case DType::kI8: return 1;
    case DType::kU16: case DType::kI16: case DType::kF16: return 2;
    case DType::kU32: case DType::kI32: case DType::kF32: return 4;
    case DType::kU64: case DType::kI64: case DType::kF64: return 8;
    case DType::kString: return sizeof(char*);
  }
  return 0;
}

const char* DTypeName(DType d) {
  switch (d) {
    case DType::kU8: return "uint8";
    case DType::kU16: return "uint16";
    case DType::kU32: return "uint32";
    case DType::kU64: return "uint64";
    case DType::kI8: return "int8";
    case DType::kI16: return "int16";
    case DType::kI32: return "int32";
    case DType::kI64: return "int64";
    case DType::kF16: return "float16";
    case DType::kF32: return "float32";
    case DType::kF64: return "float64";
    case DType::kString: return "string";
  }
  return "?";
}

Handle& Handle::operator=(Handle&& o) noexcept {
  if (this != &o) {
    reset();
    id_ = o.id_;
    o.id_ = -1;
  }
  return *this;
}

void Handle::reset() {
  if (id_ < 0) return;
  Quiet();
  switch (H5Iget_type(id_)) {
    case H5I_FILE: H5Fclose(id_); break;
    case H5I_GROUP: H5Gclose(id_); break;
    case H5I_DATASET: H5Dclose(id_); break;
    case H5I_ATTR: H5Aclose(id_); break;
    case H5I_DATASPACE: H5Sclose(id_); break;
    case H5I_DATATYPE: H5Tclose(id_); break;
    case H5I_GENPROP_LST: H5Pclose(id_); break;
    default: break;
  }
  id_ = -1;
}

std::string LastError() {
  std::string out;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, WalkFirst, &out);
  H5Eclear2(H5E_DEFAULT);
  return out;
}

std::string Describe(hid_t object) {
  char file[4096] = {0};
  char name[4096] = {0};
  ssize_t nf = H5Fget_name(object, file, sizeof(file));
  ssize_t nn = H5Iget_name(object, name, sizeof(name));
  std::string out = nf > 0 ? std::string(file) : std::string("hdf5");
  if (nn > 0 && H5Iget_type(object) != H5I_FILE) absl::StrAppend(&out, ":", name);
  return out;
}

absl::StatusOr<File> File::Create(const std::string& path) {
  Quiet();
  AUGUR_ASSIGN_OR_RETURN(Handle fapl, MakeFileAccess());
  File f;
  f.handle_ = Handle(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()));
  if (!f.handle_.valid()) {
    std::string detail = LastError();
    return absl::InternalError(absl::StrCat("hdf5: ", path, ": cannot create file",
                                            detail.empty() ? "" : absl::StrCat(" (", detail, ")")));
  }
  f.path_ = path;
  return f;
}

absl::StatusOr<File> File::Open(const std::string& path, bool writable) {
  Quiet();
  if (IsDirectory(path)) {
    return absl::InvalidArgumentError(absl::StrCat("hdf5: ", path, ": is a directory, not an HDF5 file"));
  }
  if (!FileExists(path)) return absl::NotFoundError(absl::StrCat("hdf5: ", path, ": no such file"));
  if (H5Fis_hdf5(path.c_str()) <= 0) {
    H5Eclear2(H5E_DEFAULT);
    return absl::InvalidArgumentError(absl::StrCat("hdf5: ", path, ": not an HDF5 file"));
  }
  AUGUR_ASSIGN_OR_RETURN(Handle fapl, MakeFileAccess());
  File f;
  f.handle_ = Handle(H5Fopen(path.c_str(), writable ? H5F_ACC_RDWR : H5F_ACC_RDONLY, fapl.get()));
  if (!f.handle_.valid()) {
    std::string detail = LastError();
    return absl::InternalError(absl::StrCat("hdf5: ", path, ": cannot open",
                                            detail.empty() ? "" : absl::StrCat(" (", detail, ")")));
  }
  f.path_ = path;
  return f;
}

absl::Status File::Close() {
  if (!handle_.valid()) return absl::OkStatus();
  Quiet();
  hid_t id = handle_.get();
  if (H5Fflush(id, H5F_SCOPE_GLOBAL) < 0) return Error(id, "cannot flush");
  handle_.reset();
  return absl::OkStatus();
}

bool Exists(hid_t loc, const std::string& path) {
  Quiet();
  // H5Lexists fails (rather than returning 0) when an intermediate group is missing, so
  // walk the path one component at a time.
  std::string prefix;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    std::string part = path.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (!part.empty()) {
      prefix = prefix.empty() ? part : absl::StrCat(prefix, "/", part);
      if (H5Lexists(loc, prefix.c_str(), H5P_DEFAULT) <= 0) {
        H5Eclear2(H5E_DEFAULT);
        return false;
      }
    }
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return !prefix.empty();
}

absl::Status CreateGroup(hid_t loc, const std::string& path) {
  Quiet();
  Handle lcpl(H5Pcreate(H5P_LINK_CREATE));
  H5Pset_create_intermediate_group(lcpl.get(), 1);
  Handle group(H5Gcreate2(loc, path.c_str(), lcpl.get(), H5P_DEFAULT, H5P_DEFAULT));
  if (!group.valid()) return Error(loc, absl::StrCat("cannot create group '", path, "'"));
  return absl::OkStatus();
}

bool HasAttr(hid_t loc, const std::string& name) {
  Quiet();
  return H5Aexists(loc, name.c_str()) > 0;
}

absl::Status WriteAttr(hid_t loc, const std::string& name, int64_t value) {
  return WriteAttrTyped(loc, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &value);
}

absl::Status WriteAttr(hid_t loc, const std::string& name, double value) {
  return WriteAttrTyped(loc, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &value);
}

absl::Status WriteAttr(hid_t loc, const std::string& name, const std::string& value) {
  const char* ptr = value.c_str();
  return WriteAttrTyped(loc, name, StringType(), StringType(), &ptr);
}

absl::Status WriteAttr(hid_t loc, const std::string& name, const char* value) {
  return WriteAttr(loc, name, std::string(value));
}

absl::StatusOr<int64_t> ReadAttrInt(hid_t loc, const std::string& name) {
  AUGUR_ASSIGN_OR_RETURN(Handle attr, OpenAttr(loc, name));
  Handle type(H5Aget_type(attr.get()));
  H5T_class_t cls = H5Tget_class(type.get());
  if (cls != H5T_INTEGER) {
    return absl::InvalidArgumentError(
        absl::StrCat("hdf5: ", Describe(loc), ": attribute '", name, "' is not an integer"));
  }
  int64_t value = 0;
  if (H5Aread(attr.get(), H5T_NATIVE_INT64, &value) < 0) {
    return Error(loc, absl::StrCat("cannot read attribute '", name, "'"));
  }
  return value;
}

absl::StatusOr<double> ReadAttrDouble(hid_t loc, const std::string& name) {
  AUGUR_ASSIGN_OR_RETURN(Handle attr, OpenAttr(loc, name));
  Handle type(H5Aget_type(attr.get()));
  H5T_class_t cls = H5Tget_class(type.get());
  if (cls != H5T_INTEGER && cls != H5T_FLOAT) {
    return absl::InvalidArgumentError(
        absl::StrCat("hdf5: ", Describe(loc), ": attribute '", name, "' is not a number"));
  }
  double value = 0;
  if (H5Aread(attr.get(), H5T_NATIVE_DOUBLE, &value) < 0) {
    return Error(loc, absl::StrCat("cannot read attribute '", name, "'"));
  }
  return value;
}

absl::StatusOr<std::string> ReadAttrString(hid_t loc, const std::string& name) {
  AUGUR_ASSIGN_OR_RETURN(Handle attr, OpenAttr(loc, name));
  Handle type(H5Aget_type(attr.get()));
  if (H5Tget_class(type.get()) != H5T_STRING) {
    return absl::InvalidArgumentError(
        absl::StrCat("hdf5: ", Describe(loc), ": attribute '", name, "' is not a string"));
  }
  if (H5Tis_variable_str(type.get()) > 0) {
    char* ptr = nullptr;
    if (H5Aread(attr.get(), StringType(), &ptr) < 0) {
      return Error(loc, absl::StrCat("cannot read attribute '", name, "'"));
    }
    std::string out = ptr != nullptr ? std::string(ptr) : std::string();
    H5free_memory(ptr);
    return out;
  }
  size_t size = H5Tget_size(type.get());
  std::string buf(size, '\0');
  Handle mem(H5Tcopy(H5T_C_S1));
  H5Tset_size(mem.get(), size);
  if (H5Aread(attr.get(), mem.get(), buf.data()) < 0) {
    return Error(loc, absl::StrCat("cannot read attribute '", name, "'"));
  }
  buf.resize(std::min(buf.size(), buf.find('\0')));
  return buf;
}

int64_t Dataset::row_elements() const {
  int64_t n = 1;
  for (size_t i = 1; i < shape_.size(); ++i) n *= shape_[i];
  return n;
}

absl::StatusOr<Dataset> Dataset::CreateExtendible(hid_t loc, const std::string& name, DType dtype,
                                                  const std::vector<int64_t>& inner,
                                                  int64_t chunk_rows, int deflate_level) {
  Quiet();
  std::vector<hsize_t> dims = {0}, maxdims = {H5S_UNLIMITED}, chunk = {static_cast<hsize_t>(std::max<int64_t>(1, chunk_rows))};
  for (int64_t d : inner) {
    dims.push_back(static_cast<hsize_t>(d));
    maxdims.push_back(static_cast<hsize_t>(d));
    chunk.push_back(static_cast<hsize_t>(d));
  }
  Handle space(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), maxdims.data()));
  Handle dcpl(H5Pcreate(H5P_DATASET_CREATE));
  H5Pset_chunk(dcpl.get(), static_cast<int>(chunk.size()), chunk.data());
  if (deflate_level > 0 && dtype != DType::kString) {
    H5Pset_shuffle(dcpl.get());
    H5Pset_deflate(dcpl.get(), static_cast<unsigned>(deflate_level));
  }
  Dataset ds;
  ds.handle_ = CreateDatasetHandle(loc, name, dtype, space.get(), dcpl.get());
  if (!ds.handle_.valid()) return Error(loc, absl::StrCat("cannot create dataset '", name, "'"));
  ds.shape_.assign(dims.begin(), dims.end());
  ds.dtype_ = dtype;
  ds.describe_ = Describe(ds.handle_.get());
  return ds;
}

absl::StatusOr<Dataset> Dataset::CreateFixed(hid_t loc, const std::string& name, DType dtype,
                                             const std::vector<int64_t>& shape, const void* data,
                                             int deflate_level) {
  Quiet();
  std::vector<hsize_t> dims(shape.begin(), shape.end());
  Handle space(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr));
  Handle dcpl(H5Pcreate(H5P_DATASET_CREATE));
  int64_t total = 1;
  for (int64_t d : shape) total *= d;
  if (deflate_level > 0 && total > 0 && dtype != DType::kString) {
    std::vector<hsize_t> chunk = dims;
    chunk[0] = std::min<hsize_t>(dims[0], 1 << 16);
    H5Pset_chunk(dcpl.get(), static_cast<int>(chunk.size()), chunk.data());
    H5Pset_shuffle(dcpl.get());
    H5Pset_deflate(dcpl.get(), static_cast<unsigned>(deflate_level));
  }
  Dataset ds;
  ds.handle_ = CreateDatasetHandle(loc, name, dtype, space.get(), dcpl.get());
  if (!ds.handle_.valid()) return Error(loc, absl::StrCat("cannot create dataset '", name, "'"));
  ds.shape_ = shape;
  ds.dtype_ = dtype;
  ds.describe_ = Describe(ds.handle_.get());
  if (total > 0 && H5Dwrite(ds.handle_.get(), MemType(dtype), H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) {
    return Error(ds.handle_.get(), "cannot write");
  }
  return ds;
}

absl::StatusOr<Dataset> Dataset::Open(hid_t loc, const std::string& name, size_t chunk_cache_bytes) {
  Quiet();
  if (!Exists(loc, name)) {
    return absl::NotFoundError(absl::StrCat("hdf5: ", Describe(loc), ": missing dataset '", name, "'"));
  }
  Handle dapl(H5Pcreate(H5P_DATASET_ACCESS));
  if (chunk_cache_bytes > 0) {
    H5Pset_chunk_cache(dapl.get(), 12421, chunk_cache_bytes, 0.75);
  }
  Dataset ds;
  ds.handle_ = Handle(H5Dopen2(loc, name.c_str(), dapl.get()));
  if (!ds.handle_.valid()) return Error(loc, absl::StrCat("cannot open dataset '", name, "'"));
  ds.describe_ = Describe(ds.handle_.get());
  Handle space(H5Dget_space(ds.handle_.get()));
  int rank = H5Sget_simple_extent_ndims(space.get());
  if (rank < 0) return Error(ds.handle_.get(), "cannot read shape");
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  ds.shape_.assign(dims.begin(), dims.end());
  Handle type(H5Dget_type(ds.handle_.get()));
  ds.dtype_ = ClassifyType(type.get());
  return ds;
}

absl::Status Dataset::Select(int64_t begin, int64_t count, Handle* file_space,
                             Handle* mem_space) const {
  if (shape_.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("hdf5: ", describe_, ": scalar dataset has no rows"));
  }
  if (begin < 0 || count < 0 || begin + count > shape_[0]) {
    return absl::OutOfRangeError(absl::StrCat("hdf5: ", describe_, ": rows [", begin, ", ",
                                              begin + count, ") outside [0, ", shape_[0], ")"));
  }
  *file_space = Handle(H5Dget_space(handle_.get()));
  std::vector<hsize_t> start(shape_.size(), 0), cnt(shape_.begin(), shape_.end());
  start[0] = static_cast<hsize_t>(begin);
  cnt[0] = static_cast<hsize_t>(count);
  if (H5Sselect_hyperslab(file_space->get(), H5S_SELECT_SET, start.data(), nullptr, cnt.data(),
                          nullptr) < 0) {
    return Error(handle_.get(), "cannot select rows");
  }
  *mem_space = Handle(H5Screate_simple(static_cast<int>(cnt.size()), cnt.data(), nullptr));
  return absl::OkStatus();
}

absl::Status Dataset::Append(const void* data, int64_t rows, DType mem) {
  Quiet();
  if (rows <= 0) return absl::OkStatus();
  std::vector<hsize_t> dims(shape_.begin(), shape_.end());
  dims[0] += static_cast<hsize_t>(rows);
  if (H5Dset_extent(handle_.get(), dims.data()) < 0) return Error(handle_.get(), "cannot extend");
  int64_t begin = shape_[0];
  shape_[0] = static_cast<int64_t>(dims[0]);
  return WriteRows(begin, rows, mem, data);
}

absl::Status Dataset::WriteRows(int64_t begin, int64_t count, DType mem, const void* data) {
  Quiet();
  if (count == 0) return absl::OkStatus();
  Handle fs, ms;
  AUGUR_RETURN_IF_ERROR(Select(begin, count, &fs, &ms));
  if (H5Dwrite(handle_.get(), MemType(mem), ms.get(), fs.get(), H5P_DEFAULT, data) < 0) {
    return Error(handle_.get(), absl::StrCat("cannot write rows [", begin, ", ", begin + count, ")"));
  }
  return absl::OkStatus();
}

absl::Status Dataset::ReadRows(int64_t begin, int64_t count, DType mem, void* out) const {
  Quiet();
  if (mem == DType::kString) {
    return absl::InvalidArgumentError(absl::StrCat("hdf5: ", describe_, ": use ReadStrings for strings"));
  }
  if (count == 0) return absl::OkStatus();
  Handle fs, ms;
  AUGUR_RETURN_IF_ERROR(Select(begin, count, &fs, &ms));
  if (H5Dread(handle_.get(), MemType(mem), ms.get(), fs.get(), H5P_DEFAULT, out) < 0) {
    return Error(handle_.get(), absl::StrCat("cannot read rows [", begin, ", ", begin + count,
                                             ") as ", DTypeName(mem)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> Dataset::ReadStrings(int64_t begin, int64_t count) const {
  Quiet();
  if (dtype_ != DType::kString) {
    return absl::InvalidArgumentError(absl::StrCat("hdf5: ", describe_, ": not a string dataset"));
  }
  std::vector<std::string> out;
  if (count == 0) return out;
  Handle fs, ms;
  AUGUR_RETURN_IF_ERROR(Select(begin, count, &fs, &ms));
  Handle type(H5Dget_type(handle_.get()));
  std::vector<char*> ptrs(static_cast<size_t>(count * row_elements()), nullptr);
  if (H5Tis_variable_str(type.get()) <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("hdf5: ", describe_, ": fixed-length strings are not supported"));
  }
  if (H5Dread(handle_.get(), StringType(), ms.get(), fs.get(), H5P_DEFAULT, ptrs.data()) < 0) {
    return Error(handle_.get(), "cannot read strings");
  }
  out.reserve(ptrs.size());
  for (char* p : ptrs) out.emplace_back(p != nullptr ? p : "");
  H5Dvlen_reclaim(StringType(), ms.get(), H5P_DEFAULT, ptrs.data());
  return out;
}

}  // namespace augur::h5
