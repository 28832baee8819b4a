// CPU kernels of the masked SSIM (issue 19 item 3): fastiqa_C::ssim_masked_fwd / ssim_masked_bwd
// (and ssim_masked_components_fwd, images)
// (contract and formulas: fastiqa/backends/reference/_ssim_masked.py; checks:
// csrc/host/ssim_masked_checks.h). Compiled once per ISA level by csrc/cpu/masked_<isa>.cpp
// (plain loops that the compiler vectorises, `omp simd` as csrc/cpu/ssim_volume.h).
//
// Normalised convolutions: W = G*m, mu_x = G*(m x) / W, E[x^2] = G*(m x^2) / W, E[xy] = G*(m x y) / W,
// then S exactly as the unmasked SSIM (csrc/common/ssim_math.h: ssim_value / ssim_value_grad).
// Images (4-D) run the banded kernels of csrc/cpu/ssim_masked_band.h (column strips, rings in
// L1, no image-sized scratch). Volumes (5-D) run the N-D code path below (an image would be a
// volume of depth 1):
//
// Per (n, c) plane, one plane after another, rows split over threads (at::parallel_for):
//   forward: each padded source row gives the six products m, m x, m y, m x^2, m y^2, m x y
//     (padding: reflect copies the mirrored pixel with its weight; zero padding is a 0 of
//     weight 1) blurred along W, then along H, then along D, into plane-sized buffers of the
//     accumulator dtype A; every output pixel gives S (0 where W = 0) and m_c S, m_c (m at
//     the window centre).
//   gradient of F = sum_p w_p S_p, w_p = d_planes[0] m_c(p) + d_map(p): the coefficients of
//     d S / d (mu_x, mu_y, E[x^2] (= E[y^2]'s), E[xy]) times w_p / W go back through the
//     transposed D, H and W blurs, each followed by the fold of its padding (zero: dropped;
//     reflect: added onto the mirrored pixel), and pixel q gets
//       gx = m (K_mx + 2 x K_b + y K_c) + d_planes[2] m sign(x - y)   (gy likewise),
//     so exactly 0 where m = 0.
// Sums are kept per output row (per source row for the L1 terms) in float64 and summed in
// row order: results do not depend on the thread count.
#pragma once

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "../common/ssim_math.h"
#include "../host/ssim_masked_checks.h"
#include "buffer_pool.h"
#include "convert.h"
#include "isa.h"
#include "ssim_masked_table.h"

