// Criterion math of the gram family (style loss), shared by the CPU and CUDA kernels.
//
// Notation: F_x, F_y are (C, K) feature matrices per image, K = H*W, s the Gram
// scale (1 / (C*K) when normalised, 1 for the raw F F^T). The Gram difference
//     D = s (F_x F_x^T - F_y F_y^T) = s/2 (M + M^T),   M = (F_x + F_y)(F_x - F_y)^T
// (expand (a+b)(a-b)^T + (a-b)(a+b)^T = 2 (a a^T - b b^T)): one GEMM of C x C x K
// gives both Grams' difference, where two separate Grams cost two. With a
// precomputed target Gram T, D = s F_x F_x^T - T.
// Criterion over all N*C*C entries of D:
//   l1:  loss = sum |D| / (N C C),   P = dloss/dD = sign(D) / (N C C)
//   l2:  loss = sum D^2 / (N C C),   P = 2 D / (N C C)
//   fro: loss = sqrt(sum D^2),       P = D / loss   (0 when loss == 0)
// Backward: dloss/dF_x = s (P + P^T) F_x, dloss/dF_y = -s (P + P^T) F_y.
#pragma once

#include "codes.h"

#if defined(__CUDACC__)
#define FASTIQA_GRAM_HD __host__ __device__ __forceinline__
#else
#define FASTIQA_GRAM_HD inline __attribute__((always_inline))
#endif

namespace fastiqa {
namespace gram {

// criterion: codes::Criterion
using namespace codes;

// Per-entry value (summed over all entries) and derivative before the global scaling
// (1/(N C C) for l1 and l2, applied by the caller; fro: value is d^2, deriv d).
template <int CR, typename A>
FASTIQA_GRAM_HD void entry(A d, A& value, A& deriv) {
  if (CR == kCriterionL1) {
    value = d < A(0) ? -d : d;
    deriv = static_cast<A>(d > A(0)) - static_cast<A>(d < A(0));
  } else if (CR == kCriterionL2) {
    value = d * d;
    deriv = A(2) * d;
  } else {
    value = d * d;
    deriv = d;
  }
}

}  // namespace gram
}  // namespace fastiqa
