// Math of the perceptual family (the distance heads of LPIPS and DISTS, one backbone layer),
// shared by the compiled kernels; the op contract is fastiqa/backends/reference/_perceptual.py.
//
// LPIPS, per pixel: u = x / (||x|| + eps), v = y / (||y|| + eps) over the channels,
//   value += sum_c w_c (u_c - v_c)^2; with g_c = k w_c (u_c - v_c), k = 2 grad_out / HW:
//   d/dx_c = g_c / s_x - x_c (g . x) / (s_x^2 r_x),  r_x = ||x||, s_x = r_x + eps
//   d/dy_c = -g_c / s_y + y_c (g . y) / (s_y^2 r_y)
//   (the second term 0 where r = 0: its limit; autograd of the formula gives NaN there).
// DISTS, per plane (n, c) of HW pixels, from its means mx, my, variances vx, vy and
// covariance cov (1 / HW normalisation):
//   value += alpha S1 + beta S2, S1 = (2 mx my + c1) / (mx^2 + my^2 + c1),
//   S2 = (2 cov + c2) / (vx + vy + c2); with a = alpha grad_out / HW, b = beta grad_out / HW:
//   d/dx_i = gx0 + gdd (x_i - mx) + gdo (y_i - my),  d/dy_i = gy0 + gdd (y_i - my) + gdo (x_i - mx).
#pragma once

#include "hd.h"

namespace fastiqa {
namespace perceptual {

constexpr double kLpipsEps = 1e-10;  // lpips.normalize_tensor
constexpr double kDistsC1 = 1e-6;    // DISTS_pytorch
constexpr double kDistsC2 = 1e-6;

// x / (r + eps) as x * unit_scale(r)
template <typename A> FASTIQA_HD A unit_scale(A r) { return A(1) / (r + A(kLpipsEps)); }

// u_c - v_c = a i0 - b i1 written as (a - b t) i0 with t = i1 / i0 = (r0 + eps) / (r1 + eps),
// one per pixel: exactly 0 where pred and target agree (t = 1), whatever the compiler contracts
// into FMAs (a i0 - b i1 as fma(a, i0, -b i1) leaves the rounding error of b i1, so LPIPS(x, x)
// would not be 0), with the same error as the formula's (about u |v_c|), also where one norm is 0
template <typename A> FASTIQA_HD A norm_ratio(A r0, A r1) { return (r0 + A(kLpipsEps)) / (r1 + A(kLpipsEps)); }
template <typename A> FASTIQA_HD A unit_diff(A a, A b, A t, A i0) { return (a - b * t) * i0; }

// the factor of x_c in d/dx_c: (g . x) / (s^2 r), 0 where r = 0; inv = 1 / s
template <typename A> FASTIQA_HD A unit_grad_coef(A dot, A r, A inv) {
  return r > A(0) ? dot * inv * inv / r : A(0);
}

template <typename A> FASTIQA_HD A dists_plane_value(A mx, A my, A vx, A vy, A cov, A alpha, A beta) {
  const A c1 = A(kDistsC1), c2 = A(kDistsC2);
  // mx^2 + my^2 = 2 mx my + (mx - my)^2: S1 = 1 exactly where the means agree
  const A num1 = A(2) * mx * my + c1;
  const A s1 = num1 / (num1 + (mx - my) * (mx - my));
  const A s2 = (A(2) * cov + c2) / (vx + vy + c2);
  return alpha * s1 + beta * s2;
}

template <typename A> struct DistsGrad { A gx0, gy0, gdd, gdo; };

template <typename A> FASTIQA_HD DistsGrad<A> dists_plane_grad(A mx, A my, A vx, A vy, A cov, A a, A b) {
  const A c1 = A(kDistsC1), c2 = A(kDistsC2);
  const A num1 = A(2) * mx * my + c1;
  const A den1 = num1 + (mx - my) * (mx - my);  // mx^2 + my^2 + c1
  const A den2 = vx + vy + c2;
  const A ds2_dv = -(A(2) * cov + c2) / (den2 * den2);  // d S2 / d vx = d S2 / d vy
  const A ds2_dcov = A(2) / den2;
  DistsGrad<A> g;
  g.gx0 = a * (A(2) * my * den1 - num1 * A(2) * mx) / (den1 * den1);
  g.gy0 = a * (A(2) * mx * den1 - num1 * A(2) * my) / (den1 * den1);
  g.gdd = b * A(2) * ds2_dv;
  g.gdo = b * ds2_dcov;
  return g;
}

}  // namespace perceptual
}  // namespace fastiqa
