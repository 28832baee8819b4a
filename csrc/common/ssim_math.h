// Per-pixel math of the SSIM family, shared by the CPU and CUDA kernels.
//
// At every output pixel p the five windowed statistics (Gaussian window G)
//   mx = G*x, my = G*y, exx = G*(x^2), eyy = G*(y^2), exy = G*(xy)
// give (Wang et al. 2004, C1 = (k1 L)^2, C2 = (k2 L)^2)
//   A1 = 2 mx my + C1           B1 = mx^2 + my^2 + C1          l  = A1 / B1
//   A2 = 2 (exy - mx my) + C2   B2 = exx - mx^2 + eyy - my^2 + C2   cs = A2 / B2
//   S = l * cs
// The gradient of  F = sum_p ws_p S_p + wc_p cs_p  with respect to the inputs is
//   dF/dx = G^T dax + 2 x (G^T db) + y (G^T dc)
//   dF/dy = G^T day + 2 y (G^T db) + x (G^T dc)
// with the per-output-pixel coefficients (G^T: the adjoint of the padded blur)
//   dax = ws dS/dmx + wc dcs/dmx,  day = ws dS/dmy + wc dcs/dmy     (exx, exy held fixed)
//   db  = ws dS/dexx + wc dcs/dexx = -(ws S + wc cs) / B2          (same for eyy)
//   dc  = ws dS/dexy + wc dcs/dexy = 2 (ws l + wc) / B2
//   dS/dmx = 2 cs (my - mx l) / B1 + l dcs/dmx,   dcs/dmx = 2 (mx cs - my) / B2
// so a kernel needs the two inputs and four adjoint-blurred maps, nothing saved.
#pragma once

#include "codes.h"
#include "hd.h"

#include <cmath>
#include <cstdint>

