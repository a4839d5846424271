// Streams documents into a token store. Tokens, offsets, names and split lists are
// buffered and appended in blocks, so memory stays bounded whatever the corpus size.
// The file is written under a temporary name and renamed by Finish(); a writer destroyed
// before Finish() removes its temporary file.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/h5.h"
#include "core/status.h"
#include "datasets/token_store.h"

namespace augur {

class TokenStoreWriter {
 public:
  // `meta` supplies the tokenizer fields, sources, valid_fraction and created_by; the
  // counts are filled in by the writer.
  static absl::StatusOr<std::unique_ptr<TokenStoreWriter>> Create(const std::string& path,
                                                                  const TokenStoreInfo& meta);
  ~TokenStoreWriter();

  // Appends one document's tokens (as stored: the caller adds BOS/EOS).
  absl::Status Add(const std::vector<int32_t>& tokens, Split split, const std::string& name);
  // Writes the attributes, closes and renames into place.
  absl::Status Finish();

  const TokenStoreInfo& info() const { return info_; }

 private:
  TokenStoreWriter() = default;
  absl::Status FlushNames();
  void CloseDatasets();

  std::string path_, tmp_;
  TokenStoreInfo info_;
  h5::File file_;
  h5::Dataset tokens_, offsets_, names_, split_ds_[2];
  std::unique_ptr<h5::Appender<uint32_t>> tokens_out_;
  std::unique_ptr<h5::Appender<uint64_t>> offsets_out_, split_out_[2];
  std::vector<std::string> names_buffer_;
  bool finished_ = false;
};

}  // namespace augur