FASTIQA_ISA_BEGIN
namespace fastiqa {
namespace cpu {
namespace FASTIQA_ISA_NS {
#include "simd.h"
#include "blur_rows.h"
namespace ssim_masked {
namespace {

using namespace fastiqa::ssim;

constexpr int kProducts = 6;  // m, m x, m y, m x^2, m y^2, m x y
constexpr int kCoefs = 4;     // coefficients of mu_x, mu_y, E[x^2] = E[y^2], E[xy]

// A strided (N, C, D, H, W) view; images get D = 1 with stride 0.
template <typename T> struct View {
  T* p = nullptr;
  int64_t s[5] = {};
  View() = default;
  explicit View(const at::Tensor& t) : p(static_cast<T*>(t.data_ptr())) {
    const bool vol = t.dim() == 5;
    s[0] = t.stride(0);
    s[1] = t.stride(1);
    s[2] = vol ? t.stride(2) : 0;
    s[3] = t.stride(vol ? 3 : 2);
    s[4] = t.stride(vol ? 4 : 3);
  }
  T* at(int64_t n, int64_t c, int64_t d, int64_t h, int64_t w) const {
    return p + n * s[0] + c * s[1] + d * s[2] + h * s[3] + w * s[4];
  }
};

// One spatial axis: source length L, window taps, padded length Lp = Lo + k - 1.
template <typename A> struct Axis {
  int64_t L = 1, Lo = 1, Lp = 1, off = 0;
  int k = 1;
  A g[kMaxWin] = {A(1)};
  std::vector<int64_t> src;                 // padded index -> source index or -1 (a zero of weight 1)
  std::vector<std::vector<int64_t>> pads;   // source index -> the padded indices that copy it
  void init(int64_t len, int64_t taps, double sigma, int padding) {
    L = len;
    k = static_cast<int>(taps);
    if (k > 1) {
      double gd[kMaxWin];
      gaussian_window(k, sigma, gd);
      for (int i = 0; i < k; ++i) g[i] = static_cast<A>(gd[i]);
    } else {
      g[0] = A(1);
    }
    const bool same = padding != kValid;
    off = same ? k / 2 : 0;
    Lo = same ? L : L - k + 1;
    Lp = Lo + k - 1;
    src.resize(Lp);
    pads.assign(L, {});
    for (int64_t u = 0; u < Lp; ++u) {
      src[u] = k == 1 ? u : source_index(u, L, off, padding);
      if (src[u] >= 0) pads[src[u]].push_back(u);
    }
  }
};

template <typename T, typename A> struct Job {
  View<const T> x, y, dmap;
  View<const A> m;
  View<T> map, gx, gy;
  Axis<A> ad, ah, aw;
  int64_t N = 0, C = 0;
  A c1 = 0, c2 = 0;
  bool want_map = false;
};

constexpr int64_t kGrain = 4;  // rows per parallel task at least

#include "ssim_masked_band.h"  // images (4-D): the banded kernels

// Forward statistics of plane (n, c): st = the six blurred products, (6, Do, Ho, Wo).
template <typename T, typename A>
void blur_products(const Job<T, A>& J, int64_t n, int64_t c, std::vector<A>& t1, std::vector<A>& t2,
                   std::vector<A>& st) {
  const Axis<A>&ad = J.ad, &ah = J.ah, &aw = J.aw;
  const int64_t Wo = aw.Lo, Ho = ah.Lo, Do = ad.Lo, Hp = ah.Lp, Dp = ad.Lp, Wp = aw.Lp;
  // W pass: padded row (dp, hp) -> t1[q][dp][hp][0..Wo)
  t1.assign(static_cast<size_t>(kProducts * Dp * Hp * Wo), A(0));
  const int64_t q1 = Dp * Hp * Wo;
  at::parallel_for(0, Dp * Hp, kGrain, [&](int64_t r0, int64_t r1) {
    std::vector<A> prod(static_cast<size_t>(kProducts * Wp));
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t dp = r / Hp, hp = r % Hp, sd = ad.src[dp], sh = ah.src[hp];
      A* pm = prod.data();
      A *px = pm + Wp, *py = pm + 2 * Wp, *pxx = pm + 3 * Wp, *pyy = pm + 4 * Wp, *pxy = pm + 5 * Wp;
      if (sd < 0 || sh < 0) {  // a whole padded row of zero padding: zeros of weight 1
        std::fill(pm, pm + Wp, A(1));
        std::fill(px, px + 5 * Wp, A(0));
      } else {
        // gather m, x, y of the padded row (zero padding: a 0 of weight 1), then the products
        const A* mr = J.m.at(n, c, sd, sh, 0);
        const T* xr = J.x.at(n, c, sd, sh, 0);
        const T* yr = J.y.at(n, c, sd, sh, 0);
        const int64_t ms = J.m.s[4], xs = J.x.s[4], ys = J.y.s[4];
        for (int64_t u = 0; u < Wp; ++u) {
          const int64_t sw = aw.src[u];
          pm[u] = sw < 0 ? A(1) : mr[sw * ms];
          pxx[u] = sw < 0 ? A(0) : to_acc<A>(xr[sw * xs]);
          pyy[u] = sw < 0 ? A(0) : to_acc<A>(yr[sw * ys]);
        }
#pragma omp simd
        for (int64_t u = 0; u < Wp; ++u) {
          const A mv = pm[u], xv = pxx[u], yv = pyy[u], mx = mv * xv, my = mv * yv;
          px[u] = mx;
          py[u] = my;
          pxx[u] = mx * xv;
          pyy[u] = my * yv;
          pxy[u] = mx * yv;
        }
      }
      for (int q = 0; q < kProducts; ++q) {
        const A* __restrict__ in = pm + q * Wp;
        A* __restrict__ out = t1.data() + q * q1 + r * Wo;
        for (int k = 0; k < aw.k; ++k) {
          const A g = aw.g[k];
#pragma omp simd
          for (int64_t j = 0; j < Wo; ++j) out[j] += g * in[j + k];
        }
      }
    }
  });
  // H pass: t2[q][dp][i] = sum_k gh[k] t1[q][dp][i + k]
  const int64_t q2 = Dp * Ho * Wo;
  t2.assign(static_cast<size_t>(kProducts * q2), A(0));
  at::parallel_for(0, kProducts * Dp * Ho, kGrain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t q = r / (Dp * Ho), dp = (r / Ho) % Dp, i = r % Ho;
      A* __restrict__ out = t2.data() + r * Wo;
      for (int k = 0; k < ah.k; ++k) {
        const A g = ah.g[k];
        const A* __restrict__ in = t1.data() + q * q1 + (dp * Hp + i + k) * Wo;
#pragma omp simd
        for (int64_t j = 0; j < Wo; ++j) out[j] += g * in[j];
      }
    }
  });
  if (ad.k == 1) {
    st.swap(t2);
    return;
  }
  // D pass: st[q][o] = sum_k gd[k] t2[q][o + k]
  const int64_t slab = Ho * Wo;
  st.assign(static_cast<size_t>(kProducts * Do * slab), A(0));
  at::parallel_for(0, kProducts * Do * Ho, kGrain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t q = r / (Do * Ho), o = (r / Ho) % Do, i = r % Ho;
      A* __restrict__ out = st.data() + r * Wo;
      for (int k = 0; k < ad.k; ++k) {
        const A g = ad.g[k];
        const A* __restrict__ in = t2.data() + q * q2 + (o + k) * slab + i * Wo;
#pragma omp simd
        for (int64_t j = 0; j < Wo; ++j) out[j] += g * in[j];
      }
    }
  });
}

