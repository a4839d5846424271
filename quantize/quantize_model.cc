#include "quantize/quantize_model.h"

#include <torch/torch.h>

#include <optional>

#include "core/progress.h"
#include "datasets/token_store.h"
#include "datasets/token_windows.h"
#include "runtime/qlinear.h"

namespace augur {
namespace {

// Accumulates Σ 2 x xᵀ over the rows of its input (in float64) and forwards unchanged.
class HessianRecorder : public LinearBackend {
 public:
  HessianRecorder(at::Tensor weight, at::Tensor bias) : weight_(std::move(weight)), bias_(std::move(bias)) {
    h_ = at::zeros({weight_.size(1), weight_.size(1)}, at::kDouble);
  }
  at::Tensor forward(const at::Tensor& x) override {
    const at::Tensor x2 = x.detach().reshape({-1, x.size(-1)}).to(at::kCPU, at::kDouble);
    h_.addmm_(x2.t(), x2, /*beta=*/1, /*alpha=*/2);
    rows_ += x2.size(0);
    return at::linear(x, weight_, bias_.defined() ? std::optional<at::Tensor>(bias_) : std::nullopt);
  }
  at::Tensor hessian() const { return rows_ > 0 ? h_ / static_cast<double>(rows_) : h_; }

 private:
  at::Tensor weight_, bias_, h_;
  int64_t rows_ = 0;
};

}  // namespace

absl::StatusOr<at::Tensor> LoadCalibration(const std::string& store_path, const std::string& tokenizer_fingerprint,
                                           int64_t samples, int64_t seq_len, uint64_t seed) {
  if (samples <= 0 || seq_len <= 0)
    return absl::InvalidArgumentError(
        absl::StrCat("quantize: --calib-samples ", samples, " and --seq-len ", seq_len, " must be positive"));
  AUGUR_ASSIGN_OR_RETURN(auto store, TokenStore::Open(store_path));
  if (store->info().tokenizer_fingerprint != tokenizer_fingerprint)
    return absl::FailedPreconditionError(absl::StrCat(
        "quantize: ", store_path, ": calibration store was made with tokenizer ", store->info().tokenizer_fingerprint,
        " but the model uses ", tokenizer_fingerprint.empty() ? "an unknown one" : tokenizer_fingerprint,
        "; build the store with the model's tokenizer (augur data build --tokenizer MODEL_DIR)"));
  AUGUR_ASSIGN_OR_RETURN(WindowSampler sampler, WindowSampler::Create(store, Split::kTrain, seed));
  AUGUR_ASSIGN_OR_RETURN(at::Tensor windows, sampler.Batch(0, samples, seq_len));
  return windows.narrow(1, 0, seq_len).contiguous();
}

absl::StatusOr<QuantizedLinears> QuantizeModel(LlamaModel& model, const QuantizeModelOptions& opts,
                                               const at::Tensor& calib) {
  torch::NoGradGuard no_grad;
  QuantizedLinears out;
  std::vector<LinearSlot> slots = ModelLinears(model, !opts.keep_head);
  if (opts.method == "rtn") {
    for (const auto& s : slots) out[s.name] = QuantizeRtn(s.weight, opts.scheme);
    return out;
  }
  if (opts.method != "gptq")
    return absl::InvalidArgumentError(absl::StrCat("quantize: unknown --method '", opts.method, "' (rtn or gptq)"));
  if (!calib.defined() || calib.dim() != 2 || calib.size(0) == 0)
    return absl::InvalidArgumentError("quantize: gptq needs calibration tokens (--calib FILE.h5)");

  // Stages: decoder layer 0..L-1, then the head (layer -1) when it is quantized.
  std::vector<int64_t> stages;
  for (int64_t l = 0; l < model->config().num_hidden_layers; ++l) stages.push_back(l);
  if (!opts.keep_head) stages.push_back(-1);
  std::optional<Progress> bar;
  if (opts.progress) bar.emplace("quantize gptq", static_cast<int64_t>(slots.size()), "linears");
  int64_t done = 0;
  auto clear = [&] {
    for (auto& s : slots) s.backend->reset();
  };
  for (int64_t stage : stages) {
    std::vector<std::pair<LinearSlot*, std::shared_ptr<HessianRecorder>>> rec;
    for (auto& s : slots)
      if (s.layer == stage) {
        auto r = std::make_shared<HessianRecorder>(s.weight.detach(), s.bias.defined() ? s.bias.detach() : at::Tensor());
        *s.backend = r;
        rec.emplace_back(&s, r);
      }
    for (int64_t b = 0; b < calib.size(0); b += opts.batch) {
      const int64_t n = std::min(opts.batch, calib.size(0) - b);
      ForwardOptions fo;
      fo.logits_last = stage >= 0 ? 1 : 0;  // the head needs every position's input
      model->forward(calib.narrow(0, b, n), nullptr, fo);
    }
    for (auto& [slot, r] : rec) {
      auto q = GptqQuantize(slot->weight, r->hessian(), opts.scheme, opts.gptq, slot->name);
      if (!q.ok()) {
        clear();
        return q.status();
      }
      out[slot->name] = *q;
      *slot->backend = std::make_shared<QuantLinearBackend>(q->to(model->device()),
                                                            slot->bias.defined() ? slot->bias.detach() : at::Tensor());
      if (bar) bar->update(++done);
    }
  }
  clear();
  return out;
}

}  // namespace augur
