#include "datasets/build_store.h"

#include <absl/strings/str_cat.h>
#include <absl/strings/str_format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

#include "core/progress.h"
#include "core/tokenizer.h"
#include "datasets/token_store_writer.h"

namespace augur {
namespace {

// A batch holds at most this much text (or this many documents) before it is encoded.
constexpr size_t kBatchBytes = size_t{8} << 20;
constexpr size_t kBatchDocs = 1024;

struct Pending {
  std::string text, name;
  Split split = Split::kTrain;
  std::vector<int32_t> ids;
};

std::string Count(int64_t n) {
  if (n >= 10'000'000) return absl::StrFormat("%.1fM", n / 1e6);
  if (n >= 10'000) return absl::StrFormat("%.1fk", n / 1e3);
  return absl::StrCat(n);
}

// ids = [BOS +] Encode(text) + EOS for every pending document (BOS when the tokenizer adds one), on `threads` threads.
void EncodeBatch(const Tokenizer& tokenizer, std::vector<Pending>& batch, int threads) {
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i = next++; i < batch.size(); i = next++) {
      Pending& p = batch[i];
      std::vector<int32_t> body = tokenizer.Encode(p.text);
      p.ids.clear();
      p.ids.reserve(body.size() + 2);
      if (tokenizer.add_bos()) p.ids.push_back(tokenizer.bos_id());
      p.ids.insert(p.ids.end(), body.begin(), body.end());
      p.ids.push_back(tokenizer.eos_id());
    }
  };
  const int n = std::max(1, std::min<int>(threads, static_cast<int>(batch.size())));
  std::vector<std::thread> pool;
  for (int t = 1; t < n; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
}

}  // namespace

absl::StatusOr<BuildStoreSummary> BuildTokenStore(const Corpus& corpus, const Tokenizer& tokenizer,
                                                  const std::string& out_path,
                                                  const BuildStoreOptions& options) {
  if (options.valid_fraction < 0 || options.valid_fraction >= 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("data build: valid fraction ", options.valid_fraction, " outside [0, 1)"));
  }
  if ((tokenizer.add_bos() && tokenizer.bos_id() < 0) || tokenizer.eos_id() < 0) {
    return absl::InvalidArgumentError(absl::StrCat("data build: ", tokenizer.source(),
                                                   ": tokenizer has no BOS/EOS pieces"));
  }
  TokenStoreInfo meta;
  meta.tokenizer_fingerprint = tokenizer.fingerprint();
  meta.vocab_size = tokenizer.vocab_size();
  meta.bos_id = tokenizer.bos_id();
  meta.eos_id = tokenizer.eos_id();
  meta.sources = nlohmann::json(corpus.sources()).dump();
  meta.valid_fraction = options.valid_fraction;
  meta.created_by = options.created_by;
  // Absolute, so that a trainer run from another directory finds the tokenizer to ship.
  if (char* real = ::realpath(tokenizer.source().c_str(), nullptr)) {
    meta.tokenizer_path = real;
    std::free(real);
  }
  AUGUR_ASSIGN_OR_RETURN(std::unique_ptr<TokenStoreWriter> writer, TokenStoreWriter::Create(out_path, meta));
  const int threads = options.num_threads > 0
                          ? options.num_threads
                          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));

  BuildStoreSummary summary;
  auto start = std::chrono::steady_clock::now();
  std::unique_ptr<Progress> progress;
  if (options.progress) {
    progress = std::make_unique<Progress>("tokenizing", corpus.progress_total(), corpus.progress_unit());
  }
  auto status_text = [&] {
    double secs = std::max(1e-9, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    return absl::StrFormat("docs %s (%.0f/s) tokens %s (%.0fk/s)", Count(summary.docs), summary.docs / secs,
                           Count(summary.tokens), summary.tokens / secs / 1e3);
  };

  std::vector<Pending> batch;
  size_t batch_bytes = 0;
  auto flush = [&]() -> absl::Status {
    EncodeBatch(tokenizer, batch, threads);
    for (Pending& p : batch) {
      AUGUR_RETURN_IF_ERROR(writer->Add(p.ids, p.split, p.name));
      const int s = static_cast<int>(p.split);
      summary.docs += 1;
      summary.tokens += static_cast<int64_t>(p.ids.size());
      summary.bytes += static_cast<int64_t>(p.text.size());
      summary.split_docs[s] += 1;
      summary.split_tokens[s] += static_cast<int64_t>(p.ids.size());
    }
    batch.clear();
    batch_bytes = 0;
    return absl::OkStatus();
  };
  absl::Status st = corpus.ForEach(
      [&](const Document& doc) -> absl::Status {
        Pending p;
        p.text.assign(doc.text.data(), doc.text.size());
        p.name = doc.name;
        p.split = IsValidSplit(doc.split_key, options.valid_fraction) ? Split::kValid : Split::kTrain;
        batch_bytes += p.text.size();
        batch.push_back(std::move(p));
        if (batch_bytes >= kBatchBytes || batch.size() >= kBatchDocs) return flush();
        return absl::OkStatus();
      },
      [&](int64_t files, int64_t bytes) {
        if (progress) progress->update(corpus.progress_value(files, bytes), status_text());
      });
  if (st.ok()) st = flush();
  AUGUR_RETURN_IF_ERROR(st);  // (an unfinished bar is closed by its destructor)
  if (progress) progress->finish(status_text());
  if (summary.docs == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("data build: ", corpus.describe(), ": no documents (all inputs are empty)"));
  }
  if (summary.split_docs[static_cast<int>(Split::kTrain)] == 0) {
    return absl::InvalidArgumentError(absl::StrCat("data build: ", corpus.describe(), ": all ", summary.docs,
                                                   " documents fell into the valid split; lower --valid-fraction"));
  }
  AUGUR_RETURN_IF_ERROR(writer->Finish());
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

}  // namespace augur