// m at the window centre of output pixel (o, i, j).
template <typename T, typename A>
FASTIQA_INLINE A centre_weight(const Job<T, A>& J, int64_t n, int64_t c, int64_t o, int64_t i, int64_t j) {
  const int64_t rd = J.ad.off == 0 ? J.ad.k / 2 : 0, rh = J.ah.off == 0 ? J.ah.k / 2 : 0,
                rw = J.aw.off == 0 ? J.aw.k / 2 : 0;
  return *J.m.at(n, c, o + rd, i + rh, j + rw);
}

// Sums of m |x - y| and m over the plane's source pixels (row order).
template <typename T, typename A>
void l1_sums(const Job<T, A>& J, int64_t n, int64_t c, double& l1, double& msum) {
  const int64_t D = J.ad.L, H = J.ah.L, W = J.aw.L;
  std::vector<double> rl(static_cast<size_t>(D * H)), rm(static_cast<size_t>(D * H));
  at::parallel_for(0, D * H, kGrain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t d = r / H, h = r % H;
      double a = 0, b = 0;
      for (int64_t w = 0; w < W; ++w) {
        const A mv = *J.m.at(n, c, d, h, w);
        const A dv = to_acc<A>(*J.x.at(n, c, d, h, w)) - to_acc<A>(*J.y.at(n, c, d, h, w));
        a += static_cast<double>(mv * (dv < 0 ? -dv : dv));
        b += static_cast<double>(mv);
      }
      rl[r] = a;
      rm[r] = b;
    }
  });
  l1 = msum = 0;
  for (int64_t r = 0; r < D * H; ++r) {
    l1 += rl[r];
    msum += rm[r];
  }
}

