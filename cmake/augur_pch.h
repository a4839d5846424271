// Precompiled for every augur target: the LibTorch headers cost ~15 s per file otherwise.
#pragma once
#include <torch/torch.h>
#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <absl/strings/str_cat.h>
#include <string>
#include <vector>
