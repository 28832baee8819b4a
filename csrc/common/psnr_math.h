// Per-pixel math of the psnr family (per-image MSE / MAE, the statistic behind
// PSNR), shared by the CPU and CUDA kernels.
//
// Options, fused into the one pass over both images:
//   quantize   each sample is first put on the data_range's 8-bit grid, as saving
//              to PNG does: q(v) = rint(clamp(v * 255 / R, 0, 255)) (round half to
//              even, like torch.round / numpy.round). The difference is then taken
//              in 8-bit units and the statistic scaled back by R / 255 (squared for MSE).
//   y_channel  (3-channel RGB input) the luma of ITU-R BT.601 as used in SR papers:
//              Y = 16 + 65.481 R + 128.553 G + 24.966 B for RGB in [0, 1], i.e. in the
//              input's units Y = 16 R/255 + (65.481 r + 128.553 g + 24.966 b) / 255.
//              The offset cancels in the difference: dY = sum_c w_c (x_c - y_c), w = kY / 255.
//   crop       `crop` pixels dropped from every border before the statistic.
// Statistic per image: mean over the kept samples of d^2 (MSE) or |d| (MAE).
// Gradient of that mean w.r.t. x (not with quantize, whose derivative is 0 a.e.):
//   MSE: 2 d / count (times w_c for the Y channel), MAE: sign(d) / count (times w_c).
#pragma once

#include "codes.h"
#include "hd.h"

#include <cmath>
#include <cstdint>

namespace fastiqa {
namespace psnr {

// kind: codes::LossKind, kMSE or kL1 (MAE)
using namespace codes;

// BT.601 luma weights for RGB in [0, 1] (Y in [16, 235] on the 0..255 scale).
constexpr double kYR = 65.481;
constexpr double kYG = 128.553;
constexpr double kYB = 24.966;
constexpr double kYOffset = 16.0;

template <typename A> FASTIQA_HD A round_half_even(A v);

// m = 1.5 * 2^(significand bits): (v + m) - m is v rounded to an integer, ties to even.
template <typename A> struct RoundMagic;
template <> struct RoundMagic<float> { static constexpr float value = 12582912.0f; };
template <> struct RoundMagic<double> { static constexpr double value = 6755399441055744.0; };

// v + 1.5 * 2^23 - 1.5 * 2^23 rounds to the nearest integer, ties to even, in the
// default rounding mode for |v| < 2^22 (quantised values are in [0, 255]). Written
// with additions so that the host loops vectorise on every ISA clone; nvcc and
// GCC do not reassociate it without fast-math.
template <> FASTIQA_HD float round_half_even<float>(float v) {
#if defined(__CUDA_ARCH__)
  return rintf(v);
#else
  const float m = RoundMagic<float>::value;
  return (v + m) - m;
#endif
}
template <> FASTIQA_HD double round_half_even<double>(double v) {
#if defined(__CUDA_ARCH__)
  return rint(v);
#else
  const double m = RoundMagic<double>::value;
  return (v + m) - m;
#endif
}

// Quantise v (in data_range units, pre-multiplied by 255 / R) to the 8-bit grid.
template <typename A> FASTIQA_HD A quant8(A v_times_255_over_r) {
  A v = v_times_255_over_r;
  v = v < A(0) ? A(0) : v;
  v = v > A(255) ? A(255) : v;
  return round_half_even<A>(v);
}

// Luma difference of one pixel, sum_c w_c (x_c - y_c), the samples first put on
// the 8-bit grid when Q (qscale = 255 / R).
template <typename A, bool Q>
FASTIQA_HD A luma_diff(A xr, A xg, A xb, A yr, A yg, A yb, A wr, A wg, A wb, A qscale) {
  if (Q) {
    xr = quant8<A>(xr * qscale);
    xg = quant8<A>(xg * qscale);
    xb = quant8<A>(xb * qscale);
    yr = quant8<A>(yr * qscale);
    yg = quant8<A>(yg * qscale);
    yb = quant8<A>(yb * qscale);
  }
  return wr * (xr - yr) + wg * (xg - yg) + wb * (xb - yb);
}

// value and derivative of the per-sample statistic of a difference d
template <int K, typename A> FASTIQA_HD void stat_and_grad(A d, A& value, A& deriv) {
  if (K == kMSE) {
    value = d * d;
    deriv = A(2) * d;
  } else {
    value = d < A(0) ? -d : d;
    deriv = static_cast<A>(d > A(0)) - static_cast<A>(d < A(0));
  }
}

}  // namespace psnr
}  // namespace fastiqa
