// Argument checks of the psnr-family ops (fastiqa_C::psnr_fwd / psnr_bwd), shared by
// the CPU kernels and the CUDA host (codes: csrc/common/psnr_math.h).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include "../common/psnr_math.h"
#include "acc_dtype.h"

namespace fastiqa {
namespace host {

inline void check_psnr_fwd(const at::Tensor& x, const at::Tensor& y, int64_t kind, int64_t crop, bool y_channel,
                           bool quantize, double data_range, bool need_grad) {
  using namespace fastiqa::psnr;
  TORCH_CHECK(x.dim() == 4, "fastiqa_C::psnr_fwd: expects (N, C, H, W) images");
  TORCH_CHECK(x.sizes() == y.sizes() && x.strides() == y.strides(),
              "fastiqa_C::psnr_fwd: x and y must share shape and strides");
  TORCH_CHECK(x.scalar_type() == y.scalar_type(), "fastiqa_C::psnr_fwd: x and y must share a dtype");
  TORCH_CHECK(y.device() == x.device(), "fastiqa_C::psnr_fwd: tensors on different devices");
  TORCH_CHECK(x.is_non_overlapping_and_dense(), "fastiqa_C::psnr_fwd: input must be dense");
  TORCH_CHECK(x.size(0) <= 1 || x.stride(0) == x.numel() / x.size(0),
              "fastiqa_C::psnr_fwd: images must be contiguous blocks (NCHW or channels_last)");
  TORCH_CHECK(kind == kMSE || kind == kL1, "fastiqa_C::psnr_fwd: unknown kind ", kind);
  TORCH_CHECK(crop >= 0 && 2 * crop < x.size(2) && 2 * crop < x.size(3),
              "fastiqa_C::psnr_fwd: crop leaves no pixels");
  TORCH_CHECK(!y_channel || x.size(1) == 3, "fastiqa_C::psnr_fwd: y_channel needs 3 channels");
  TORCH_CHECK(data_range > 0, "fastiqa_C::psnr_fwd: data_range must be > 0");
  TORCH_CHECK(!(need_grad && quantize), "fastiqa_C::psnr_fwd: no gradient through quantize");
}

inline void check_psnr_bwd(const at::Tensor& grad, const at::Tensor& grad_out) {
  TORCH_CHECK(grad.dim() == 4 && grad.is_non_overlapping_and_dense(),
              "fastiqa_C::psnr_bwd: grad must be a dense (N, C, H, W) tensor");
  const int64_t n = grad.size(0);
  TORCH_CHECK(n <= 1 || grad.stride(0) == grad.numel() / n, "fastiqa_C::psnr_bwd: images must be contiguous blocks");
  TORCH_CHECK(grad_out.dim() == 1 && grad_out.size(0) == n && grad_out.scalar_type() == acc_dtype(grad) &&
                  grad_out.device() == grad.device() && grad_out.is_contiguous(),
              "fastiqa_C::psnr_bwd: grad_out must be a contiguous (N,) accumulator tensor on the device");
}

inline void check_y_plane(const at::Tensor& img, double divisor, double data_range, int64_t crop) {
  TORCH_CHECK(img.dim() == 4 && img.size(1) == 3, "fastiqa_C::y_plane: img must be (N, 3, H, W) RGB, got ",
              img.sizes());
  const auto t = img.scalar_type();
  TORCH_CHECK(t == at::kByte || t == at::kUInt16 || t == at::kFloat || t == at::kDouble,
              "fastiqa_C::y_plane: img must be uint8, uint16, float32 or float64, got ", t);
  TORCH_CHECK(divisor > 0, "fastiqa_C::y_plane: divisor must be > 0");
  TORCH_CHECK(data_range > 0, "fastiqa_C::y_plane: data_range must be > 0");
  TORCH_CHECK(crop >= 0 && (img.numel() == 0 || (2 * crop < img.size(2) && 2 * crop < img.size(3))),
              "fastiqa_C::y_plane: crop leaves no pixels");
}

// x, y: a decoded pair for the fused Y-channel statistics (y_mse, ssim_y).
inline void check_y_pair(const at::Tensor& x, const at::Tensor& y, double div_x, double div_y, double data_range,
                         int64_t crop) {
  check_y_plane(x, div_x, data_range, crop);
  check_y_plane(y, div_y, data_range, crop);
  TORCH_CHECK(x.sizes() == y.sizes(), "fastiqa_C: x and y must have the same shape, got ", x.sizes(), " and ",
              y.sizes());
  TORCH_CHECK(x.scalar_type() == y.scalar_type(), "fastiqa_C: x and y must share a dtype");
}

}  // namespace host
}  // namespace fastiqa
