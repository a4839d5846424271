// NAT drafter: the input layout (exact positions and masks, no future-token edge in a packed
// training sequence, packed forward == per-group forwards), the drafter's cache (no trace of
// mask slots or rejected tokens), greedy speculative output == target greedy, checkpoint
// checks on load.
#include <gtest/gtest.h>
#include <torch/torch.h>


#include "core/checkpoint.h"
#include "core/fs.h"
#include "core/model.h"
#include "core/sampling.h"
#include "eval/nat_drafter.h"
#include "eval/nat_layout.h"
#include "eval/speculative.h"
#include "tests/nat_test_util.h"

namespace augur {
namespace {

using nattest::Random;
using nattest::Tiny;
constexpr int64_t kMask = 4;

std::vector<int64_t> Tokens(int64_t n, uint64_t seed, int64_t vocab) {
  std::vector<int64_t> p;
  uint64_t x = seed * 2654435761u + 7;
  for (int64_t i = 0; i < n; ++i) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    p.push_back(5 + static_cast<int64_t>((x >> 33) % (vocab - 5)));  // never the mask id
  }
  return p;
}

std::vector<std::vector<bool>> MaskRows(const at::Tensor& m) {
  std::vector<std::vector<bool>> rows(m.size(0), std::vector<bool>(m.size(1)));
  auto a = m.accessor<bool, 2>();
  for (int64_t i = 0; i < m.size(0); ++i)
    for (int64_t j = 0; j < m.size(1); ++j) rows[i][j] = a[i][j];
  return rows;
}

TEST(NatLayout, DraftInputExact) {
  const NatInput in = NatDraftInput({17, 18}, /*cached=*/3, /*gamma=*/3, kMask);
  EXPECT_EQ(in.ids, (std::vector<int64_t>{17, 18, 4, 4}));
  EXPECT_EQ(in.positions, (std::vector<int64_t>{3, 4, 5, 6}));
  EXPECT_EQ(MaskRows(in.attn_mask), (std::vector<std::vector<bool>>{
                                        {1, 0, 0, 0}, {1, 1, 0, 0}, {1, 1, 1, 0}, {1, 1, 1, 1}}));
  EXPECT_EQ(NatDraftSlot(2, 1), 1);  // the last real token predicts offset 1
  EXPECT_EQ(NatDraftSlot(2, 3), 3);  // mask slot 2 predicts offset 3
  const NatInput one = NatDraftInput({9}, 0, 1, kMask);
  EXPECT_EQ(one.ids, (std::vector<int64_t>{9}));
  EXPECT_EQ(one.positions, (std::vector<int64_t>{0}));
}

TEST(NatLayout, PackedExact) {
  // Window of 5, gamma 3, anchors 2 and 0 (given unsorted), padded to 11 slots.
  auto p = PackNatWindow({10, 11, 12, 13, 14}, {2, 0}, 3, kMask, 11);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->anchors, (std::vector<int64_t>{0, 2}));
  EXPECT_EQ(p->ids, (std::vector<int64_t>{10, 11, 12, 13, 14, 4, 4, 4, 4, 4, 4}));
  EXPECT_EQ(p->positions, (std::vector<int64_t>{0, 1, 2, 3, 4, 1, 2, 3, 4, 0, 0}));
  const std::vector<std::vector<bool>> want = {
      // real 0..4          group a=0   group a=2   pad
      {1, 0, 0, 0, 0, /**/ 0, 0, /**/ 0, 0, /**/ 0, 0},
      {1, 1, 0, 0, 0, /**/ 0, 0, /**/ 0, 0, /**/ 0, 0},
      {1, 1, 1, 0, 0, /**/ 0, 0, /**/ 0, 0, /**/ 0, 0},
      {1, 1, 1, 1, 0, /**/ 0, 0, /**/ 0, 0, /**/ 0, 0},
      {1, 1, 1, 1, 1, /**/ 0, 0, /**/ 0, 0, /**/ 0, 0},
      {1, 0, 0, 0, 0, /**/ 1, 0, /**/ 0, 0, /**/ 0, 0},  // a=0, mask 1 (pos 1)
      {1, 0, 0, 0, 0, /**/ 1, 1, /**/ 0, 0, /**/ 0, 0},  // a=0, mask 2 (pos 2)
      {1, 1, 1, 0, 0, /**/ 0, 0, /**/ 1, 0, /**/ 0, 0},  // a=2, mask 1 (pos 3)
      {1, 1, 1, 0, 0, /**/ 0, 0, /**/ 1, 1, /**/ 0, 0},  // a=2, mask 2 (pos 4)
      {0, 0, 0, 0, 0, /**/ 0, 0, /**/ 0, 0, /**/ 1, 0},
      {0, 0, 0, 0, 0, /**/ 0, 0, /**/ 0, 0, /**/ 0, 1},
  };
  EXPECT_EQ(MaskRows(p->attn_mask), want);
  EXPECT_EQ(p->pred_slot, (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8}));
  EXPECT_EQ(p->pred_offset, (std::vector<int64_t>{1, 1, 1, 1, 1, 2, 3, 2, 3}));
  EXPECT_EQ(p->pred_row, (std::vector<int64_t>{0, 1, 2, 3, 4, 1, 2, 3, 4}));

  EXPECT_FALSE(PackNatWindow({1, 2, 3, 4, 5}, {3}, 3, kMask).ok());      // row 3+2 = 5 outside the window
  EXPECT_FALSE(PackNatWindow({1, 2, 3, 4, 5}, {1, 1}, 3, kMask).ok());   // twice
  EXPECT_FALSE(PackNatWindow({1, 2, 3, 4, 5}, {0}, 3, kMask, 6).ok());   // total_len too short
}

