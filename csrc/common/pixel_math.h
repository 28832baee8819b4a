// Per-pixel math of the pixel-loss family, shared by the CPU and CUDA kernels.
// d = pred - target; each loss gives its value l(d) and its derivative dl/dd.
//   L1:          l = |d|,               dl/dd = sign(d)   (sign(0) = 0, as torch)
//   MSE:         l = d^2,               dl/dd = 2 d
//   Charbonnier: l = sqrt(d^2 + c),     dl/dd = d / sqrt(d^2 + c)
// The Charbonnier constant c is added unsquared here: the functional API passes
// eps^2, BasicSR's convention passes its eps directly.
#pragma once

#include "codes.h"
#include "hd.h"

#include <cmath>
#include <cstdint>

namespace fastiqa {
namespace pixel {

// kind (LossKind), reduction (Reduction) and weight_mode (WeightMode) codes: codes.h
using namespace codes;

FASTIQA_HD float fq_sqrt(float x) { return sqrtf(x); }
FASTIQA_HD double fq_sqrt(double x) { return sqrt(x); }
#if defined(__CUDA_ARCH__)
__device__ __forceinline__ float fq_rsqrt(float x) { return rsqrtf(x); }
__device__ __forceinline__ double fq_rsqrt(double x) { return rsqrt(x); }
#endif

template <int K, typename A>
FASTIQA_HD void loss_and_grad(A d, A c, A& value, A& deriv) {
  if (K == kL1) {
    value = fabs(d);
    deriv = static_cast<A>(d > A(0)) - static_cast<A>(d < A(0));  // sign(d), branch-free
  } else if (K == kMSE) {
    value = d * d;
    deriv = A(2) * d;
  } else {
    const A q = d * d + c;
#if defined(__CUDA_ARCH__)
    // One reciprocal square root instead of IEEE sqrt + division (whose slow
    // paths spill registers): value = q / sqrt(q), deriv = d / sqrt(q).
    const A r = fq_rsqrt(q);
    value = q * r;
    deriv = d * r;
#else
    const A s = fq_sqrt(q);
    value = s;
    deriv = d / s;
#endif
  }
}

}  // namespace pixel
}  // namespace fastiqa
