// AdamW with the usual split: weight decay on matrices (linear weights, embeddings), none
// on vectors (norm weights, biases).
#pragma once

#include <torch/nn/module.h>
#include <torch/optim/adamw.h>

#include <memory>

namespace augur::train {

struct AdamWSettings {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double weight_decay = 0.1;
};

// Group 0: parameters with dim >= 2 (decayed); group 1: the rest (not decayed). The order
// within a group is named_parameters() order, which optimizer state files depend on.
std::unique_ptr<torch::optim::AdamW> MakeAdamW(torch::nn::Module& model, const AdamWSettings& s);

// Sets the learning rate of every parameter group.
void SetLearningRate(torch::optim::Optimizer& opt, double lr);

}  // namespace augur::train