// Brute force over many shapes: a slot that predicts row r at offset k (the token r+1 given
// x[0..r]) may see real tokens 0..r-k+1 (its anchor) and nothing later; mask slots see only
// their own group's earlier slots; nothing sees padding; every non-padding slot sees itself.
TEST(NatLayout, PackedNeverSeesTheFuture) {
  for (int64_t L : {1, 4, 9, 16}) {
    for (int64_t gamma : {1, 2, 4, 6}) {
      for (int64_t groups : {0, 1, 3}) {
        const auto anchors = ChooseNatAnchors(L, gamma, groups, 100 * L + gamma);
        if (groups > 0) {
          EXPECT_LE(static_cast<int64_t>(anchors.size()), groups);
        }
        for (int64_t a : anchors) EXPECT_TRUE(a >= 0 && a <= L - gamma);
        const int64_t packed = NatPackedLength(L, anchors.size(), gamma);
        auto p = PackNatWindow(Tokens(L, L, 50), anchors, gamma, kMask, packed + 2);
        ASSERT_TRUE(p.ok()) << p.status();
        const auto m = MaskRows(p->attn_mask);
        const int64_t T = packed + 2;
        ASSERT_EQ(static_cast<int64_t>(m.size()), T);
        std::vector<int64_t> limit(T, -1), group(T, -1);  // real limit and group id per slot
        for (size_t e = 0; e < p->pred_slot.size(); ++e) {
          const int64_t s = p->pred_slot[e];
          limit[s] = p->pred_row[e] - p->pred_offset[e] + 1;
          EXPECT_EQ(p->positions[s], p->pred_row[e]);  // the slot sits where the AR slot would
          if (s >= L) group[s] = (s - L) / (gamma - 1);
        }
        EXPECT_EQ(static_cast<int64_t>(p->pred_slot.size()), L + static_cast<int64_t>(anchors.size()) * (gamma - 1));
        for (int64_t s = 0; s < T; ++s) {
          for (int64_t t = 0; t < T; ++t) {
            bool allowed;
            if (s >= packed) allowed = (s == t);                              // padding
            else if (t < L) allowed = (t <= limit[s]);                        // a real token
            else if (t < packed) allowed = (group[t] == group[s] && t <= s);  // a mask slot
            else allowed = false;
            EXPECT_EQ(m[s][t], allowed) << "L " << L << " gamma " << gamma << " slot " << s << " -> " << t;
          }
        }
      }
    }
  }
}

