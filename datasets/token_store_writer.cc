#include "datasets/token_store_writer.h"

#include <absl/strings/str_cat.h>

#include <cstdio>

#include "core/fs.h"

namespace augur {
namespace {

constexpr int64_t kTokenChunk = 1 << 16;     // elements per /tokens chunk
constexpr int64_t kIndexChunk = 1 << 12;     // elements per offsets/split/names chunk
constexpr size_t kTokenBuffer = 1 << 20;     // tokens buffered before a write
constexpr size_t kIndexBuffer = 1 << 14;
constexpr int kDeflate = 1;                  // shuffle + deflate 1: ~2x smaller, fast

}  // namespace

absl::StatusOr<std::unique_ptr<TokenStoreWriter>> TokenStoreWriter::Create(
    const std::string& path, const TokenStoreInfo& meta) {
  if (meta.vocab_size <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("token store: ", path, ": vocab size must be positive"));
  }
  if (size_t slash = path.rfind('/'); slash != std::string::npos && slash > 0) {
    AUGUR_RETURN_IF_ERROR(MakeDirs(path.substr(0, slash)));
  }
  std::unique_ptr<TokenStoreWriter> w(new TokenStoreWriter());
  w->path_ = path;
  w->tmp_ = TempPathFor(path);
  w->info_ = meta;
  w->info_.format_version = kTokenStoreVersion;
  w->info_.num_docs = w->info_.num_tokens = 0;
  w->info_.split_docs[0] = w->info_.split_docs[1] = 0;
  w->info_.split_tokens[0] = w->info_.split_tokens[1] = 0;
  AUGUR_ASSIGN_OR_RETURN(w->file_, h5::File::Create(w->tmp_));
  const hid_t root = w->file_.id();
  const h5::DType token_type = meta.vocab_size <= 65535 ? h5::DType::kU16 : h5::DType::kU32;
  AUGUR_ASSIGN_OR_RETURN(w->tokens_, h5::Dataset::CreateExtendible(root, "tokens", token_type, {},
                                                                   kTokenChunk, kDeflate));
  AUGUR_ASSIGN_OR_RETURN(w->offsets_, h5::Dataset::CreateExtendible(root, "doc_offsets", h5::DType::kU64,
                                                                    {}, kIndexChunk, kDeflate));
  AUGUR_ASSIGN_OR_RETURN(w->names_, h5::Dataset::CreateExtendible(root, "doc_names", h5::DType::kString,
                                                                  {}, kIndexChunk, 0));
  for (int s = 0; s < 2; ++s) {
    AUGUR_ASSIGN_OR_RETURN(
        w->split_ds_[s],
        h5::Dataset::CreateExtendible(root, absl::StrCat("split/", SplitName(static_cast<Split>(s))),
                                      h5::DType::kU64, {}, kIndexChunk, kDeflate));
    w->split_out_[s] = std::make_unique<h5::Appender<uint64_t>>(&w->split_ds_[s], kIndexBuffer);
  }
  w->tokens_out_ = std::make_unique<h5::Appender<uint32_t>>(&w->tokens_, kTokenBuffer);
  w->offsets_out_ = std::make_unique<h5::Appender<uint64_t>>(&w->offsets_, kIndexBuffer);
  AUGUR_RETURN_IF_ERROR(w->offsets_out_->Push(0));
  return w;
}

TokenStoreWriter::~TokenStoreWriter() {
  if (finished_) return;
  CloseDatasets();
  (void)file_.Close();
  std::remove(tmp_.c_str());
}

void TokenStoreWriter::CloseDatasets() {
  tokens_out_.reset();
  offsets_out_.reset();
  split_out_[0].reset();
  split_out_[1].reset();
  tokens_ = h5::Dataset();
  offsets_ = h5::Dataset();
  names_ = h5::Dataset();
  split_ds_[0] = h5::Dataset();
  split_ds_[1] = h5::Dataset();
}

