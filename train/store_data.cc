#include "train/store_data.h"

#include <torch/torch.h>

#include <absl/strings/str_split.h>

#include <memory>
#include <vector>

#include "core/fs.h"
#include "core/tokenizer.h"
#include "datasets/token_store.h"
#include "datasets/token_windows.h"

namespace augur::train {
namespace {

// Validation windows come from a sampler of their own with a fixed seed, so every run
// (and every resume) is scored on the same windows whatever its training seed.
constexpr uint64_t kValidSeed = 0x5eed0fa11da7a;

// Identifies the store's content cheaply: its attributes and document boundaries.
std::string StoreFingerprint(const TokenStore& store) {
  const TokenStoreInfo& i = store.info();
  std::string key = absl::StrCat("v", i.format_version, "|", i.tokenizer_fingerprint, "|", i.vocab_size, "|",
                                 i.num_docs, "|", i.num_tokens, "|", i.split_docs[0], "|", i.split_docs[1], "|",
                                 i.split_tokens[0], "|", i.split_tokens[1], "|");
  const auto& off = store.doc_offsets();
  key.append(reinterpret_cast<const char*>(off.data()), off.size() * sizeof(int64_t));
  for (int s = 0; s < 2; ++s) {
    const auto& docs = store.split_docs(static_cast<Split>(s));
    key.append(reinterpret_cast<const char*>(docs.data()), docs.size() * sizeof(int64_t));
  }
  return Fingerprint(key);
}

}  // namespace

std::string TokenizerFromCreatedBy(const std::string& created_by) {
  std::vector<std::string> words = absl::StrSplit(created_by, ' ', absl::SkipEmpty());
  for (size_t i = 0; i < words.size(); ++i) {
    if (words[i] == "--tokenizer" && i + 1 < words.size()) return words[i + 1];
    if (words[i].rfind("--tokenizer=", 0) == 0) return words[i].substr(12);
  }
  return "";
}

absl::StatusOr<TrainData> OpenStoreData(const std::string& path, const StoreDataOptions& opts,
                                        std::vector<std::string>* warnings) {
  AUGUR_ASSIGN_OR_RETURN(std::shared_ptr<const TokenStore> store, TokenStore::Open(path));
  TrainData data;
  data.source = path;
  data.vocab_size = store->info().vocab_size;
  data.tokenizer_fingerprint = store->info().tokenizer_fingerprint;
  data.data_fingerprint = StoreFingerprint(*store);

  AUGUR_ASSIGN_OR_RETURN(WindowSampler train_sampler, WindowSampler::Create(store, Split::kTrain, opts.seed));
  auto train = std::make_shared<WindowSampler>(std::move(train_sampler));
  if (train->stream().size() == 0)
    return absl::InvalidArgumentError(absl::StrCat("train: ", path, ": the train split is empty"));
  data.train = [train](int64_t index, int64_t b, int64_t t) { return train->Batch(index, b, t); };

  const int64_t valid_tokens = store->split_tokens(Split::kValid);
  if (valid_tokens > opts.seq_len && valid_tokens > 1) {
    AUGUR_ASSIGN_OR_RETURN(WindowSampler valid_sampler, WindowSampler::Create(store, Split::kValid, kValidSeed));
    auto valid = std::make_shared<WindowSampler>(std::move(valid_sampler));
    data.valid = [valid](int64_t index, int64_t b, int64_t t) { return valid->Batch(index, b, t); };
  } else if (warnings) {
    warnings->push_back(absl::StrCat(path, ": the valid split has ", valid_tokens, " tokens, fewer than --seq-len + 1 (",
                                     opts.seq_len + 1, "); validation loss is not computed"));
  }

  // The tokenizer to ship with the checkpoints: explicit, else the one the store was built with.
  std::string tok = opts.tokenizer;
  const bool explicit_tok = !tok.empty();
  std::vector<std::string> candidates = {tok};
  if (!explicit_tok) {
    // The recorded path is relative to wherever `augur data build` ran; also try its last
    // component next to the store (runs/x/corpus.h5 + runs/x/tokenizer).
    tok = TokenizerFromCreatedBy(store->info().created_by);
    candidates = {tok};
    std::string name = tok;
    while (name.size() > 1 && name.back() == '/') name.pop_back();
    if (auto slash = name.rfind('/'); slash != std::string::npos) name = name.substr(slash + 1);
    const auto store_slash = path.rfind('/');
    const std::string sibling = (store_slash == std::string::npos ? std::string(".") : path.substr(0, store_slash)) + "/" + name;
    if (!name.empty() && sibling != tok) candidates.push_back(sibling);
  }
  if (!tok.empty()) {
    absl::Status st;
    for (const auto& candidate : candidates) {
      auto tokenizer = Tokenizer::Load(candidate);
      st = tokenizer.ok() ? store->Check(*tokenizer) : tokenizer.status();
      if (st.ok()) {
        data.tokenizer_model = IsDirectory(candidate) ? FindTokenizerFile(candidate) : candidate;
        break;
      }
    }
    if (!st.ok() && explicit_tok) return st;
    if (!st.ok() && warnings) {
      warnings->push_back(absl::StrCat("the tokenizer recorded in ", path, " (", tok, ") is not usable (",
                                       st.message(), "); pass --tokenizer DIR to copy one into the checkpoint"));
    }
  } else if (warnings) {
    warnings->push_back(absl::StrCat(path, " does not name its tokenizer; pass --tokenizer DIR so that the "
                                           "checkpoint carries tokenizer.model"));
  }
  return data;
}

}  // namespace augur::train
