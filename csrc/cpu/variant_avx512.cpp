// The CPU kernels of every family compiled for ISA level avx512 (see isa.h).
#define FASTIQA_ISA_LEVEL 2
// GCC 12's avx512fintrin.h: _mm512_max_ps & co. start from _mm512_undefined_ps(), which
// -Wmaybe-uninitialized reports once inlined (a false positive; GCC bug 105593)
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include "isa.h"
#if FASTIQA_X86_VARIANTS || FASTIQA_ISA_LEVEL == 0
#include "gram_impl.h"
#include "perceptual_impl.h"
#include "pixel_impl.h"
#include "psnr_impl.h"
#include "ssim_impl.h"
#endif
