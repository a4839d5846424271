// Token trees: several drafters' proposals (chains, retrieval tries, top-k branches) merged
// into one tree whose shared prefixes are stored once, verified by the target in one
// forward over [pending token + tree nodes] with a tree attention mask, then accepted
// along one root-to-node path.
//
// Node 0 is the root: the pending token (the last context token, not yet in the target's
// cache). Every other node has a parent with a smaller index, so a node's ancestors come
// before it and rows of the mask can be built in index order. Shapes: T tree nodes (root
// included), V vocab.
//
// Draws. Each node keeps, in order, the proposals made for its children: (child, q), q the
// distribution the child's token was drawn from (float [V]) or undefined for deterministic
// proposals (q = one-hot at the token). Two drafters proposing the same token make one child
// but two draws; multi-draft rejection sampling walks the draws, not the children.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "core/sampling.h"
#include "eval/drafter.h"

namespace augur {

class TokenTree {
 public:
  struct Proposal {
    int32_t child;
    at::Tensor q;  // [V] or undefined (one-hot)
  };

  explicit TokenTree(int64_t root_token, int64_t max_nodes = 64);

  int64_t size() const { return static_cast<int64_t>(token_.size()); }  // T, root included
  int64_t token(int64_t node) const { return token_[node]; }
  int32_t parent(int64_t node) const { return parent_[node]; }
  int32_t depth(int64_t node) const { return depth_[node]; }
  int64_t max_depth() const;
  // Bit d set: drafter d proposed this node's token (for per-drafter acceptance).
  uint64_t sources(int64_t node) const { return sources_[node]; }
  const std::vector<Proposal>& draws(int64_t node) const { return draws_[node]; }
  // The child of `node` with `token`, or -1.
  int32_t Child(int64_t node, int64_t token) const;

  // Adds a draw of `token` under `parent`, merging with an existing child of the same
  // token. Returns the child, or -1 when the tree is full (max_nodes, root included).
  int32_t Add(int32_t parent, int64_t token, const at::Tensor& q, int source);
  // A drafter's Draft: a chain under the root (probs row i = q of token i), or a tree
  // (draft.parents, deterministic), tokens deeper than max_depth dropped. Returns the node
  // of each draft token (-1: dropped, with its descendants).
  std::vector<int32_t> AddDraft(const Draft& draft, int source, int64_t max_depth = INT64_MAX);
  // Deterministic alternatives: under each of the chain's nodes' parents, the top `k` tokens
  // of that position's q (a chain Draft's probs) as one-hot draws after the chain's own.
  void AddTopK(const Draft& draft, const std::vector<int32_t>& chain_nodes, int64_t k, int source);

  // The target forward's inputs: token ids [T] and positions base + depth [T].
  std::vector<int64_t> Tokens() const { return token_; }
  std::vector<int64_t> Positions(int64_t base) const;
  // bool [T,T]: mask[i][j] = j is i or an ancestor of i. Row i = row parent(i) | {i}.
  at::Tensor Mask() const;
  // The slow obvious version: for each (i, j), walk i's parents looking for j.
  at::Tensor MaskReference() const;
  // Root-to-node path (root first).
  std::vector<int32_t> Path(int32_t node) const;

 private:
  std::vector<int64_t> token_;
  std::vector<int32_t> parent_, depth_;
  std::vector<uint64_t> sources_;
  std::vector<std::vector<Proposal>> draws_;
  int64_t max_nodes_;
};

struct TreeVerdict {
  std::vector<int32_t> path;  // accepted nodes after the root, root-to-leaf
  int64_t next = -1;          // the target's own token after them
};

// Greedy: from the root, move to the child whose token is the target's argmax at the
// current node, while one exists; next = the argmax at the last node. `decide(node)` gives
// the target's greedy token at a node (the engine's near-tie policy lives there).
template <typename Decide>
TreeVerdict VerifyTreeGreedy(const TokenTree& tree, Decide&& decide) {
  TreeVerdict v;
  int32_t node = 0;
  for (;;) {
    const int64_t best = decide(node);
    const int32_t child = tree.Child(node, best);
    if (child < 0) {
      v.next = best;
      return v;
    }
    v.path.push_back(child);
    node = child;
  }
}
// Plain argmax of target_logits [T,V] (ties to the lowest id).
TreeVerdict VerifyTreeGreedy(const TokenTree& tree, const at::Tensor& target_logits);

// Multi-draft rejection sampling (SpecInfer, Miao et al. 2024): at node u with target
// distribution p = p_u, for each draw (x_i, q_i) in order: accept x_i with probability
// min(1, p(x_i) / q_i(x_i)) and descend into x_i; else p <- norm(max(0, p - q_i)). When no
// draw is accepted, the next token is sampled from the final p. Each emitted token is then
// distributed exactly as the target's p, provided each draw at u is an independent sample
// of q_i given the path (or q_i is its one-hot). p [T,V] are probabilities (tempered and
// filtered like the drafters' q). A chain tree consumes the sampler exactly as
// VerifySampling does, so chain and one-branch tree give identical outputs.
TreeVerdict VerifyTreeSampling(const TokenTree& tree, const at::Tensor& p, Sampler& sampler);

}  // namespace augur
