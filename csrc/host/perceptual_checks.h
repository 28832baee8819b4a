// Argument checks of the perceptual-family ops (fastiqa_C::lpips_head_fwd / _bwd,
// dists_head_fwd / _bwd; contract: fastiqa/backends/reference/_perceptual.py).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include "acc_dtype.h"

namespace fastiqa {
namespace host {

// pred, target: (N, C, H, W) features of one dtype and device, at least one element;
// weight: (C,) for LPIPS, (2, C) for DISTS (alpha, beta).
inline void check_head(const at::Tensor& pred, const at::Tensor& target, const at::Tensor& weight, bool dists,
                       const char* op) {
  TORCH_CHECK(pred.dim() == 4, "fastiqa_C::", op, ": pred must be (N, C, H, W) features, got ", pred.dim(),
              " dimensions");
  TORCH_CHECK(target.sizes() == pred.sizes(), "fastiqa_C::", op, ": target must have pred's shape");
  TORCH_CHECK(target.scalar_type() == pred.scalar_type() && at::isFloatingType(pred.scalar_type()),
              "fastiqa_C::", op, ": pred and target must share one floating dtype");
  TORCH_CHECK(target.device() == pred.device() && weight.device() == pred.device(), "fastiqa_C::", op,
              ": pred, target and weight must be on one device");
  TORCH_CHECK(pred.numel() > 0, "fastiqa_C::", op, ": empty features (the reference backend takes them)");
  const int64_t C = pred.size(1);
  if (dists) {
    TORCH_CHECK(weight.dim() == 2 && weight.size(0) == 2 && weight.size(1) == C, "fastiqa_C::", op,
                ": weight must be (2, C): alpha and beta");
  } else {
    TORCH_CHECK(weight.dim() == 1 && weight.size(0) == C, "fastiqa_C::", op, ": weight must be (C,)");
  }
  TORCH_CHECK(at::isFloatingType(weight.scalar_type()), "fastiqa_C::", op, ": weight must be floating");
}

inline void check_head_bwd(const at::Tensor& pred, const at::Tensor& grad_out, const char* op) {
  TORCH_CHECK(grad_out.dim() == 1 && grad_out.size(0) == pred.size(0) && grad_out.device() == pred.device() &&
                  at::isFloatingType(grad_out.scalar_type()),
              "fastiqa_C::", op, ": grad_out must be a floating (N,) tensor on pred's device");
}

}  // namespace host
}  // namespace fastiqa