template <typename T, typename A> void forward_run(const Job<T, A>& J, A* planes) {
  std::vector<A> t1, t2, st;
  const int64_t Do = J.ad.Lo, Ho = J.ah.Lo, Wo = J.aw.Lo, q = Do * Ho * Wo;
  std::vector<double> rs(static_cast<size_t>(Do * Ho)), rw(static_cast<size_t>(Do * Ho));
  for (int64_t n = 0; n < J.N; ++n) {
    for (int64_t c = 0; c < J.C; ++c) {
      blur_products(J, n, c, t1, t2, st);
      at::parallel_for(0, Do * Ho, kGrain, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
          const int64_t o = r / Ho, i = r % Ho;
          const A* row = st.data() + r * Wo;
          double ss = 0, sw = 0;
          for (int64_t j = 0; j < Wo; ++j) {
            const A w = row[j];
            A s = 0, cs = 0;
            if (w > A(0)) {
              ssim_value<A>(row[q + j] / w, row[2 * q + j] / w, row[3 * q + j] / w, row[4 * q + j] / w,
                            row[5 * q + j] / w, J.c1, J.c2, s, cs);
            }
            const A mc = centre_weight(J, n, c, o, i, j);
            ss += static_cast<double>(mc * s);
            sw += static_cast<double>(mc);
            if (J.want_map) *J.map.at(n, c, o, i, j) = from_acc<T, A>(s);
          }
          rs[r] = ss;
          rw[r] = sw;
        }
      });
      double ss = 0, sw = 0, l1 = 0, msum = 0;
      for (int64_t r = 0; r < Do * Ho; ++r) {
        ss += rs[r];
        sw += rw[r];
      }
      l1_sums(J, n, c, l1, msum);
      A* p = planes + (n * J.C + c) * host::kMaskedPlaneSums;
      p[0] = static_cast<A>(ss);
      p[1] = static_cast<A>(sw);
      p[2] = static_cast<A>(l1);
      p[3] = static_cast<A>(msum);
    }
  }
}

// Transposed blur along one axis with its fold, for rows of length len: out[s] = sum over the
// padded indices u copying source s of sum_k g[k] in[u - k] (0 <= u - k < Lo).
template <typename A>
FASTIQA_INLINE void adjoint_rows(const Axis<A>& ax, int64_t s, const A* in, int64_t in_pitch, A* out, int64_t len) {
  std::fill(out, out + len, A(0));
  for (int64_t u : ax.pads[s]) {
    for (int k = 0; k < ax.k; ++k) {
      const int64_t o = u - k;
      if (o < 0 || o >= ax.Lo) continue;
      const A g = ax.g[k];
      const A* __restrict__ src = in + o * in_pitch;
      A* __restrict__ dst = out;
#pragma omp simd
      for (int64_t j = 0; j < len; ++j) dst[j] += g * src[j];
    }
  }
}