TEST(NatLayout, PackedForwardEqualsPerGroupForwards) {
  torch::NoGradGuard g;
  auto model = Random(Tiny(2, 32), 3, 1.0);
  const int64_t L = 12, gamma = 4;
  const auto window = Tokens(L, 5, 61);
  auto p = PackNatWindow(window, {0, 3, 8}, gamma, kMask, NatPackedLength(L, 3, gamma) + 3);
  ASSERT_TRUE(p.ok()) << p.status();
  const auto lo = torch::TensorOptions().dtype(torch::kInt64);
  ForwardOptions fo;
  fo.positions = torch::tensor(p->positions, lo);
  fo.attn_mask = p->attn_mask;
  const at::Tensor packed = model->forward(torch::tensor(p->ids, lo).view({1, -1}), nullptr, fo).logits[0];
  ASSERT_FALSE(torch::isnan(packed).any().item<bool>());
  // Real slots: a plain causal forward of the window.
  const at::Tensor plain = model->logits(torch::tensor(window, lo).view({1, -1}))[0];
  EXPECT_LT((packed.narrow(0, 0, L) - plain).abs().max().item<double>(), 1e-5);
  // Each group: a separate forward of x[0..a] followed by its gamma-1 masks.
  for (size_t gi = 0; gi < p->anchors.size(); ++gi) {
    const int64_t a = p->anchors[gi];
    std::vector<int64_t> ids(window.begin(), window.begin() + a + 1);
    ids.insert(ids.end(), gamma - 1, kMask);
    const at::Tensor sep = model->logits(torch::tensor(ids, lo).view({1, -1}))[0];
    const at::Tensor got = packed.narrow(0, L + gi * (gamma - 1), gamma - 1);
    EXPECT_LT((got - sep.narrow(0, a + 1, gamma - 1)).abs().max().item<double>(), 1e-5) << "anchor " << a;
  }
}

// The logits a from-scratch forward gives for `context` followed by gamma-1 masks.
at::Tensor ScratchLogits(LlamaModel& model, const std::vector<int64_t>& context, int64_t gamma) {
  const NatInput in = NatDraftInput(context, 0, gamma, kMask);
  const auto lo = torch::TensorOptions().dtype(torch::kInt64);
  ForwardOptions fo;
  fo.positions = torch::tensor(in.positions, lo);
  fo.attn_mask = in.attn_mask;
  return model->forward(torch::tensor(in.ids, lo).view({1, -1}), nullptr, fo).logits[0].narrow(
      0, context.size() - 1, gamma);
}

TEST(NatDrafter, CacheLeavesNoTrace) {
  torch::NoGradGuard g;
  auto model = Random(Tiny(2, 32), 4, 2.0);
  const int64_t gamma = 4;
  NatDrafter drafter(model, gamma, kMask, 128);
  SamplingParams greedy;
  greedy.temperature = 0;
  SamplingParams warm;
  warm.temperature = 1.0;
  Sampler sampler(1);
  std::vector<int64_t> context = Tokens(9, 8, 61);
  ASSERT_TRUE(drafter.Begin(context).ok());
  for (int round = 0; round < 6; ++round) {
    const SamplingParams& sp = round % 2 ? warm : greedy;
    Draft d = drafter.Propose({context, gamma, sp, sampler});
    ASSERT_EQ(static_cast<int64_t>(d.tokens.size()), gamma);
    EXPECT_EQ(drafter.cache_length(), static_cast<int64_t>(context.size())) << "mask slots left in the cache";
    const at::Tensor ref = ScratchLogits(model, context, gamma);
    // Greedy: q is the plain softmax (as an AR drafter's), so --tree-topk can branch on it.
    const at::Tensor want = sp.greedy() ? ref.softmax(-1) : SamplingProbs(ref, sp);
    EXPECT_LT((d.probs - want).abs().max().item<double>(), 1e-5) << "round " << round;
    if (sp.greedy()) {
      const at::Tensor tok = GreedyTokens(ref);
      for (int64_t k = 0; k < gamma; ++k) EXPECT_EQ(d.tokens[k], tok[k].item<int64_t>());
    }
    // Accept `round % 3` drafted tokens, then a token of the "target's" that differs from
    // the next draft (a rejection the cache must forget), sometimes rewinding further.
    const int64_t keep = round % 3;
    context.insert(context.end(), d.tokens.begin(), d.tokens.begin() + keep);
    context.push_back(5 + (d.tokens[keep] + 1) % 56);
    if (round == 3) context.resize(context.size() - 4);  // a context that shrank
  }
  // Proposing twice for the same context gives the same draft.
  Draft a = drafter.Propose({context, gamma, greedy, sampler});
  Draft b = drafter.Propose({context, gamma, greedy, sampler});
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_LT((a.probs - b.probs).abs().max().item<double>(), 1e-6);
}

