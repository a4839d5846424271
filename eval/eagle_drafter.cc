#include "eval/eagle_drafter.h"

#include <ATen/ATen.h>
#include <torch/torch.h>

#include <algorithm>
#include <numeric>

#include "eval/draft_vocab.h"

namespace augur {

EagleDrafter::EagleDrafter(std::unique_ptr<EagleDecoder> decoder, std::string name, TreeOptions tree)
    : decoder_(std::move(decoder)), name_(std::move(name)), tree_(tree) {
  AUGUR_CHECK(decoder_ != nullptr, "eagle drafter: no decoder");
  const at::Tensor ids = decoder_->draft_ids().contiguous();
  ids_.assign(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + ids.numel());
}

absl::Status EagleDrafter::Begin(const std::vector<int64_t>& prompt) {
  if (prompt.empty()) return absl::InvalidArgumentError("eagle drafter: empty prompt");
  decoder_->reset();
  real_ = 0;
  return absl::OkStatus();
}

bool EagleDrafter::Ingest(const DraftRequest& req, at::Tensor* out, at::Tensor* logits) {
  const TargetFeatures* f = req.features;
  const int64_t size = static_cast<int64_t>(req.context.size());
  if (f == nullptr || f->layers.size() != 3) return false;
  const int64_t n = f->rows();
  // The taps continue the verified entries; rows past the cache's end leave a gap (no draft).
  if (f->begin > real_ || f->begin + n != size - 1 || n == 0) return false;
  if (decoder_->length() + n > decoder_->capacity()) return false;
  decoder_->truncate(f->begin);
  const at::Tensor taps = at::cat(f->layers, 1).to(torch::kFloat32);  // [n, 3dt]
  std::vector<int64_t> tokens(req.context.begin() + f->begin + 1, req.context.begin() + f->begin + 1 + n);
  at::Tensor all_logits;
  const at::Tensor outs = decoder_->Step(tokens, taps, /*fuse=*/true, {}, {}, &all_logits);
  real_ = f->begin + n;
  *out = outs.narrow(0, n - 1, 1).clone();
  *logits = all_logits[n - 1].clone();
  return true;
}

Draft EagleDrafter::Propose(const DraftRequest& req) {
  torch::NoGradGuard no_grad;
  Draft draft;
  at::Tensor out, logits;
  if (req.gamma <= 0 || !Ingest(req, &out, &logits)) return draft;
  const SamplingParams& params = req.params;
  const int64_t vocab = decoder_->config().vocab_size;
  const bool reduced = static_cast<int64_t>(ids_.size()) != vocab;
  const at::Tensor ids = decoder_->draft_ids();
  std::vector<at::Tensor> probs;
  for (int64_t k = 0; k < req.gamma; ++k) {
    at::Tensor q = params.greedy() ? logits.softmax(-1) : SamplingProbs(logits, params);
    const int64_t sub = params.greedy() ? GreedyTokens(logits).item<int64_t>() : req.sampler.SampleFromProbs(q);
    const int64_t tok = ids_[static_cast<size_t>(sub)];
    draft.tokens.push_back(tok);
    probs.push_back(reduced ? ExpandToVocab(q, ids, vocab) : q);
    if (k + 1 == req.gamma || decoder_->length() + 1 > decoder_->capacity()) break;
    out = decoder_->Step({tok}, out, /*fuse=*/false, {}, {}, &logits).clone();
    logits = logits[0];
  }
  decoder_->truncate(real_);
  draft.probs = at::stack(probs);
  return draft;
}

Draft EagleDrafter::ProposeTree(const DraftRequest& req) {
  torch::NoGradGuard no_grad;
  Draft draft;
  at::Tensor root_out, root_logits;
  if (req.gamma <= 0 || !Ingest(req, &root_out, &root_logits)) return draft;
  const int64_t k = std::max<int64_t>(1, tree_.topk);
  const int64_t root_pos = real_ - 1;  // the pending token's pair

  struct Node {
    int64_t token;     // target id
    int32_t parent;    // index in `nodes`, -1: the pending token
    int32_t depth;     // 1 = a child of the pending token
    double score;      // cumulative draft log-probability
    int64_t slot = -1; // its cache entry once expanded
  };
  std::vector<Node> nodes;
  // Children of a node from its draft logits [Nd]: the top k by cumulative log-probability.
  auto add_children = [&](const at::Tensor& logits_row, int32_t parent, int32_t depth, double base) {
    const at::Tensor logp = at::log_softmax(logits_row.to(torch::kFloat32), -1);
    const auto top = at::topk(logp, std::min<int64_t>(k, logp.size(0)));
    const at::Tensor values = std::get<0>(top).contiguous(), index = std::get<1>(top).contiguous();
    for (int64_t i = 0; i < values.size(0); ++i)
      nodes.push_back({ids_[static_cast<size_t>(index[i].item<int64_t>())], parent, depth,
                       base + values[i].item<double>()});
  };
  add_children(root_logits, -1, 1, 0.0);
  std::vector<at::Tensor> node_out(nodes.size());  // pre-norm output of each expanded node
  size_t depth_begin = 0;
  for (int32_t depth = 1; depth < req.gamma; ++depth) {
    // This depth's frontier: its best k nodes.
    std::vector<int32_t> frontier(nodes.size() - depth_begin);
    std::iota(frontier.begin(), frontier.end(), static_cast<int32_t>(depth_begin));
    std::stable_sort(frontier.begin(), frontier.end(),
                     [&](int32_t a, int32_t b) { return nodes[a].score > nodes[b].score; });
    if (static_cast<int64_t>(frontier.size()) > k) frontier.resize(k);
    const int64_t m = static_cast<int64_t>(frontier.size());
    const int64_t past = decoder_->length();
    if (m == 0 || past + m > decoder_->capacity()) break;
    // Each expanded node sees the verified entries, its expanded ancestors and itself.
    at::Tensor mask = at::zeros({m, past + m}, torch::kBool);
    mask.narrow(1, 0, real_).fill_(true);
    std::vector<int64_t> tokens, positions;
    std::vector<at::Tensor> g;
    for (int64_t i = 0; i < m; ++i) {
      const Node& nd = nodes[frontier[i]];
      tokens.push_back(nd.token);
      positions.push_back(root_pos + nd.depth);
      g.push_back(nd.parent < 0 ? root_out : node_out[nd.parent]);
      for (int32_t a = nd.parent; a >= 0; a = nodes[a].parent) mask[i][nodes[a].slot] = true;
      mask[i][past + i] = true;
    }
    at::Tensor logits;
    const at::Tensor out = decoder_->Step(tokens, at::cat(g, 0), /*fuse=*/false, positions, mask, &logits).clone();
    depth_begin = nodes.size();
    for (int64_t i = 0; i < m; ++i) {
      nodes[frontier[i]].slot = past + i;
      node_out[frontier[i]] = out.narrow(0, i, 1);
      add_children(logits[i], frontier[i], depth + 1, nodes[frontier[i]].score);
    }
    node_out.resize(nodes.size());
  }
  decoder_->truncate(real_);
  // The best `nodes` of all: scores fall along a path, so the set keeps every kept node's
  // parent (ties broken by creation order, which puts parents first).
  std::vector<int32_t> order(nodes.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return nodes[a].score > nodes[b].score; });
  std::vector<char> keep(nodes.size(), 0);
  int64_t kept = 0;
  for (int32_t i : order) {
    if (kept >= tree_.nodes) break;
    if (nodes[i].parent >= 0 && !keep[nodes[i].parent]) continue;  // an orphan after a tie
    keep[i] = 1;
    ++kept;
  }
  // Emit in creation order (parents before children), with parents renumbered.
  std::vector<int32_t> index(nodes.size(), -1);
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (!keep[i]) continue;
    index[i] = static_cast<int32_t>(draft.tokens.size());
    draft.tokens.push_back(nodes[i].token);
    draft.parents.push_back(nodes[i].parent < 0 ? -1 : index[nodes[i].parent]);
  }
  return draft;
}

}  // namespace augur
