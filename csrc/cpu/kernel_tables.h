// The entry points of each CPU kernel family, as a table of function pointers that
// every ISA variant fills (see isa.h): fastiqa::cpu::<isa>::<family>_kernels(Table*).
// csrc/cpu/register.cpp registers ops that forward to the active variant's entries.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>
#include <tuple>

#include "../host/ssim_checks.h"
#include "isa.h"

namespace fastiqa {
namespace cpu {

using Tensor2 = std::tuple<at::Tensor, at::Tensor>;
using Tensor3 = std::tuple<at::Tensor, at::Tensor, at::Tensor>;
using Tensor4 = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor>;
using OptTensor = std::optional<at::Tensor>;

struct PixelKernels {
  Tensor3 (*fwd)(const at::Tensor& pred, const at::Tensor& target, const OptTensor& weight,
                 int64_t weight_mode, int64_t channels, int64_t inner, int64_t kind, double c,
                 int64_t reduction, double norm_scale, bool need_grad);
  Tensor2 (*bwd)(const at::Tensor& grad, const at::Tensor& grad_out, const at::Tensor& gscale,
                 bool need_grad_pred, bool need_grad_target);
};

struct PsnrKernels {
  Tensor2 (*fwd)(const at::Tensor& pred, const at::Tensor& target, int64_t kind, int64_t crop, bool y_channel,
                 bool quantize, double data_range, bool need_grad);
  Tensor2 (*bwd)(const at::Tensor& grad, const at::Tensor& grad_out, bool need_grad_pred, bool need_grad_target);
  at::Tensor (*y_plane)(const at::Tensor& img, double divisor, double data_range, int64_t crop);
  at::Tensor (*y_mse)(const at::Tensor& pred, const at::Tensor& target, double div_pred, double div_target,
                      double data_range, int64_t crop);
};

// The SSIM plane kernels (contract: csrc/host/ssim_op.h, which builds the ssim_fwd / ssim_bwd
// ops on them) and the evaluation's fused Y-channel SSIM.
struct SsimKernels {
  Tensor4 (*planes_fwd)(const at::Tensor& pred, const at::Tensor& target, const host::SsimWindow& win, double c1,
                        double c2, int64_t padding, bool want_map, bool want_l1, bool components,
                        const OptTensor& d_planes, bool need_grad_pred, bool need_grad_target);
  Tensor2 (*planes_bwd)(const at::Tensor& pred, const at::Tensor& target, const host::SsimWindow& win, double c1,
                        double c2, int64_t padding, const at::Tensor& d_planes, const OptTensor& d_map,
                        bool need_grad_pred, bool need_grad_target);
  Tensor2 (*y_values)(const at::Tensor& pred, const at::Tensor& target, double div_pred, double div_target,
                      double data_range, int64_t crop, int64_t win_size, double win_sigma, double c1, double c2);
};

struct GramKernels {
  at::Tensor (*gram_fwd)(const at::Tensor& feat, double scale);
  at::Tensor (*gram_apply)(const at::Tensor& q, const at::Tensor& feat, double alpha);
  Tensor2 (*style_fwd)(const at::Tensor& pred, const OptTensor& target, const OptTensor& target_gram,
                       double scale, int64_t criterion, bool need_grad);
  Tensor2 (*style_bwd)(const at::Tensor& pred, const at::Tensor& target, const at::Tensor& p,
                       const at::Tensor& grad_out, double scale, bool need_grad_pred, bool need_grad_target);
};

// The LPIPS / DISTS distance heads, one backbone layer per call (csrc/cpu/perceptual_impl.h).
struct PerceptualKernels {
  at::Tensor (*lpips_head_fwd)(const at::Tensor& pred, const at::Tensor& target, const at::Tensor& weight);
  Tensor2 (*lpips_head_bwd)(const at::Tensor& pred, const at::Tensor& target, const at::Tensor& weight,
                            const at::Tensor& grad_out, bool need_grad_pred, bool need_grad_target);
  at::Tensor (*dists_head_fwd)(const at::Tensor& pred, const at::Tensor& target, const at::Tensor& weight);
  Tensor2 (*dists_head_bwd)(const at::Tensor& pred, const at::Tensor& target, const at::Tensor& weight,
                            const at::Tensor& grad_out, bool need_grad_pred, bool need_grad_target);
};

FASTIQA_CPU_VARIANTS(PixelKernels, pixel_kernels)
FASTIQA_CPU_VARIANTS(PsnrKernels, psnr_kernels)
FASTIQA_CPU_VARIANTS(SsimKernels, ssim_kernels)
FASTIQA_CPU_VARIANTS(GramKernels, gram_kernels)
FASTIQA_CPU_VARIANTS(PerceptualKernels, perceptual_kernels)

}  // namespace cpu
}  // namespace fastiqa
