#include "core/device.h"

#ifdef AUGUR_WITH_CUDA
#include "core/cuda/device_query.h"
#endif

#include <torch/cuda.h>

#include <absl/strings/ascii.h>
#include <absl/strings/numbers.h>

namespace augur {

#ifdef AUGUR_WITH_CUDA
bool CudaCompiled() { return true; }

std::vector<GpuInfo> CudaDevices() {
  std::vector<GpuInfo> out;
  for (int i = 0; i < cuda_impl::DeviceCount(); ++i) {
    GpuInfo g;
    g.index = i;
    if (cuda_impl::DeviceProps(i, &g.name, &g.memory_bytes, &g.major, &g.minor)) out.push_back(g);
  }
  return out;
}

absl::Status CudaSelfTest() {
  if (cuda_impl::DeviceCount() == 0) return absl::UnavailableError("cuda: no GPU visible");
  const std::string err = cuda_impl::SelfTest();
  return err.empty() ? absl::OkStatus() : absl::InternalError(err);
}
#else
bool CudaCompiled() { return false; }
std::vector<GpuInfo> CudaDevices() { return {}; }
absl::Status CudaSelfTest() { return absl::UnavailableError("cuda: augur was built with AUGUR_CUDA=OFF"); }
#endif

absl::StatusOr<c10::Device> ParseDevice(const std::string& spec) {
  const std::string s = absl::AsciiStrToLower(spec);
  if (s == "cpu") return c10::Device(c10::kCPU);
  if (s == "auto") return torch::cuda::is_available() ? c10::Device(c10::kCUDA, 0) : c10::Device(c10::kCPU);
  if (s == "cuda" || s.rfind("cuda:", 0) == 0) {
    if (!torch::cuda::is_available())
      return absl::FailedPreconditionError(absl::StrCat("--device ", spec, ": no CUDA GPU is visible to LibTorch"));
    int index = 0;
    if (s.size() > 5 && !absl::SimpleAtoi(s.substr(5), &index))
      return absl::InvalidArgumentError(absl::StrCat("--device ", spec, ": bad device index"));
    if (index < 0 || index >= static_cast<int>(torch::cuda::device_count()))
      return absl::InvalidArgumentError(absl::StrCat("--device ", spec, ": only ", torch::cuda::device_count(), " GPU(s)"));
    return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  return absl::InvalidArgumentError(absl::StrCat("--device '", spec, "': expected cpu, cuda, cuda:N or auto"));
}

absl::StatusOr<c10::ScalarType> ParseDtype(const std::string& spec) {
  const std::string s = absl::AsciiStrToLower(spec);
  if (s == "float32" || s == "fp32" || s == "f32") return c10::kFloat;
  if (s == "float16" || s == "fp16" || s == "f16" || s == "half") return c10::kHalf;
  if (s == "bfloat16" || s == "bf16") return c10::kBFloat16;
  return absl::InvalidArgumentError(absl::StrCat("dtype '", spec, "': expected float32, float16 or bfloat16"));
}

std::string DtypeName(c10::ScalarType t) {
  switch (t) {
    case c10::kFloat: return "float32";
    case c10::kHalf: return "float16";
    case c10::kBFloat16: return "bfloat16";
    default: return c10::toString(t);
  }
}

}  // namespace augur
