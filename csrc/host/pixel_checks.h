// Argument checks of the pixel-loss ops (fastiqa_C::pixel_fwd / pixel_bwd), shared by
// the CPU kernels and the CUDA host (codes: csrc/common/pixel_math.h).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <optional>

#include "../common/pixel_math.h"
#include "acc_dtype.h"

namespace fastiqa {
namespace host {

inline void check_pixel_fwd(const at::Tensor& pred, const at::Tensor& target,
                            const std::optional<at::Tensor>& weight, int64_t weight_mode, int64_t channels,
                            int64_t inner, int64_t kind, int64_t reduction) {
  using namespace fastiqa::pixel;
  TORCH_CHECK(pred.sizes() == target.sizes() && pred.strides() == target.strides(),
              "fastiqa_C::pixel_fwd: pred and target must share shape and strides");
  TORCH_CHECK(pred.scalar_type() == target.scalar_type(),
              "fastiqa_C::pixel_fwd: pred and target must share a dtype");
  TORCH_CHECK(pred.is_non_overlapping_and_dense(), "fastiqa_C::pixel_fwd: input must be dense");
  TORCH_CHECK(target.device() == pred.device(), "fastiqa_C::pixel_fwd: tensors on different devices");
  TORCH_CHECK(kind == kL1 || kind == kMSE || kind == kCharbonnier, "fastiqa_C::pixel_fwd: unknown kind ", kind);
  TORCH_CHECK(reduction == kNone || reduction == kSum || reduction == kMean || reduction == kWeightedMean,
              "fastiqa_C::pixel_fwd: unknown reduction ", reduction);
  TORCH_CHECK(weight_mode == kNoWeight || weight_mode == kFull || weight_mode == kPlane || weight_mode == kPixel,
              "fastiqa_C::pixel_fwd: unknown weight_mode ", weight_mode);
  TORCH_CHECK((weight_mode == kNoWeight) == !weight.has_value(),
              "fastiqa_C::pixel_fwd: weight_mode and weight disagree");
  if (!weight.has_value()) return;
  const int64_t n = pred.numel();
  TORCH_CHECK(weight->device() == pred.device() && weight->scalar_type() == pred.scalar_type(),
              "fastiqa_C::pixel_fwd: weight must share the input's device and dtype");
  if (weight_mode == kFull) {
    TORCH_CHECK(weight->sizes() == pred.sizes() && weight->strides() == pred.strides(),
                "fastiqa_C::pixel_fwd: full weight must match the input's shape and strides");
  } else {
    TORCH_CHECK(channels > 0 && inner > 0 && weight->is_contiguous() && weight->numel() * channels == n &&
                    (n == 0 || n % (channels * inner) == 0),
                "fastiqa_C::pixel_fwd: broadcast weight does not fit the input");
  }
}

inline void check_pixel_bwd(const at::Tensor& grad, const at::Tensor& grad_out, const at::Tensor& gscale) {
  TORCH_CHECK(grad_out.dim() == 0 && gscale.dim() == 0,
              "fastiqa_C::pixel_bwd: expects a scalar grad_out and gscale");
  TORCH_CHECK(grad.is_non_overlapping_and_dense(), "fastiqa_C::pixel_bwd: grad must be dense");
  const auto acc = acc_dtype(grad);
  TORCH_CHECK(grad_out.scalar_type() == acc && gscale.scalar_type() == acc &&
                  grad_out.device() == grad.device() && gscale.device() == grad.device(),
              "fastiqa_C::pixel_bwd: grad_out and gscale must be accumulator scalars on the device");
}

}  // namespace host
}  // namespace fastiqa
