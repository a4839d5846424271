// The EAGLE-3 feature drafter (`--drafter eagle:DIR`): one layer over the target's hidden
// states (core/eagle_head.h), on its own KV cache (runtime/eagle_decoder.h).
//
// Cache invariant: entries [0, real) hold the verified pairs (context[P+1], fc(taps at P)),
// P < real. A request brings the taps of the newly verified tokens; the drafter appends
// their pairs (the last one pairs the pending token with the taps before it, and its output
// predicts the first guess), then drafts on its own outputs:
//   chain  gamma tokens, step k feeding (guess k, output of step k-1) at position P+k;
//   tree   EAGLE-2's dynamic tree: from the pending token, expand the `topk` best nodes of
//          each depth (by cumulative draft log-probability) into their `topk` children, for
//          gamma depths; keep the best `nodes` of all; each expanded node attends to the
//          verified entries and its own ancestors only.
// Draft entries are dropped after each proposal (the cache returns to `real`), so the next
// request's verified taps replace them.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "eval/drafter.h"
#include "runtime/eagle_decoder.h"

namespace augur {

struct EagleTreeOptions {
  int64_t topk = 4;    // children per expanded node, and nodes expanded per depth
  int64_t nodes = 16;  // nodes kept in the tree (pending token not counted)
};

class EagleDrafter : public Drafter {
 public:
  using TreeOptions = EagleTreeOptions;
  EagleDrafter(std::unique_ptr<EagleDecoder> decoder, std::string name, TreeOptions tree = TreeOptions());

  std::string name() const override { return name_; }
  absl::Status Begin(const std::vector<int64_t>& prompt) override;
  std::vector<int64_t> target_layers() const override { return decoder_->config().target_layers; }
  Draft Propose(const DraftRequest& req) override;
  Draft ProposeTree(const DraftRequest& req) override;
  const EagleDecoder& decoder() const { return *decoder_; }

 private:
  // Appends the pairs of the request's verified taps; returns the last pair's output [1, d]
  // and its draft-vocabulary logits [Nd], or false when the request cannot be drafted from
  // (no taps, or taps that do not continue the cache).
  bool Ingest(const DraftRequest& req, at::Tensor* out, at::Tensor* logits);

  std::unique_ptr<EagleDecoder> decoder_;
  std::string name_;
  TreeOptions tree_;
  std::vector<int64_t> ids_;  // draft id -> target id
  int64_t real_ = 0;          // verified entries in the cache
};

}  // namespace augur
