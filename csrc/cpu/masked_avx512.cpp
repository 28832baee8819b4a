// The masked SSIM kernels (csrc/cpu/ssim_masked.h) compiled for ISA level avx512 (see isa.h); a
// translation unit of their own, apart from csrc/cpu/variant_avx512.cpp.
#define FASTIQA_ISA_LEVEL 2
// GCC 12's avx512fintrin.h false positive (GCC bug 105593), as csrc/cpu/variant_avx512.cpp
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include "isa.h"
#if FASTIQA_X86_VARIANTS || FASTIQA_ISA_LEVEL == 0
#include "ssim_masked.h"
#endif
