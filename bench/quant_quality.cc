// How much a quantized checkpoint moves a model: mean next-token loss on held-out windows of a
// token store, and the fraction of positions whose greedy (top-1) token equals the fp32
// model's (a cheap stand-in for draft acceptance).
//
//   quant_quality --model FP32_DIR --quantized DIR[,DIR...] --data FILE.h5 [--windows 32]
//                 [--seq-len 128] [--threads 1]
#include <torch/torch.h>

#include <cstdio>
#include <string>
#include <vector>

#include <absl/strings/numbers.h>
#include <absl/strings/str_split.h>

#include "core/checkpoint.h"
#include "datasets/token_store.h"
#include "datasets/token_windows.h"
#include "runtime/qmodel.h"

int main(int argc, char** argv) {
  std::string model, quantized, data;
  int64_t windows = 32, seq_len = 128, threads = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--model") model = v;
    else if (a == "--quantized") quantized = v;
    else if (a == "--data") data = v;
    else if (a == "--windows") (void)absl::SimpleAtoi(v, &windows);
    else if (a == "--seq-len") (void)absl::SimpleAtoi(v, &seq_len);
    else if (a == "--threads") (void)absl::SimpleAtoi(v, &threads);
  }
  if (model.empty() || data.empty()) {
    std::fprintf(stderr, "usage: quant_quality --model DIR --quantized DIR[,DIR] --data FILE.h5 [--windows N] [--seq-len T]\n");
    return 2;
  }
  torch::set_num_threads(static_cast<int>(threads));
  torch::NoGradGuard no_grad;
  auto store = augur::TokenStore::Open(data);
  if (!store.ok()) {
    std::fprintf(stderr, "quant_quality: %s\n", std::string(store.status().message()).c_str());
    return 1;
  }
  auto reader = augur::SequentialReader::Create(*store, augur::Split::kValid, seq_len);
  if (!reader.ok()) {
    std::fprintf(stderr, "quant_quality: cannot read %s\n", data.c_str());
    return 1;
  }
  const at::Tensor batch = *reader->Batch(0, windows);
  const at::Tensor in = batch.narrow(1, 0, seq_len), target = batch.narrow(1, 1, seq_len);
  auto fp32 = augur::LoadCheckpoint(model);
  if (!fp32.ok()) return 1;
  const at::Tensor ref = fp32->model->logits(in);
  const at::Tensor ref_top = ref.argmax(-1);
  auto report = [&](const std::string& name, const at::Tensor& logits) {
    const double loss = at::cross_entropy_loss(logits.reshape({-1, logits.size(-1)}), target.reshape({-1})).item<double>();
    const double agree = (logits.argmax(-1) == ref_top).to(torch::kFloat64).mean().item<double>();
    std::printf("%-40s loss %.4f  top1 agreement with fp32 %.4f\n", name.c_str(), loss, agree);
  };
  std::printf("quant_quality: %lld valid windows x %lld tokens of %s\n", (long long)windows, (long long)seq_len, data.c_str());
  report("fp32 " + model, ref);
  for (auto dir : absl::StrSplit(quantized, ',', absl::SkipEmpty())) {
    auto q = augur::LoadQuantizedModel(std::string(dir));
    if (!q.ok()) {
      std::fprintf(stderr, "quant_quality: %s\n", std::string(q.status().message()).c_str());
      return 1;
    }
    report(std::string(dir), q->model->logits(in));
  }
  return 0;
}