template <typename T, typename A>
void backward_run(const Job<T, A>& J, const A* d_planes, bool has_dmap, bool need_gx, bool need_gy) {
  std::vector<A> t1, t2, st, coef, v, z;
  const Axis<A>&ad = J.ad, &ah = J.ah, &aw = J.aw;
  const int64_t Do = ad.Lo, Ho = ah.Lo, Wo = aw.Lo, D = ad.L, H = ah.L, W = aw.L;
  const int64_t q = Do * Ho * Wo;
  for (int64_t n = 0; n < J.N; ++n) {
    for (int64_t c = 0; c < J.C; ++c) {
      const A* dp = d_planes + (n * J.C + c) * host::kMaskedPlaneSums;
      const A ws0 = dp[0], wl = dp[2];
      blur_products(J, n, c, t1, t2, st);
      // coefficient maps (4, Do, Ho, Wo), divided by W
      coef.assign(static_cast<size_t>(kCoefs * q), A(0));
      at::parallel_for(0, Do * Ho, kGrain, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
          const int64_t o = r / Ho, i = r % Ho;
          const A* row = st.data() + r * Wo;
          A* k0 = coef.data() + r * Wo;
          for (int64_t j = 0; j < Wo; ++j) {
            const A w = row[j];
            if (!(w > A(0))) continue;
            A ws = ws0 * centre_weight(J, n, c, o, i, j);
            if (has_dmap) ws += to_acc<A>(*J.dmap.at(n, c, o, i, j));
            A s, cs, dax, day, db, dc;
            ssim_value_grad<A>(row[q + j] / w, row[2 * q + j] / w, row[3 * q + j] / w, row[4 * q + j] / w,
                               row[5 * q + j] / w, J.c1, J.c2, ws, A(0), s, cs, dax, day, db, dc);
            k0[j] = dax / w;
            k0[q + j] = day / w;
            k0[2 * q + j] = db / w;
            k0[3 * q + j] = dc / w;
          }
        }
      });
      // D adjoint + fold: v (4, D, Ho, Wo)
      const A* vp = coef.data();
      const int64_t slab = Ho * Wo;
      if (ad.k > 1) {
        v.assign(static_cast<size_t>(kCoefs * D * slab), A(0));
        at::parallel_for(0, kCoefs * D, 1, [&](int64_t r0, int64_t r1) {
          for (int64_t r = r0; r < r1; ++r) {
            const int64_t qq = r / D, d = r % D;
            adjoint_rows(ad, d, coef.data() + qq * q, slab, v.data() + r * slab, slab);
          }
        });
        vp = v.data();
      }
      // H adjoint + fold: z (4, D, H, Wo)
      z.assign(static_cast<size_t>(kCoefs * D * H * Wo), A(0));
      at::parallel_for(0, kCoefs * D * H, kGrain, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
          const int64_t qd = r / H, h = r % H;  // qd = qq * D + d
          adjoint_rows(ah, h, vp + qd * slab, Wo, z.data() + r * Wo, Wo);
        }
      });
      // W adjoint + fold, then the combination with m, x, y
      at::parallel_for(0, D * H, kGrain, [&](int64_t r0, int64_t r1) {
        std::vector<A> row(static_cast<size_t>(kCoefs * W)), padded(static_cast<size_t>(aw.Lp));
        for (int64_t r = r0; r < r1; ++r) {
          const int64_t d = r / H, h = r % H;
          for (int qq = 0; qq < kCoefs; ++qq) {
            // transposed blur onto the padded row (vectorised over the outputs), then the fold
            const A* __restrict__ zr = z.data() + ((qq * D + d) * H + h) * Wo;
            A* __restrict__ pr = padded.data();
            std::fill(pr, pr + aw.Lp, A(0));
            for (int k = 0; k < aw.k; ++k) {
              const A g = aw.g[k];
#pragma omp simd
              for (int64_t o = 0; o < Wo; ++o) pr[o + k] += g * zr[o];
            }
            A* out = row.data() + qq * W;
            for (int64_t s = 0; s < W; ++s) {
              A a = 0;
              for (int64_t u : aw.pads[s]) a += pr[u];
              out[s] = a;
            }
          }
          const A *kx = row.data(), *ky = kx + W, *kb = ky + W, *kc = kb + W;
          for (int64_t w = 0; w < W; ++w) {
            const A mv = *J.m.at(n, c, d, h, w);
            const A xv = to_acc<A>(*J.x.at(n, c, d, h, w)), yv = to_acc<A>(*J.y.at(n, c, d, h, w));
            const A diff = xv - yv;
            const A sg = diff > A(0) ? A(1) : diff < A(0) ? A(-1) : A(0);
            if (need_gx)
              *J.gx.at(n, c, d, h, w) = from_acc<T, A>(mv * (kx[w] + A(2) * xv * kb[w] + yv * kc[w] + wl * sg));
            if (need_gy)
              *J.gy.at(n, c, d, h, w) = from_acc<T, A>(mv * (ky[w] + A(2) * yv * kb[w] + xv * kc[w] - wl * sg));
          }
        }
      });
    }
  }
}

