// Torch side of the CUDA SSIM kernels on volumes (N, C, D, H, W): the plane kernels that
// csrc/cuda/ssim_host.cpp calls for 5-D inputs (the contract of csrc/host/ssim_op.h; the
// kernels: csrc/cuda/ssim_volume.cu).
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>
#include <tuple>

#include "../host/ssim_checks.h"

namespace fastiqa {
namespace cuda {

// planes (N, C, 3), the map (N, C, Do, Ho, Wo, contiguous) or empty, gx, gy
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> ssim_volume_planes_fwd(
    const at::Tensor& x, const at::Tensor& y, const host::SsimWindow& win, double c1, double c2, int64_t padding,
    bool want_map, bool want_l1, bool components, const std::optional<at::Tensor>& weights, bool need_gx,
    bool need_gy);

std::tuple<at::Tensor, at::Tensor> ssim_volume_planes_bwd(const at::Tensor& x, const at::Tensor& y,
                                                          const host::SsimWindow& win, double c1, double c2,
                                                          int64_t padding, const at::Tensor& weights,
                                                          const std::optional<at::Tensor>& dmap, bool need_gx,
                                                          bool need_gy);

}  // namespace cuda
}  // namespace fastiqa
