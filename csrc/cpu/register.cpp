// CPU implementations of the fastiqa_C ops: each forwards to the kernel of the
// active ISA variant (isa.h, kernel_tables.h).
#include <torch/library.h>

#include "kernel_tables.h"

namespace fastiqa {
namespace cpu {

TORCH_LIBRARY_IMPL(fastiqa_C, CPU, m) {
  m.impl("pixel_fwd", FASTIQA_CPU_OP(PixelKernels, pixel_kernels, fwd));
  m.impl("pixel_bwd", FASTIQA_CPU_OP(PixelKernels, pixel_kernels, bwd));
  m.impl("psnr_fwd", FASTIQA_CPU_OP(PsnrKernels, psnr_kernels, fwd));
  m.impl("psnr_bwd", FASTIQA_CPU_OP(PsnrKernels, psnr_kernels, bwd));
  m.impl("y_plane", FASTIQA_CPU_OP(PsnrKernels, psnr_kernels, y_plane));
  m.impl("y_mse", FASTIQA_CPU_OP(PsnrKernels, psnr_kernels, y_mse));
  m.impl("ssim_fwd", FASTIQA_CPU_OP(SsimKernels, ssim_kernels, fwd));
  m.impl("ssim_bwd", FASTIQA_CPU_OP(SsimKernels, ssim_kernels, bwd));
  m.impl("ssim_y", FASTIQA_CPU_OP(SsimKernels, ssim_kernels, y_values));
  m.impl("gram_fwd", FASTIQA_CPU_OP(GramKernels, gram_kernels, gram_fwd));
  m.impl("gram_apply", FASTIQA_CPU_OP(GramKernels, gram_kernels, gram_apply));
  m.impl("style_fwd", FASTIQA_CPU_OP(GramKernels, gram_kernels, style_fwd));
  m.impl("style_bwd", FASTIQA_CPU_OP(GramKernels, gram_kernels, style_bwd));
}

}  // namespace cpu
}  // namespace fastiqa