TEST(NatDrafter, GreedySpeculativeEqualsTargetGreedy) {
  auto target = Random(Tiny(2, 32), 1, 3.0);
  auto nat_model = Random(Tiny(1, 32), 2, 3.0);
  for (int64_t gamma : {1, 3, 6}) {
    for (uint64_t s : {21u, 22u}) {  // 2 prompts x 30 tokens: enough rejections to exercise rollback
      const auto prompt = Tokens(7, s, 61);
      GenerateOptions go;
      go.max_new = 30;
      go.sampling.temperature = 0;
      go.eos_id = -1;
      auto ref = Generate(*target, prompt, go);
      ASSERT_TRUE(ref.ok()) << ref.status();
      SpecOptions so;
      so.gamma = gamma;
      so.max_new = 30;
      so.sampling.temperature = 0;
      so.eos_id = -1;
      NatDrafter nat(nat_model, /*trained_gamma=*/4, kMask, 256);
      auto spec = SpeculativeGenerate(*target, nat, prompt, so);
      ASSERT_TRUE(spec.ok()) << spec.status();
      EXPECT_EQ(spec->tokens, ref->tokens) << "gamma " << gamma << " seed " << s;
      EXPECT_GT(spec->stats.proposed, 0);
      if (gamma > 4) {
        EXPECT_NE(nat.name().find("clipped to the trained 4"), std::string::npos) << nat.name();
      } else {
        EXPECT_EQ(nat.name(), "nat");
      }
    }
  }
  // The drafter itself: a NAT drafter that is the target plus never-seen masks still
  // proposes the target's greedy token at offset 1, so it is accepted at least there.
  const auto prompt = Tokens(7, 30, 61);
  SpecOptions so;
  so.gamma = 3;
  so.max_new = 20;
  so.sampling.temperature = 0;
  so.eos_id = -1;
  NatDrafter self(target, 3, kMask, 256);
  auto spec = SpeculativeGenerate(*target, self, prompt, so);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->stats.accepted_at[0], spec->stats.offered_at[0]);
}

class NatCheckpoint : public ::testing::Test {
 protected:
  void SetUp() override { root_ = MakeTempDir("augur_nat_"); }
  void TearDown() override { RemoveTree(root_); }
  std::string Save(const std::string& name, const AugurMeta& meta) {
    auto m = Random(Tiny(1, 32), 9, 1.0);
    const std::string dir = root_ + "/" + name;
    auto st = SaveCheckpoint(m, meta, dir);
    EXPECT_TRUE(st.ok()) << st;
    return dir;
  }
  std::string root_;
};

TEST_F(NatCheckpoint, KindGammaMaskCheckedOnLoad) {
  AugurMeta good;
  good.kind = "nat-drafter";
  good.gamma = 4;
  good.mask_token_id = kMask;
  auto ok = LoadNatDrafter(Save("good", good), 64);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ((*ok)->trained_gamma(), 4);
  EXPECT_EQ((*ok)->mask_id(), kMask);

  AugurMeta ar = good;
  ar.kind = "ar-drafter";
  auto bad = LoadNatDrafter(Save("ar", ar), 64);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("kind is 'ar-drafter', not 'nat-drafter'"), std::string::npos)
      << bad.status();

  AugurMeta nogamma = good;
  nogamma.gamma = 0;
  bad = LoadNatDrafter(Save("g0", nogamma), 64);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("gamma 0"), std::string::npos) << bad.status();

  AugurMeta badmask = good;
  badmask.mask_token_id = 61;  // vocab is 61
  bad = LoadNatDrafter(Save("m61", badmask), 64);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("mask_token_id 61"), std::string::npos) << bad.status();
}

}  // namespace
}  // namespace augur
