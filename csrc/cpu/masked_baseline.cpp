// The masked SSIM kernels (csrc/cpu/ssim_masked.h) compiled for ISA level baseline (see isa.h); a
// translation unit of their own, apart from csrc/cpu/variant_baseline.cpp.
#define FASTIQA_ISA_LEVEL 0
#include "isa.h"
#if FASTIQA_X86_VARIANTS || FASTIQA_ISA_LEVEL == 0
#include "ssim_masked.h"
#endif
