// A small autoregressive model as drafter: gamma sequential one-token forwards on its own
// KV cache, rolled back to the longest prefix it shares with the accepted context.
#pragma once

#include "core/model.h"
#include "eval/drafter.h"

namespace augur {

class ArDrafter : public Drafter {
 public:
  // `capacity`: the longest context this drafter will see (prompt + max_new + gamma).
  ArDrafter(LlamaModel model, int64_t capacity, std::string name = "ar");
  std::string name() const override { return name_; }
  absl::Status Begin(const std::vector<int64_t>& prompt) override;
  Draft Propose(const std::vector<int64_t>& context, int64_t gamma, const SamplingParams& params,
                Sampler& sampler) override;

 private:
  LlamaModel model_;
  KVCache cache_;
  std::vector<int64_t> cached_;  // the tokens whose keys/values are in cache_
  std::string name_;
};

}  // namespace augur