template <typename T, typename A>
void setup(Job<T, A>& J, const at::Tensor& x, const at::Tensor& y, const at::Tensor& mask,
           const host::SsimWindow& win, double c1, double c2, int64_t padding) {
  J.x = View<const T>(x);
  J.y = View<const T>(y);
  J.m = View<const A>(mask);
  J.N = x.size(0);
  J.C = x.size(1);
  const bool vol = x.dim() == 5;
  const int p = static_cast<int>(padding);
  if (vol) {
    J.ad.init(x.size(2), win.size[0], win.sigma[0], p);
  } else {
    J.ad.init(1, 1, 1.0, p);
  }
  J.ah.init(x.size(vol ? 3 : 2), win.size[vol ? 1 : 0], win.sigma[vol ? 1 : 0], p);
  J.aw.init(x.size(vol ? 4 : 3), win.size[vol ? 2 : 1], win.sigma[vol ? 2 : 1], p);
  J.c1 = static_cast<A>(c1);
  J.c2 = static_cast<A>(c2);
}

std::vector<int64_t> out_sizes(const at::Tensor& x, const host::SsimWindow& win, int64_t padding) {
  std::vector<int64_t> out;
  for (int a = 0; a < win.axes; ++a)
    out.push_back(padding == kValid ? x.size(2 + a) - win.size[a] + 1 : x.size(2 + a));
  return out;
}

Tensor2 ssim_masked_fwd(const at::Tensor& pred, const at::Tensor& target, const at::Tensor& mask,
                        c10::IntArrayRef win_size, c10::ArrayRef<double> win_sigma, double c1, double c2,
                        int64_t padding, bool want_map) {
  const host::SsimWindow win = host::check_ssim_masked(pred, target, mask, win_size, win_sigma, padding);
  const auto acc = host::acc_dtype(pred);
  at::Tensor planes = at::empty({pred.size(0), pred.size(1), host::kMaskedPlaneSums}, pred.options().dtype(acc));
  at::Tensor out_map = at::empty({0}, pred.options());
  if (want_map) {
    std::vector<int64_t> sizes{pred.size(0), pred.size(1)};
    for (int64_t s : out_sizes(pred, win, padding)) sizes.push_back(s);
    const bool cl = pred.dim() == 4 && !pred.is_contiguous() &&
                    pred.is_contiguous(at::MemoryFormat::ChannelsLast);
    out_map = at::empty(sizes, pred.options().memory_format(cl ? at::MemoryFormat::ChannelsLast
                                                               : at::MemoryFormat::Contiguous));
  }
  if (pred.numel() == 0) return {planes.zero_(), out_map};
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, pred.scalar_type(), "ssim_masked_fwd", [&] {
    using A = typename AccOf<scalar_t>::type;
    if (pred.dim() == 4) {
      band::Job2<scalar_t, A> J;
      band::setup2(J, pred, target, mask, win, c1, c2, padding, false, false);
      J.want_map = want_map;
      if (want_map) J.map = View<scalar_t>(out_map);
      band::fwd_all(J, pred.size(0) * pred.size(1), planes.data_ptr<A>());
      return;
    }
    Job<scalar_t, A> J;
    setup(J, pred, target, mask, win, c1, c2, padding);
    J.want_map = want_map;
    if (want_map) J.map = View<scalar_t>(out_map);
    forward_run(J, planes.data_ptr<A>());
  });
  return {planes, out_map};
}

