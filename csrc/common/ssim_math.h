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
