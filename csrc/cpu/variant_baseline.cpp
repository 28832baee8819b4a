// The CPU kernels of every family compiled for ISA level baseline (see isa.h).
#define FASTIQA_ISA_LEVEL 0
#include "isa.h"
#if FASTIQA_X86_VARIANTS || FASTIQA_ISA_LEVEL == 0
#include "gram_impl.h"
#include "perceptual_impl.h"
#include "pixel_impl.h"
#include "psnr_impl.h"
#include "ssim_impl.h"
#endif