Tensor2 ssim_masked_bwd(const at::Tensor& pred, const at::Tensor& target, const at::Tensor& mask,
                        c10::IntArrayRef win_size, c10::ArrayRef<double> win_sigma, double c1, double c2,
                        int64_t padding, const at::Tensor& d_planes, const OptTensor& d_map, bool need_grad_pred,
                        bool need_grad_target) {
  const host::SsimWindow win = host::check_ssim_masked(pred, target, mask, win_size, win_sigma, padding);
  const std::vector<int64_t> out = out_sizes(pred, win, padding);
  host::check_ssim_masked_grads(pred, d_planes, d_map, out.data());
  // pooled (csrc/cpu/buffer_pool.h): a fresh gradient buffer costs a page fault per 4 KiB on every step
  at::Tensor gx = need_grad_pred ? pooled_empty_like(pred) : at::empty({0}, pred.options());
  at::Tensor gy = need_grad_target ? pooled_empty_like(pred) : at::empty({0}, pred.options());
  if (pred.numel() == 0 || !(need_grad_pred || need_grad_target)) return {gx, gy};
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, pred.scalar_type(), "ssim_masked_bwd", [&] {
    using A = typename AccOf<scalar_t>::type;
    if (pred.dim() == 4) {
      band::Job2<scalar_t, A> J;
      band::setup2(J, pred, target, mask, win, c1, c2, padding, need_grad_pred, need_grad_target);
      if (d_map.has_value()) J.dmap = View<const scalar_t>(*d_map);
      if (need_grad_pred) J.gx = View<scalar_t>(gx);
      if (need_grad_target) J.gy = View<scalar_t>(gy);
      band::bwd_all(J, pred.size(0) * pred.size(1), d_planes.data_ptr<A>());
      return;
    }
    Job<scalar_t, A> J;
    setup(J, pred, target, mask, win, c1, c2, padding);
    if (d_map.has_value()) J.dmap = View<const scalar_t>(*d_map);
    if (need_grad_pred) J.gx = View<scalar_t>(gx);
    if (need_grad_target) J.gy = View<scalar_t>(gy);
    backward_run(J, d_planes.data_ptr<A>(), d_map.has_value(), need_grad_pred, need_grad_target);
  });
  return {gx, gy};
}

// The components (images): (N, C, 5) sums m_c S, m_c l, m_c c, m_c s, m_c and, when want_map, the maps
// (4, N, C, Ho, Wo) S, l, c, s (contract: fastiqa/backends/reference/_ssim_masked.py).
Tensor2 ssim_masked_components_fwd(const at::Tensor& pred, const at::Tensor& target, const at::Tensor& mask,
                                   c10::IntArrayRef win_size, c10::ArrayRef<double> win_sigma, double c1, double c2,
                                   int64_t padding, bool want_map) {
  const host::SsimWindow win = host::check_ssim_masked(pred, target, mask, win_size, win_sigma, padding);
  TORCH_CHECK(pred.dim() == 4, "fastiqa_C::ssim_masked_components_fwd: (N, C, H, W) images only (volumes: not yet)");
  const auto acc = host::acc_dtype(pred);
  at::Tensor planes = at::empty({pred.size(0), pred.size(1), 5}, pred.options().dtype(acc));
  at::Tensor maps = at::empty({0}, pred.options());
  if (want_map) {
    std::vector<int64_t> sizes{4, pred.size(0), pred.size(1)};
    for (int64_t s : out_sizes(pred, win, padding)) sizes.push_back(s);
    maps = at::empty(sizes, pred.options());
  }
  if (pred.numel() == 0) return {planes.zero_(), maps};
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, pred.scalar_type(), "ssim_masked_components_fwd", [&] {
    using A = typename AccOf<scalar_t>::type;
    band::Job2<scalar_t, A> J;
    band::setup2(J, pred, target, mask, win, c1, c2, padding, false, false, true);
    J.want_map = want_map;
    if (want_map)
      for (int k = 0; k < 4; ++k) J.cmap[k] = View<scalar_t>(maps.select(0, k));
    band::comp_all(J, pred.size(0) * pred.size(1), planes.data_ptr<A>());
  });
  return {planes, maps};
}

}  // namespace
}  // namespace ssim_masked

void ssim_masked_kernels(MaskedSsimKernels* t) {
  t->fwd = &ssim_masked::ssim_masked_fwd;
  t->bwd = &ssim_masked::ssim_masked_bwd;
  t->comp = &ssim_masked::ssim_masked_components_fwd;
}

}  // namespace FASTIQA_ISA_NS
}  // namespace cpu
}  // namespace fastiqa
FASTIQA_ISA_END
