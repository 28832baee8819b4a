// CPU implementations of the fastiqa_C ops: each forwards to the kernel of the
// active ISA variant (isa.h, kernel_tables.h); the SSIM ops build their output from
// the variant's plane kernels (csrc/host/ssim_op.h).
#include <torch/library.h>

#include "../host/ssim_op.h"
#include "kernel_tables.h"
#include "ssim_masked_table.h"

namespace fastiqa {
namespace cpu {
namespace {

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> ssim_fwd(
    const at::Tensor& pred, const at::Tensor& target, c10::IntArrayRef win_size, c10::ArrayRef<double> win_sigma,
    double c1, double c2, int64_t padding, int64_t reduction, int64_t output, double alpha, bool need_grad_pred,
    bool need_grad_target) {
  return host::ssim_forward(FASTIQA_CPU_OP(SsimKernels, ssim_kernels, planes_fwd), pred, target, win_size,
                            win_sigma, c1, c2, padding, reduction, output, alpha, need_grad_pred, need_grad_target);
}

std::tuple<at::Tensor, at::Tensor> ssim_bwd(
    const at::Tensor& pred, const at::Tensor& target, c10::IntArrayRef win_size, c10::ArrayRef<double> win_sigma,
    double c1, double c2, int64_t padding, int64_t reduction, int64_t output, double alpha,
    const std::optional<at::Tensor>& grad_out, const std::optional<at::Tensor>& grad_cs, bool need_grad_pred, bool need_grad_target) {
  return host::ssim_backward(FASTIQA_CPU_OP(SsimKernels, ssim_kernels, planes_bwd), pred, target, win_size,
                             win_sigma, c1, c2, padding, reduction, output, alpha, grad_out, grad_cs,
                             need_grad_pred, need_grad_target);
}

std::tuple<at::Tensor, at::Tensor> ssim_masked_fwd(const at::Tensor& pred, const at::Tensor& target,
                                                   const at::Tensor& mask, c10::IntArrayRef win_size,
                                                   c10::ArrayRef<double> win_sigma, double c1, double c2,
                                                   int64_t padding, bool want_map) {
  return FASTIQA_CPU_OP(MaskedSsimKernels, ssim_masked_kernels, fwd)(pred, target, mask, win_size, win_sigma, c1, c2,
                                                                     padding, want_map);
}

std::tuple<at::Tensor, at::Tensor> ssim_masked_bwd(const at::Tensor& pred, const at::Tensor& target,
                                                   const at::Tensor& mask, c10::IntArrayRef win_size,
                                                   c10::ArrayRef<double> win_sigma, double c1, double c2,
                                                   int64_t padding, const at::Tensor& d_planes,
                                                   const std::optional<at::Tensor>& d_map, bool need_grad_pred,
                                                   bool need_grad_target) {
  return FASTIQA_CPU_OP(MaskedSsimKernels, ssim_masked_kernels, bwd)(pred, target, mask, win_size, win_sigma, c1, c2,
                                                                     padding, d_planes, d_map, need_grad_pred,
                                                                     need_grad_target);
}

std::tuple<at::Tensor, at::Tensor> ssim_masked_components_fwd(const at::Tensor& pred, const at::Tensor& target,
                                                              const at::Tensor& mask, c10::IntArrayRef win_size,
                                                              c10::ArrayRef<double> win_sigma, double c1, double c2,
                                                              int64_t padding, bool want_map) {
  return FASTIQA_CPU_OP(MaskedSsimKernels, ssim_masked_kernels, comp)(pred, target, mask, win_size, win_sigma, c1, c2,
                                                                      padding, want_map);
}

}  // namespace

TORCH_LIBRARY_IMPL(fastiqa_C, CPU, m) {
  m.impl("pixel_fwd", FASTIQA_CPU_OP(PixelKernels, pixel_kernels, fwd));
  m.impl("pixel_bwd", FASTIQA_CPU_OP(PixelKernels, pixel_kernels, bwd));
  m.impl("psnr_fwd", FASTIQA_CPU_OP(PsnrKernels, psnr_kernels, fwd));
  m.impl("psnr_bwd", FASTIQA_CPU_OP(PsnrKernels, psnr_kernels, bwd));
  m.impl("y_plane", FASTIQA_CPU_OP(PsnrKernels, psnr_kernels, y_plane));
  m.impl("y_mse", FASTIQA_CPU_OP(PsnrKernels, psnr_kernels, y_mse));
  m.impl("ssim_fwd", &ssim_fwd);
  m.impl("ssim_bwd", &ssim_bwd);
  m.impl("ssim_y", FASTIQA_CPU_OP(SsimKernels, ssim_kernels, y_values));
  m.impl("ssim_masked_fwd", &ssim_masked_fwd);
  m.impl("ssim_masked_bwd", &ssim_masked_bwd);
  m.impl("ssim_masked_components_fwd", &ssim_masked_components_fwd);
  m.impl("gram_fwd", FASTIQA_CPU_OP(GramKernels, gram_kernels, gram_fwd));
  m.impl("gram_apply", FASTIQA_CPU_OP(GramKernels, gram_kernels, gram_apply));
  m.impl("style_fwd", FASTIQA_CPU_OP(GramKernels, gram_kernels, style_fwd));
  m.impl("style_bwd", FASTIQA_CPU_OP(GramKernels, gram_kernels, style_bwd));
  m.impl("lpips_head_fwd", FASTIQA_CPU_OP(PerceptualKernels, perceptual_kernels, lpips_head_fwd));
  m.impl("lpips_head_bwd", FASTIQA_CPU_OP(PerceptualKernels, perceptual_kernels, lpips_head_bwd));
  m.impl("dists_head_fwd", FASTIQA_CPU_OP(PerceptualKernels, perceptual_kernels, dists_head_fwd));
  m.impl("dists_head_bwd", FASTIQA_CPU_OP(PerceptualKernels, perceptual_kernels, dists_head_bwd));
}

}  // namespace cpu
}  // namespace fastiqa