absl::Status TokenStoreWriter::Add(const std::vector<int32_t>& tokens, Split split,
                                   const std::string& name) {
  if (finished_) return absl::FailedPreconditionError("token store: Add after Finish");
  for (int32_t id : tokens) {
    if (id < 0 || id >= info_.vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat("token store: ", name, ": token id ", id,
                                                     " outside the vocabulary [0, ", info_.vocab_size, ")"));
    }
  }
  const int s = static_cast<int>(split);
  AUGUR_RETURN_IF_ERROR(tokens_out_->Push(tokens.begin(), tokens.end()));
  info_.num_tokens += static_cast<int64_t>(tokens.size());
  AUGUR_RETURN_IF_ERROR(offsets_out_->Push(static_cast<uint64_t>(info_.num_tokens)));
  AUGUR_RETURN_IF_ERROR(split_out_[s]->Push(static_cast<uint64_t>(info_.num_docs)));
  info_.split_docs[s] += 1;
  info_.split_tokens[s] += static_cast<int64_t>(tokens.size());
  info_.num_docs += 1;
  names_buffer_.push_back(name);
  if (names_buffer_.size() >= kIndexBuffer) AUGUR_RETURN_IF_ERROR(FlushNames());
  return absl::OkStatus();
}

absl::Status TokenStoreWriter::FlushNames() {
  if (names_buffer_.empty()) return absl::OkStatus();
  std::vector<const char*> ptrs;
  ptrs.reserve(names_buffer_.size());
  for (const auto& n : names_buffer_) ptrs.push_back(n.c_str());
  AUGUR_RETURN_IF_ERROR(names_.Append(ptrs.data(), static_cast<int64_t>(ptrs.size()), h5::DType::kString));
  names_buffer_.clear();
  return absl::OkStatus();
}

absl::Status TokenStoreWriter::Finish() {
  if (finished_) return absl::OkStatus();
  AUGUR_RETURN_IF_ERROR(tokens_out_->Flush());
  AUGUR_RETURN_IF_ERROR(offsets_out_->Flush());
  AUGUR_RETURN_IF_ERROR(split_out_[0]->Flush());
  AUGUR_RETURN_IF_ERROR(split_out_[1]->Flush());
  AUGUR_RETURN_IF_ERROR(FlushNames());
  const hid_t root = file_.id();
  const TokenStoreInfo& m = info_;
  AUGUR_RETURN_IF_ERROR(h5::WriteAttr(root, "format", kTokenStoreFormat));
  AUGUR_RETURN_IF_ERROR(h5::WriteAttr(root, "format_version", m.format_version));
  AUGUR_RETURN_IF_ERROR(h5::WriteAttr(root, "tokenizer_fingerprint", m.tokenizer_fingerprint));
  AUGUR_RETURN_IF_ERROR(h5::WriteAttr(root, "vocab_size", m.vocab_size));
  AUGUR_RETURN_IF_ERROR(h5::WriteAttr(root, "bos_id", m.bos_id));
  AUGUR_RETURN_IF_ERROR(h5::WriteAttr(root, "eos_id", m.eos_id));
  AUGUR_RETURN_IF_ERROR(h5::WriteAttr(root, "sources", m.sources.empty() ? std::string("[]") : m.sources));
  AUGUR_RETURN_IF_ERROR(h5::WriteAttr(root, "valid_fraction", m.valid_fraction));
  AUGUR_RETURN_IF_ERROR(h5::WriteAttr(root, "split_method",
                                      "valid iff splitmix64(fnv1a64(split key)) / 2^64 < valid_fraction"));
  AUGUR_RETURN_IF_ERROR(h5::WriteAttr(root, "num_docs", m.num_docs));
  AUGUR_RETURN_IF_ERROR(h5::WriteAttr(root, "num_tokens", m.num_tokens));
  for (int s = 0; s < 2; ++s) {
    const char* name = SplitName(static_cast<Split>(s));
    AUGUR_RETURN_IF_ERROR(h5::WriteAttr(root, absl::StrCat("num_", name, "_docs"), m.split_docs[s]));
    AUGUR_RETURN_IF_ERROR(h5::WriteAttr(root, absl::StrCat("num_", name, "_tokens"), m.split_tokens[s]));
  }
  AUGUR_RETURN_IF_ERROR(h5::WriteAttr(root, "created_by", m.created_by));
  AUGUR_RETURN_IF_ERROR(h5::WriteAttr(root, "tokenizer_path", m.tokenizer_path));
  CloseDatasets();
  AUGUR_RETURN_IF_ERROR(file_.Close());
  AUGUR_RETURN_IF_ERROR(CommitTempFile(tmp_, path_));
  finished_ = true;
  return absl::OkStatus();
}

}  // namespace augur
