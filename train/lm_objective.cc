// The causal-LM objective (next-token cross-entropy over token-store windows) and the
// loss helpers the tests and benches call directly.
#include <torch/torch.h>

#include <cmath>

#include "train/trainer.h"

namespace augur::train {
namespace {

absl::Status CheckBatch(const at::Tensor& b, int64_t batch, int64_t seq_len, int64_t vocab,
                        const std::string& what) {
  if (b.dim() != 2 || b.size(0) != batch || b.size(1) != seq_len + 1) {
    std::string shape;
    for (int64_t d : b.sizes()) absl::StrAppend(&shape, shape.empty() ? "" : ", ", d);
    return absl::InvalidArgumentError(absl::StrCat("train: ", what, ": batch has shape [", shape,
                                                   "], expected [", batch, ", ", seq_len + 1, "]"));
  }
  const int64_t lo = b.min().item<int64_t>(), hi = b.max().item<int64_t>();
  if (lo < 0 || hi >= vocab)
    return absl::InvalidArgumentError(absl::StrCat("train: ", what, ": token ids span [", lo, ", ", hi,
                                                   "] but the model's vocab_size is ", vocab));
  return absl::OkStatus();
}

class LanguageModelObjective : public TrainObjective {
 public:
  LanguageModelObjective(const TrainData& data, const TrainOptions& opts, int64_t vocab_size)
      : data_(data), batch_(opts.batch), seq_len_(opts.seq_len), grad_accum_(opts.grad_accum),
        eval_batches_(opts.eval_batches), vocab_size_(vocab_size) {}

  absl::StatusOr<at::Tensor> Loss(LlamaModel& model, int64_t step, int64_t micro) override {
    if (!data_.train) return absl::InvalidArgumentError("train: no training data was given");
    const int64_t index = step * grad_accum_ + micro;
    AUGUR_ASSIGN_OR_RETURN(at::Tensor b, data_.train(index, batch_, seq_len_));
    AUGUR_RETURN_IF_ERROR(CheckBatch(b, batch_, seq_len_, vocab_size_, absl::StrCat("training batch ", index)));
    return LanguageModelLoss(model, b.to(model->device(), torch::kLong));
  }

  absl::StatusOr<Metrics> Validate(LlamaModel& model) override {
    AUGUR_ASSIGN_OR_RETURN(double vl, EvaluateLoss(model, data_.valid, eval_batches_, batch_, seq_len_));
    if (vl < 0) return Metrics{};
    return Metrics{{"valid_loss", vl}, {"valid_ppl", std::exp(vl)}};
  }

  int64_t TokensPerMicroBatch() const override { return batch_ * seq_len_; }
  nlohmann::json Describe() const override { return {{"name", "lm"}, {"source", data_.source}}; }

 private:
  const TrainData& data_;
  int64_t batch_, seq_len_, grad_accum_, eval_batches_, vocab_size_;
};

}  // namespace

std::unique_ptr<TrainObjective> MakeLanguageModelObjective(const TrainData& data, const TrainOptions& opts,
                                                           int64_t vocab_size) {
  return std::make_unique<LanguageModelObjective>(data, opts, vocab_size);
}

at::Tensor LanguageModelLoss(LlamaModel& model, const at::Tensor& batch) {
  const int64_t T = batch.size(1) - 1;
  at::Tensor inputs = batch.narrow(1, 0, T);
  at::Tensor targets = batch.narrow(1, 1, T);
  at::Tensor logits = model->logits(inputs);  // [B, T, V] float32
  return torch::nn::functional::cross_entropy(logits.reshape({-1, logits.size(-1)}).to(torch::kFloat),
                                              targets.reshape({-1}));
}

at::Tensor AccumulateGradients(LlamaModel& model, const std::vector<at::Tensor>& micro_batches) {
  const double n = static_cast<double>(micro_batches.size());
  at::Tensor total = torch::zeros({}, torch::TensorOptions().dtype(torch::kFloat).device(model->device()));
  for (const auto& mb : micro_batches) {
    at::Tensor loss = LanguageModelLoss(model, mb);
    (loss / n).backward();
    total += loss.detach();
  }
  return total / n;
}

absl::StatusOr<double> EvaluateLoss(LlamaModel& model, const BatchFn& valid, int64_t n, int64_t batch,
                                    int64_t seq_len) {
  if (!valid || n <= 0) return -1.0;
  torch::NoGradGuard no_grad;
  const bool was_training = model->is_training();
  model->eval();
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    AUGUR_ASSIGN_OR_RETURN(at::Tensor b, valid(i, batch, seq_len));
    sum += LanguageModelLoss(model, b.to(model->device())).item<double>();
  }
  model->train(was_training);
  return sum / static_cast<double>(n);
}

}  // namespace augur::train
