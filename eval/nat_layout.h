// The input layout of a NAT (non-autoregressive, parallel) drafter: a causal LM that
// proposes gamma tokens in one forward by reading gamma-1 mask tokens (a reserved id, <mask>
// in augur's tokenizers) after the last real token. One layout for inference and training,
// so that a trained slot sees at inference exactly what it saw in training.
//
// Which slot predicts what (a slot at position p predicts the token at p+1, as in an AR LM):
//   slot of the last real token c[n-1] (position n-1)  -> offset 1, the token c[n]
//   mask slot j, 1 <= j < gamma (position n-1+j)       -> offset j+1, the token c[n+j]
// Every slot sees the real prefix c[0..n-1] and the mask slots before it; never a drafted
// token (the tokens are drafted independently, one per slot, from one forward).
//
// Inference (NatDraftInput): the drafter's cache holds c[0..P-1]; one forward appends the
// R = n-P real tokens not cached yet, then gamma-1 masks, at positions P, P+1, ...: that
// is plain causal attention over the appended block (given explicitly all the same).
//
// Training (PackNatWindow, PARD / ParallelSpec style): a window x[0..L-1] and anchors
// a_1 < ... < a_G in [0, L-gamma] become ONE sequence of T = L + G*(gamma-1) slots
//   x[0..L-1] | group(a_1) | ... | group(a_G) | padding up to total_len
// where group(a) holds gamma-1 masks at positions a+1..a+gamma-1. Attention: real slot i
// sees real slots j <= i; mask slot j of group(a) sees real slots 0..a and slots 1..j of
// its own group and nothing else (no real token after its anchor, no other group); a
// padding slot sees only itself. So group(a) computes exactly what an inference forward
// with context x[0..a] computes, and real slot i is the offset-1 prediction for context
// x[0..i] (the same as inference with anchor i). Targets: real slot i -> row i (offset 1);
// mask slot j of group(a) -> row a+j (offset j+1), where row r is the target's
// distribution of x[r+1] given x[0..r] (a teacher-store row). Every target row lies in
// [0, L-1], which is why anchors stop at L-gamma.
//
// Shapes: T slots, L window tokens, G groups.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "core/status.h"

namespace augur {

struct NatInput {
  std::vector<int64_t> ids;        // [T]
  std::vector<int64_t> positions;  // [T]
  at::Tensor attn_mask;            // bool [T,T]: true where slot i may attend to slot j
};

// real: the context tokens not in the cache yet (at least the last one); cached: the cache
// length P. The slot predicting offset k (1..gamma) is NatDraftSlot(real.size(), k).
NatInput NatDraftInput(const std::vector<int64_t>& real, int64_t cached, int64_t gamma, int64_t mask_id);
inline int64_t NatDraftSlot(int64_t num_real, int64_t offset) { return num_real - 1 + (offset - 1); }

struct NatPacked : NatInput {
  // One entry per slot that carries a training target (padding carries none).
  std::vector<int64_t> pred_slot;    // slot index in [0, T)
  std::vector<int64_t> pred_offset;  // 1..gamma
  std::vector<int64_t> pred_row;     // window row in [0, L) whose distribution is the target
  std::vector<int64_t> anchors;      // the groups' anchors, ascending
};

// The packed training sequence above. anchors: distinct, each in [0, L-gamma] (any order;
// sorted here). total_len: pad to this many slots (0 = no padding; else >= the packed
// length). Errors name the bad argument.
absl::StatusOr<NatPacked> PackNatWindow(const std::vector<int64_t>& window, std::vector<int64_t> anchors,
                                        int64_t gamma, int64_t mask_id, int64_t total_len = 0);

inline int64_t NatPackedLength(int64_t window_len, int64_t groups, int64_t gamma) {
  return window_len + groups * (gamma - 1);
}

// Anchors for a window of `window_len` tokens: all of [0, L-gamma] when groups <= 0 or
// there are no more than `groups` of them, else `groups` distinct ones drawn uniformly
// (deterministic in seed). Sorted. Empty when L < gamma.
std::vector<int64_t> ChooseNatAnchors(int64_t window_len, int64_t gamma, int64_t groups, uint64_t seed);

}  // namespace augur