namespace fastiqa {
namespace ssim {

// padding: codes::Padding
using namespace codes;
constexpr int kMinWin = 3;
constexpr int kMaxWin = 31;
// Per-plane weights of the gradient: F = sum over planes of w[0] mean(S) + w[1] mean(cs)
// + w[2] mean(|x - y|) (+ sum_p dmap_p S_p when a map weight is given).
constexpr int kNumWeights = 3;
// Per-plane results of the forward: mean(S), mean(cs), mean(|x - y|).
constexpr int kNumPlaneStats = 3;
// With the components (codes::kComponents): weights and results per plane on
// S, cs, |x - y|, l, c, s (ssim_components below), and 4 maps / map weights S, l, c, s.
constexpr int kNumComponentStats = 6;
constexpr int kNumComponentMaps = 4;

// Padded coordinate u (0 .. n_out + win - 2) -> source index, or -1 for a zero.
// Output pixel p covers padded coordinates p .. p + win - 1; off = 0 (valid) or win/2.
FASTIQA_HD int64_t source_index(int64_t u, int64_t n, int64_t off, int padding) {
  int64_t s = u - off;
  if (padding == kSameReflect) {
    if (s < 0) s = -s;
    if (s >= n) s = 2 * (n - 1) - s;
    return s;
  }
  return (s < 0 || s >= n) ? -1 : s;
}

template <typename A>
FASTIQA_HD void ssim_value(A mx, A my, A exx, A eyy, A exy, A c1, A c2, A& s, A& cs) {
  const A mxy = mx * my, mxx = mx * mx, myy = my * my;
  const A l = (A(2) * mxy + c1) / (mxx + myy + c1);
  cs = (A(2) * (exy - mxy) + c2) / ((exx - mxx) + (eyy - myy) + c2);
  s = l * cs;
}

// Value and gradient coefficients (see the header comment) for weights ws (on S), wc (on cs).
template <typename A>
FASTIQA_HD void ssim_value_grad(A mx, A my, A exx, A eyy, A exy, A c1, A c2, A ws, A wc, A& s,
                                A& cs, A& dax, A& day, A& db, A& dc) {
  const A mxy = mx * my, mxx = mx * mx, myy = my * my;
  const A b1 = mxx + myy + c1, b2 = (exx - mxx) + (eyy - myy) + c2;
  // every term by division, as ssim_value: the same value whether or not a gradient is
  // computed (also where 1/B overflows), and no reciprocal kept alive beside B (registers)
  const A l = (A(2) * mxy + c1) / b1;
  cs = (A(2) * (exy - mxy) + c2) / b2;
  s = l * cs;
  const A wl = ws * l + wc;
  dax = ws * (A(2) * cs * (my - mx * l) / b1) + wl * (A(2) * (mx * cs - my) / b2);  // dcs/dmx
  day = ws * (A(2) * cs * (mx - my * l) / b1) + wl * (A(2) * (my * cs - mx) / b2);  // dcs/dmy
  db = -(ws * s + wc * cs) / b2;
  dc = A(2) * wl / b2;
}

// The components (Wang et al. 2004, eq. 6-9), sigma_x = sqrt(max(sigma_x^2, 0)) (likewise y):
//   l = A1 / B1,   c = (2 sigma_x sigma_y + C2) / B2,   s = (sigma_xy + C3) / (sigma_x sigma_y + C3),
// C3 = C2 / 2, so that c s = cs exactly (up to rounding). Gradient of
//   F = ws S + wc cs + wl l + wk c + wt s
// in (mx, my, sigma_x^2, sigma_y^2, sigma_xy): with ix = 1 / sigma_x where sigma_x > 0 and 0 where
// sigma_x^2 <= 0 (the rule: d sigma_x / d sigma_x^2 = ix / 2, so zero at a clamped variance), q = sigma_x sigma_y + C3,
//   Fmx = (ws cs + wl) dl/dmx                 (the direct partial; likewise Fmy)
//   Fxx = -(ws S + wc cs) / B2 + wk (sigma_y ix - c) / B2 - wt s sigma_y ix / (2 q)   (likewise Fyy)
//   Fxy = 2 (ws l + wc) / B2 + wt / q
// and in the statistics of ssim_value_grad's coefficients:
//   dax = Fmx - 2 mx Fxx - my Fxy,  day = Fmy - 2 my Fyy - mx Fxy,  dbx = Fxx,  dby = Fyy,  dc = Fxy
// (dF/dx uses dbx, dF/dy dby: the kernels run the adjoint once per input, each with 4 maps).
template <typename A>
FASTIQA_HD void ssim_components(A mx, A my, A exx, A eyy, A exy, A c1, A c2, A& s_map, A& cs, A& l, A& c,
                                A& st) {
  const A mxy = mx * my, mxx = mx * mx, myy = my * my;
  const A sxx = exx - mxx, syy = eyy - myy, sxy = exy - mxy;
  const A b2 = sxx + syy + c2;
  const A sx = sqrt(sxx > A(0) ? sxx : A(0)), sy = sqrt(syy > A(0) ? syy : A(0));
  const A p = sx * sy, c3 = c2 / A(2);
  l = (A(2) * mxy + c1) / (mxx + myy + c1);
  cs = (A(2) * sxy + c2) / b2;
  s_map = l * cs;
  c = (A(2) * p + c2) / b2;
  st = (sxy + c3) / (p + c3);
}

template <typename A>
FASTIQA_HD void ssim_components_grad(A mx, A my, A exx, A eyy, A exy, A c1, A c2, A ws, A wc, A wl, A wk, A wt,
                                     A& dax, A& day, A& dbx, A& dby, A& dc) {
  const A mxy = mx * my, mxx = mx * mx, myy = my * my;
  const A sxx = exx - mxx, syy = eyy - myy, sxy = exy - mxy;
  const A b1 = mxx + myy + c1, b2 = sxx + syy + c2;
  const A sx = sqrt(sxx > A(0) ? sxx : A(0)), sy = sqrt(syy > A(0) ? syy : A(0));
  const A ix = sx > A(0) ? A(1) / sx : A(0), iy = sy > A(0) ? A(1) / sy : A(0);
  const A p = sx * sy, c3 = c2 / A(2), q = p + c3;
  const A l = (A(2) * mxy + c1) / b1;
  const A cs = (A(2) * sxy + c2) / b2;
  const A c = (A(2) * p + c2) / b2;
  const A st = (sxy + c3) / q;
  const A wlum = ws * cs + wl;  // on dl/dmx
  const A fmx = wlum * (A(2) * (my - mx * l) / b1), fmy = wlum * (A(2) * (mx - my * l) / b1);
  const A common = -(ws * l * cs + wc * cs) / b2;
  const A fxx = common + wk * (sy * ix - c) / b2 - wt * st * sy * ix / (A(2) * q);
  const A fyy = common + wk * (sx * iy - c) / b2 - wt * st * sx * iy / (A(2) * q);
  const A fxy = A(2) * (ws * l + wc) / b2 + wt / q;
  dax = fmx - A(2) * mx * fxx - my * fxy;
  day = fmy - A(2) * my * fyy - mx * fxy;
  dbx = fxx;
  dby = fyy;
  dc = fxy;
}

// Normalised 1-D Gaussian, computed in double as fastiqa.backends.reference.gaussian_window.
FASTIQA_HD void gaussian_window(int win, double sigma, double* g) {
  double total = 0;
  for (int k = 0; k < win; ++k) {
    const double c = k - (win - 1) / 2.0;
    g[k] = exp(-(c * c) / (2.0 * sigma * sigma));
    total += g[k];
  }
  for (int k = 0; k < win; ++k) g[k] /= total;
}

}  // namespace ssim
}  // namespace fastiqa
