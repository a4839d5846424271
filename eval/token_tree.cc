#include "eval/token_tree.h"

#include <ATen/ATen.h>

#include <algorithm>

namespace augur {

TokenTree::TokenTree(int64_t root_token, int64_t max_nodes) : max_nodes_(std::max<int64_t>(max_nodes, 1)) {
  token_.push_back(root_token);
  parent_.push_back(-1);
  depth_.push_back(0);
  sources_.push_back(0);
  draws_.emplace_back();
}

int64_t TokenTree::max_depth() const { return *std::max_element(depth_.begin(), depth_.end()); }

int32_t TokenTree::Child(int64_t node, int64_t token) const {
  for (const Proposal& d : draws_[node])
    if (token_[d.child] == token) return d.child;
  return -1;
}

int32_t TokenTree::Add(int32_t parent, int64_t token, const at::Tensor& q, int source) {
  int32_t child = Child(parent, token);
  if (child < 0) {
    if (size() >= max_nodes_) return -1;
    child = static_cast<int32_t>(size());
    token_.push_back(token);
    parent_.push_back(parent);
    depth_.push_back(depth_[parent] + 1);
    sources_.push_back(0);
    draws_.emplace_back();
  }
  if (source >= 0 && source < 64) sources_[child] |= uint64_t{1} << source;
  draws_[parent].push_back({child, q});
  return child;
}

std::vector<int32_t> TokenTree::AddDraft(const Draft& draft, int source, int64_t max_depth) {
  const int64_t g = static_cast<int64_t>(draft.tokens.size());
  std::vector<int32_t> nodes(g, -1);
  const bool tree = !draft.parents.empty();
  for (int64_t i = 0; i < g; ++i) {
    const int32_t up = tree ? draft.parents[i] : static_cast<int32_t>(i) - 1;
    const int32_t parent = up < 0 ? 0 : (up < i ? nodes[up] : -1);
    if (parent < 0 || depth_[parent] >= max_depth) continue;  // dropped with its parent
    // A chain's tokens were drawn from probs rows; a tree draft is deterministic.
    const at::Tensor q = !tree && draft.probs.defined() ? draft.probs[i] : at::Tensor();
    nodes[i] = Add(parent, draft.tokens[i], q, source);
  }
  return nodes;
}

void TokenTree::AddTopK(const Draft& draft, const std::vector<int32_t>& chain_nodes, int64_t k, int source) {
  if (k <= 0 || !draft.probs.defined() || !draft.parents.empty()) return;
  const int64_t g = std::min<int64_t>(chain_nodes.size(), draft.probs.size(0));
  for (int64_t i = 0; i < g; ++i) {
    if (chain_nodes[i] < 0) break;
    const int32_t parent = parent_[chain_nodes[i]];
    auto [values, top] = draft.probs[i].to(at::kCPU, at::kDouble).topk(std::min<int64_t>(k, draft.probs.size(1)));
    values = values.contiguous();
    top = top.contiguous();
    for (int64_t j = 0; j < top.numel(); ++j) {
      const int64_t tok = top.data_ptr<int64_t>()[j];
      // Skip the chain's own token (already a draw) and tokens q cannot produce.
      if (tok == draft.tokens[i] || values.data_ptr<double>()[j] <= 0) continue;
      Add(parent, tok, at::Tensor(), source);
    }
  }
}

std::vector<int64_t> TokenTree::Positions(int64_t base) const {
  std::vector<int64_t> pos(depth_.size());
  for (size_t i = 0; i < depth_.size(); ++i) pos[i] = base + depth_[i];
  return pos;
}

at::Tensor TokenTree::Mask() const {
  const int64_t t = size();
  at::Tensor mask = at::zeros({t, t}, at::kBool);
  bool* m = mask.data_ptr<bool>();
  // Parents precede children, so row parent(i) is final when row i copies it.
  for (int64_t i = 0; i < t; ++i) {
    if (parent_[i] >= 0) std::copy(m + parent_[i] * t, m + parent_[i] * t + parent_[i] + 1, m + i * t);
    m[i * t + i] = true;
  }
  return mask;
}

at::Tensor TokenTree::MaskReference() const {
  const int64_t t = size();
  at::Tensor mask = at::zeros({t, t}, at::kBool);
  for (int64_t i = 0; i < t; ++i)
    for (int64_t j = 0; j < t; ++j)
      for (int64_t a = i; a >= 0; a = parent_[a])
        if (a == j) mask[i][j] = true;
  return mask;
}

std::vector<int32_t> TokenTree::Path(int32_t node) const {
  std::vector<int32_t> path;
  for (int32_t a = node; a >= 0; a = parent_[a]) path.push_back(a);
  std::reverse(path.begin(), path.end());
  return path;
}

TreeVerdict VerifyTreeGreedy(const TokenTree& tree, const at::Tensor& target_logits) {
  const at::Tensor best = GreedyTokens(target_logits).to(at::kCPU).contiguous();
  const int64_t* b = best.data_ptr<int64_t>();
  return VerifyTreeGreedy(tree, [b](int32_t node) { return b[node]; });
}

namespace {

// One distribution row as doubles (CPU float32/float64 rows are read in place).
void RowToDoubles(const at::Tensor& row, std::vector<double>* out) {
  const at::Tensor r = row.device().is_cpu() && (row.scalar_type() == at::kFloat || row.scalar_type() == at::kDouble)
                           ? row.contiguous()
                           : row.to(at::kCPU, at::kDouble).contiguous();
  const int64_t n = r.numel();
  out->resize(n);
  if (r.scalar_type() == at::kFloat) {
    const float* f = r.data_ptr<float>();
    for (int64_t i = 0; i < n; ++i) (*out)[i] = f[i];
  } else {
    const double* d = r.data_ptr<double>();
    std::copy(d, d + n, out->begin());
  }
}

}  // namespace

TreeVerdict VerifyTreeSampling(const TokenTree& tree, const at::Tensor& p_in, Sampler& sampler) {
  const at::Tensor p_all = p_in.to(at::kCPU, at::kDouble).contiguous();
  const int64_t vocab = p_all.size(1);
  TreeVerdict v;
  int32_t node = 0;
  for (;;) {
    // p: the current (unnormalised) target residual at this node, `mass` its sum.
    const double* row = p_all.data_ptr<double>() + node * vocab;
    std::vector<double> p(row, row + vocab);
    double mass = 1.0;
    int32_t accepted = -1;
    for (const TokenTree::Proposal& d : tree.draws(node)) {
      const int64_t x = tree.token(d.child);
      std::vector<double> q;
      if (d.q.defined()) RowToDoubles(d.q, &q);
      const double px = p[x] / mass;
      const double qx = d.q.defined() ? q[x] : 1.0;
      // accept with min(1, p/q); qx == 0 cannot be drawn by a correct drafter (as in the chain)
      const bool accept = qx <= 0.0 ? px > 0.0 : sampler.Uniform() < std::min(1.0, px / qx);
      if (accept) {
        accepted = d.child;
        break;
      }
      // Rejected: p <- norm(max(0, p - q)) (q one-hot: p without x).
      std::vector<double> residual(vocab);
      double sum = 0;
      for (int64_t t = 0; t < vocab; ++t) {
        const double qt = d.q.defined() ? q[t] : (t == x ? 1.0 : 0.0);
        residual[t] = d.q.defined() ? std::max(0.0, p[t] / mass - qt) : (t == x ? 0.0 : p[t] / mass);
        sum += residual[t];
      }
      if (sum <= 0.0) continue;  // p == q: p itself is the exact residual (VerifySampling's rule)
      p.swap(residual);
      mass = sum;
    }
    if (accepted < 0) {
      v.next = sampler.SampleFromProbs(at::from_blob(p.data(), {vocab}, at::kDouble));
      return v;
    }
    v.path.push_back(accepted);
    node = accepted;
  }
}

}  // namespace augur
