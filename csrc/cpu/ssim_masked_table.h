// The masked SSIM's table of CPU entry points (fastiqa_C::ssim_masked_fwd / ssim_masked_bwd /
// ssim_masked_components_fwd:
// csrc/cpu/ssim_masked.h fills it per ISA level), apart from csrc/cpu/kernel_tables.h so that the
// other families' variant files do not depend on it; csrc/cpu/register.cpp registers its entries.
#pragma once

#include "kernel_tables.h"

namespace fastiqa {
namespace cpu {

struct MaskedSsimKernels {
  Tensor2 (*fwd)(const at::Tensor& pred, const at::Tensor& target, const at::Tensor& mask, c10::IntArrayRef win_size,
                 c10::ArrayRef<double> win_sigma, double c1, double c2, int64_t padding, bool want_map);
  Tensor2 (*bwd)(const at::Tensor& pred, const at::Tensor& target, const at::Tensor& mask, c10::IntArrayRef win_size,
                 c10::ArrayRef<double> win_sigma, double c1, double c2, int64_t padding, const at::Tensor& d_planes,
                 const OptTensor& d_map, bool need_grad_pred, bool need_grad_target);
  // fastiqa_C::ssim_masked_components_fwd (images): (N, C, 5) sums and (4, N, C, Ho, Wo) maps
  Tensor2 (*comp)(const at::Tensor& pred, const at::Tensor& target, const at::Tensor& mask, c10::IntArrayRef win_size,
                  c10::ArrayRef<double> win_sigma, double c1, double c2, int64_t padding, bool want_map);
};

FASTIQA_CPU_VARIANTS(MaskedSsimKernels, ssim_masked_kernels)

}  // namespace cpu
}  // namespace fastiqa
