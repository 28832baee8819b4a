// Argument checks of the masked SSIM ops (fastiqa_C::ssim_masked_fwd / ssim_masked_bwd; contract:
// fastiqa/backends/reference/_ssim_masked.py), shared by the CPU kernels and the CUDA host.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <optional>

#include "ssim_checks.h"

namespace fastiqa {
namespace host {

// Per-plane sums of the masked op: m_c S, m_c, m |x - y|, m.
constexpr int kMaskedPlaneSums = 4;

inline SsimWindow check_ssim_masked(const at::Tensor& x, const at::Tensor& y, const at::Tensor& mask,
                                    c10::IntArrayRef win_size, c10::ArrayRef<double> win_sigma, int64_t padding) {
  const SsimWindow win = ssim_window(win_size, win_sigma);
  check_ssim_inputs(x, y, win, padding);
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble || x.scalar_type() == at::kHalf ||
                  x.scalar_type() == at::kBFloat16,
              "fastiqa_C::ssim_masked: pred must be float16, bfloat16, float32 or float64");
  TORCH_CHECK(mask.sizes() == x.sizes() && mask.scalar_type() == acc_dtype(x) && mask.device() == x.device(),
              "fastiqa_C::ssim_masked: mask must have pred's shape (expanded), the accumulator dtype and pred's "
              "device");
  return win;
}

inline void check_ssim_masked_grads(const at::Tensor& x, const at::Tensor& d_planes,
                                    const std::optional<at::Tensor>& d_map, const int64_t* out_sizes) {
  TORCH_CHECK(d_planes.scalar_type() == acc_dtype(x) && d_planes.is_contiguous() && d_planes.device() == x.device() &&
                  d_planes.numel() == x.size(0) * x.size(1) * kMaskedPlaneSums,
              "fastiqa_C::ssim_masked_bwd: d_planes must be a contiguous (N, C, 4) accumulator-dtype tensor on the "
              "device");
  if (!d_map.has_value()) return;
  bool ok = d_map->dim() == x.dim() && d_map->size(0) == x.size(0) && d_map->size(1) == x.size(1) &&
            d_map->scalar_type() == x.scalar_type() && d_map->device() == x.device();
  for (int64_t d = 2; ok && d < x.dim(); ++d) ok = d_map->size(d) == out_sizes[d - 2];
  TORCH_CHECK(ok, "fastiqa_C::ssim_masked_bwd: d_map must be an (N, C, *output size) tensor of pred's dtype");
}

}  // namespace host
}  // namespace fastiqa
