// Prompt lookup ("a search engine as the prophet" over the context itself): find the most
// recent earlier occurrence of the context's last n tokens (n from max_ngram down to
// min_ngram) and propose the tokens that followed it. No model, no training.
#pragma once

#include "eval/drafter.h"

namespace augur {

class PromptLookupDrafter : public Drafter {
 public:
  explicit PromptLookupDrafter(int64_t max_ngram = 3, int64_t min_ngram = 1)
      : max_ngram_(max_ngram), min_ngram_(min_ngram) {}
  std::string name() const override { return "prompt-lookup"; }
  absl::Status Begin(const std::vector<int64_t>& prompt) override { return absl::OkStatus(); }
  Draft Propose(const DraftRequest& req) override;

  // The lookup itself, for tests and other retrieval drafters.
  static std::vector<int64_t> Lookup(const std::vector<int64_t>& context, int64_t gamma, int64_t max_ngram,
                                     int64_t min_ngram);

 private:
  int64_t max_ngram_, min_ngram_;
};

}  // namespace augur
