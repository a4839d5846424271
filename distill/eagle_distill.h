// EAGLE-3 feature drafters by distillation (augur distill eagle): a one-layer head on the
// target's hidden states (core/eagle_head.h) learns the target's next-token distributions,
// trained with EAGLE-3's training-time test.
//
// Data, per micro-batch (a pure function of the seed and the batch index, so resume is
// exact): B windows of T tokens of the teacher store's training sequences (the target's own
// replies, augur distill gen). The target runs online on each window's sequence prefix (no
// gradients), so a window's rows have their whole sequence as context, as when the target
// serves: its hidden states at the configured layers are the head's input, its logits the
// labels. With cache_features the same rows come from an HDF5 cache instead (one target
// forward per teacher sequence, once; hidden states in float16, labels as the top k).
// Loss: the head unrolls K draft steps on its own outputs (step k at anchor t reads token
// t+1+k and step k-1's output, EagleHeadImpl::Unroll); each step's loss is the cross-entropy
// of its draft-vocabulary distribution against the target's distribution at position t+1+k
// restricted to the draft vocabulary and renormalized (forward KL up to a constant), over
// continuation positions; step k weighs decay^k.
// Validation: the last eval_sequences sequences, held out: per step k the top-1 agreement
// with the target's greedy token (acc_k, given the earlier steps' inputs were the target's
// tokens), the greedy chain's expected accepted length at gamma K (tau = 1 + mean accepted
// run), and the expected acceptance of sampling at step 0 (alpha = sum min(p, q)). <out>/best
// keeps the checkpoint of best held-out tau.
// Draft vocabulary: the N most frequent tokens of the teacher continuations
// (eval/draft_vocab.h), ascending target ids (d2t).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "train/trainer.h"

namespace augur::distill {

struct EagleDistillOptions {
  std::string target;            // checkpoint directory
  std::string teacher;           // teacher store (augur distill gen)
  std::vector<int64_t> layers;   // the target's taps; empty: 2, L/2, L-3
  int64_t draft_vocab = 8192;    // head rows (capped at the vocabulary); 0 = the whole vocabulary
  int64_t ttt_steps = 7;         // K unrolled steps (training-time test)
  double step_decay = 0.8;       // loss weight of step k: decay^k
  int64_t eval_sequences = 16;   // held out at the end of the store
  // Empty: the target runs online on every batch. Else an HDF5 feature cache
  // (distill/eagle_features.h), built on the first run and reused by later ones.
  std::string cache_features;
  int64_t cache_topk = 32;       // the target's top k kept per position in the cache
  train::TrainOptions train;     // out_dir, steps, batch, seq_len, lr, seed, resume, ...
  std::string command_line;

  absl::Status Validate() const;
  nlohmann::json ToJson() const;  // the objective's settings (train_config.json)
};

// Trains (or resumes) an eagle drafter into opts.train.out_dir.
absl::StatusOr<train::TrainResult> DistillEagle(const EagleDistillOptions& opts);

}  // namespace augur::distill
