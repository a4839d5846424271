#include "quantize/gptq.h"

#include "core/safetensors.h"

#include <ATen/ATen.h>
#include <Eigen/Cholesky>
#include <Eigen/Dense>

#include <algorithm>
#include <numeric>
#include <vector>

namespace augur {
namespace {

using Mat = Eigen::MatrixXd;  // column-major: GPTQ works on columns

absl::Status Bad(const std::string& name, const std::string& problem) {
  return absl::InvalidArgumentError(absl::StrCat("gptq: ", name, ": ", problem));
}

}  // namespace

absl::StatusOr<QuantizedWeight> GptqQuantize(const at::Tensor& weight, const at::Tensor& hessian,
                                             const QuantScheme& scheme, const GptqOptions& opts,
                                             const std::string& name) {
  const at::Tensor wt = weight.detach().to(at::kCPU, at::kDouble).contiguous();
  const at::Tensor ht = hessian.detach().to(at::kCPU, at::kDouble).contiguous();
  const int64_t out = wt.size(0), in = wt.size(1);
  if (ht.dim() != 2 || ht.size(0) != in || ht.size(1) != in)
    return Bad(name, absl::StrCat("Hessian ", ShapeString(ht.sizes()), " does not match weight [", out, ",", in, "]"));
  const int64_t g = scheme.bits == 4 ? scheme.group : in;
  if (opts.block <= 0 || (scheme.bits == 4 && opts.block % g != 0))
    return Bad(name, absl::StrCat("--block ", opts.block, " must be a positive multiple of the group size ", g));
  if (!(opts.damp > 0)) return Bad(name, absl::StrCat("--damp ", opts.damp, " must be positive"));

  // Row-major torch data -> column-major Eigen.
  Mat W = Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
      wt.data_ptr<double>(), out, in);
  Mat H = Eigen::Map<const Mat>(ht.data_ptr<double>(), in, in);  // symmetric: layout does not matter

  // Columns no calibration input touched carry no information: quantize them as zero.
  for (int64_t i = 0; i < in; ++i)
    if (H(i, i) == 0) {
      H(i, i) = 1;
      W.col(i).setZero();
    }

  // Group parameters. int8 (one group per row) and act-order use static parameters from the
  // unquantized weight; plain int4 takes them from the updated weight when a group starts.
  const int64_t ng = scheme.bits == 4 ? (in + g - 1) / g : 1;
  std::vector<GroupParams> params(out * ng);
  std::vector<float> buf(g);
  auto find_params = [&](const Mat& src, int64_t col0, int64_t k) {  // src columns col0.. hold group k
    const int64_t n = std::min(g, in - k * g);
    for (int64_t r = 0; r < out; ++r) {
      for (int64_t j = 0; j < n; ++j) buf[j] = static_cast<float>(src(r, col0 + j));
      params[r * ng + k] = scheme.bits == 8 ? Int8Params(buf.data(), n) : Int4Params(buf.data(), n);
    }
  };
  const bool static_groups = opts.act_order || scheme.bits == 8;
  if (static_groups)
    for (int64_t k = 0; k < ng; ++k) find_params(W, k * g, k);

  std::vector<int64_t> perm(in);
  std::iota(perm.begin(), perm.end(), 0);
  if (opts.act_order) {
    std::stable_sort(perm.begin(), perm.end(), [&](int64_t a, int64_t b) { return H(a, a) > H(b, b); });
    Mat Wp(out, in), Hp(in, in);
    for (int64_t j = 0; j < in; ++j) Wp.col(j) = W.col(perm[j]);
    for (int64_t a = 0; a < in; ++a)
      for (int64_t b = 0; b < in; ++b) Hp(a, b) = H(perm[a], perm[b]);
    W.swap(Wp);
    H.swap(Hp);
  }

  H.diagonal().array() += opts.damp * H.diagonal().mean();
  Eigen::LLT<Mat> llt(H);
  if (llt.info() != Eigen::Success)
    return Bad(name, absl::StrCat("Hessian is not positive definite after damping ", opts.damp, "; raise --damp"));
  const Mat Hinv = llt.solve(Mat::Identity(in, in));
  Eigen::LLT<Mat> llt_inv(Hinv);
  if (llt_inv.info() != Eigen::Success)
    return Bad(name, absl::StrCat("inverse Hessian is not positive definite (damping ", opts.damp, "); raise --damp"));
  const Mat U = llt_inv.matrixU();  // Hinv = Uᵀ U

  std::vector<int> codes(out * in);  // [out, in] in the original column order
  for (int64_t i1 = 0; i1 < in; i1 += opts.block) {
    const int64_t i2 = std::min(i1 + opts.block, in), count = i2 - i1;
    Mat W1 = W.middleCols(i1, count);
    Mat Err1(out, count);
    for (int64_t i = 0; i < count; ++i) {
      const int64_t j = i1 + i, col = perm[j];
      const int64_t k = scheme.bits == 4 ? col / g : 0;
      // Without act-order j == col and a block holds whole groups (block % g == 0).
      if (!static_groups && col % g == 0) find_params(W1, i, k);
      const double d = U(j, j);
      for (int64_t r = 0; r < out; ++r) {
        const GroupParams& p = params[r * ng + k];
        const float w = static_cast<float>(W1(r, i));
        int code;
        double value;
        if (scheme.bits == 8) {
          code = Int8Code(w, p.scale);
          value = Int8Value(code, p.scale);
        } else {
          code = Int4Code(w, p);
          value = Int4Value(code, p);
        }
        codes[r * in + col] = code;
        Err1(r, i) = (W1(r, i) - value) / d;
      }
      if (i + 1 < count) W1.rightCols(count - i - 1).noalias() -= Err1.col(i) * U.row(j).segment(j + 1, count - i - 1);
    }
    if (i2 < in) W.rightCols(in - i2).noalias() -= Err1 * U.block(i1, i2, count, in - i2);
  }

  const at::Tensor code_t = at::from_blob(codes.data(), {out, in}, at::kInt).clone();
  at::Tensor scales = at::empty({out, ng}, at::kFloat), zeros = at::empty({out, ng}, at::kByte);
  for (int64_t i = 0; i < out * ng; ++i) {
    scales.data_ptr<float>()[i] = params[i].scale;
    zeros.data_ptr<uint8_t>()[i] = static_cast<uint8_t>(params[i].zero);
  }
  if (scheme.bits == 8) return MakeQuantized(scheme, out, in, code_t.to(at::kChar), scales.view({out}), at::Tensor());
  return MakeQuantized(scheme, out, in, code_t.to(at::kByte), scales, zeros);
}

}  // namespace augur
