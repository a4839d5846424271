// GPTQ (Frantar et al. 2022): quantize a weight column by column, pushing each column's
// rounding error onto the columns not yet quantized through the inverse Hessian of the
// layer's reconstruction loss ||X Wᵀ - X Ŵᵀ||², H = 2 XᵀX over calibration inputs X.
// Cholesky factor of H⁻¹ (upper, Eigen), blocks of columns with lazy batch updates, optional
// act-order (columns by descending H diagonal) with static groups (group parameters fixed from
// the unquantized weight before reordering, so the stored layout does not change).
#pragma once

#include <ATen/core/Tensor.h>

#include <string>

#include "core/status.h"
#include "runtime/qweight.h"

namespace augur {

struct GptqOptions {
  double damp = 0.01;    // added to H's diagonal, as a fraction of its mean
  int64_t block = 128;   // columns per lazy-update block; a multiple of the int4 group
  bool act_order = false;
};

// weight float [out, in]; hessian [in, in] (symmetric PSD, any float dtype). `name` is used in
// errors (e.g. a Hessian that stays indefinite after damping).
absl::StatusOr<QuantizedWeight> GptqQuantize(const at::Tensor& weight, const at::Tensor& hessian,
                                             const QuantScheme& scheme, const GptqOptions& opts,
                                             const std::string& name);

}  // namespace augur
