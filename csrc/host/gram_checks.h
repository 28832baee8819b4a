// Argument checks of the gram-family ops (fastiqa_C::gram_fwd, gram_apply, style_fwd,
// style_bwd), shared by the CPU kernels and the CUDA host (codes: csrc/common/gram_math.h).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <optional>

#include "../common/codes.h"
#include "acc_dtype.h"

namespace fastiqa {
namespace host {

// (N, C, K) features dense along K (NCHW) or along C (channels_last).
inline void check_features(const at::Tensor& f, const char* name) {
  TORCH_CHECK(f.dim() == 3, "fastiqa_C::", name, ": features must be (N, C, K)");
  const int64_t C = f.size(1), K = f.size(2);
  const int64_t sC = C == 1 ? K : f.stride(1), sK = K == 1 ? 1 : f.stride(2);
  TORCH_CHECK((sK == 1 && sC >= K) || (sC == 1 && sK >= C), "fastiqa_C::", name,
              ": features must be dense along C or along K");
}

inline void check_gram_q(const at::Tensor& q, const at::Tensor& feat) {
  const int64_t N = feat.size(0), C = feat.size(1);
  TORCH_CHECK(q.dim() == 3 && q.size(1) == C && q.size(2) == C && (q.size(0) == N || q.size(0) == 1) &&
                  q.scalar_type() == acc_dtype(feat) && q.device() == feat.device(),
              "fastiqa_C::gram_apply: q must be (N or 1, C, C) accumulators on the features' device");
}

inline void check_style_fwd(const at::Tensor& x, const std::optional<at::Tensor>& y,
                            const std::optional<at::Tensor>& target_gram, int64_t criterion) {
  TORCH_CHECK(y.has_value() != target_gram.has_value(), "fastiqa_C::style_fwd: give exactly one of y and target_gram");
  using namespace fastiqa::codes;
  TORCH_CHECK(criterion == kCriterionL1 || criterion == kCriterionL2 || criterion == kCriterionFro,
              "fastiqa_C::style_fwd: unknown criterion ", criterion);
  check_features(x, "style_fwd");
  const int64_t N = x.size(0), C = x.size(1);
  if (y.has_value()) {
    TORCH_CHECK(y->sizes() == x.sizes() && y->strides() == x.strides() && y->scalar_type() == x.scalar_type() &&
                    y->device() == x.device(),
                "fastiqa_C::style_fwd: x and y must share shape, strides, dtype and device");
  } else {
    TORCH_CHECK(target_gram->dim() == 3 && target_gram->size(1) == C && target_gram->size(2) == C &&
                    (target_gram->size(0) == N || target_gram->size(0) == 1) &&
                    target_gram->scalar_type() == acc_dtype(x) && target_gram->is_contiguous() &&
                    target_gram->device() == x.device(),
                "fastiqa_C::style_fwd: target_gram must be contiguous (N or 1, C, C) accumulators");
  }
}

inline void check_style_bwd(const at::Tensor& x, const at::Tensor& y, const at::Tensor& p, const at::Tensor& grad_out,
                            bool need_y) {
  check_features(x, "style_bwd");
  const int64_t N = x.size(0), C = x.size(1);
  TORCH_CHECK(!need_y || (y.sizes() == x.sizes() && y.strides() == x.strides() && y.scalar_type() == x.scalar_type()),
              "fastiqa_C::style_bwd: x and y must share shape, strides and dtype");
  TORCH_CHECK(p.dim() == 3 && p.size(0) == N && p.size(1) == C && p.size(2) == C && p.scalar_type() == acc_dtype(x),
              "fastiqa_C::style_bwd: p must be (N, C, C) accumulators");
  TORCH_CHECK(grad_out.numel() == 1, "fastiqa_C::style_bwd: grad_out must be a scalar");
}

}  // namespace host
}  // namespace fastiqa
