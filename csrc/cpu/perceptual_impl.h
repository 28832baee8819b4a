// Fused CPU kernels of the perceptual family: the distance heads of LPIPS and DISTS, one
// backbone layer per call (contract: fastiqa/backends/reference/_perceptual.py; formulas:
// csrc/common/perceptual_math.h).
//
// Layouts: the features are read in place when both are NCHW-contiguous ("cf": a channel is
// a plane of HW pixels) or both channels_last ("cl": a pixel's C channels are contiguous),
// otherwise both are copied to pred's layout first. Gradients are written with the
// strides of torch.empty_like(input) (a copy only where that is neither layout).
//
// Work is cut into units (image n, block of pixels): a block holds a shape-only number of
// pixels, so every partial result and its order of summation depend on the shape only, not
// on the thread count (bitwise reproducible for a given ISA level).
//
// LPIPS: one unit reads its block of both inputs from memory once; the channel norms are
// accumulated first, then the weighted difference of the unit features (forward) or the two
// dot products of the normalisation's derivative and the gradients (backward) re-read the
// block from cache (cf: a block is at most ~kBlockElems elements per input; cl: one pixel's
// C channels). The forward writes one partial sum per unit, summed pairwise per image.
// DISTS: per-channel means, variances and covariance in one pass: each leaf of P pixels is
// read once from memory and twice from L1 (its means, then the centred second moments),
// leaves and units are merged pairwise with Chan et al.'s update (centred: no E[xy] - mx my
// cancellation). The backward recomputes the statistics (one pass) and writes both
// gradients in a second pass (each an affine function of x and y per plane).
// Accumulation in float32 (float64 for float64 features).
#pragma once

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "../common/perceptual_math.h"
#include "../host/perceptual_checks.h"
#include "buffer_pool.h"
#include "convert.h"
#include "isa.h"
#include "kernel_tables.h"

FASTIQA_ISA_BEGIN
namespace fastiqa {
namespace cpu {
namespace FASTIQA_ISA_NS {
namespace perceptual_impl {
namespace {

using namespace fastiqa::perceptual;

constexpr int kMaxBlock = 256;          // pixels per LPIPS block at most (cf; a multiple of kLanes)
constexpr int64_t kBlockElems = 1 << 14;  // C x block elements per input wanted in cache (cf)
constexpr int kClBlock = 64;            // pixels per LPIPS block (cl)
constexpr int kLeafCf = 256;            // pixels per DISTS leaf (cf: per channel, 16 per lane)
constexpr int kLeafCl = 16;             // pixels per DISTS leaf (cl: per channel, summed in order)
constexpr int64_t kTargetUnits = 32;    // DISTS units wanted per call (shape-only choice)

// the builtins (no errno: one instruction), not std::sqrt, an inline of the standard library
FASTIQA_INLINE float sqrt_acc(float v) { return __builtin_sqrtf(v); }
FASTIQA_INLINE double sqrt_acc(double v) { return __builtin_sqrt(v); }

// Sum of v[0..n) by pairwise halving (the order depends on n only).
template <typename A>
A pairwise_sum(const A* v, int64_t n) {
  if (n <= 8) {
    A s = 0;
    for (int64_t k = 0; k < n; ++k) s += v[k];
    return s;
  }
  const int64_t half = n / 2;
  return pairwise_sum(v, half) + pairwise_sum(v + half, n - half);
}

// ---------------------------------------------------------------- layout
struct Geo {
  int64_t N, C, HW;
  bool cl;  // channels_last (else NCHW)
};

// pred and target dense in one layout (pred's when it is NCHW or channels_last, else NCHW).
struct Pair {
  at::Tensor x, y;
  Geo g;
};

bool is_cl(const at::Tensor& t) {
  return !t.is_contiguous() && t.is_contiguous(at::MemoryFormat::ChannelsLast);
}

Pair dense_pair(const at::Tensor& pred, const at::Tensor& target) {
  const bool cl = is_cl(pred);
  const auto fmt = cl ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  Pair p{pred.contiguous(fmt), target.contiguous(fmt), {pred.size(0), pred.size(1), pred.size(2) * pred.size(3), cl}};
  return p;
}

// The gradient of `like` (strides of empty_like(like)) and the dense buffer the kernel writes
// (the same tensor when empty_like(like) is in the kernel's layout).
struct GradOut {
  at::Tensor out, buf;
};

GradOut grad_buffer(const at::Tensor& like, bool need, bool cl) {
  if (!need) return {at::empty({0}, like.options()), at::Tensor()};
  at::Tensor out = pooled_empty_like(like);
  const auto fmt = cl ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  if (out.is_contiguous(fmt)) return {out, out};
  return {out, at::empty(like.sizes(), like.options().memory_format(fmt))};
}

void finish(GradOut& g) {
  if (g.buf.defined() && !g.buf.is_same(g.out)) g.out.copy_(g.buf);
}

template <typename T>
T* ptr_or_null(const GradOut& g) {
  return g.buf.defined() ? g.buf.data_ptr<T>() : nullptr;
}

// ---------------------------------------------------------------- LPIPS
int block_pixels_cf(int64_t C) {
  int64_t p = kBlockElems / std::max<int64_t>(C, 1);
  p = std::min<int64_t>(std::max<int64_t>(p, kLanes), kMaxBlock);
  return static_cast<int>(p / kLanes * kLanes);
}

// Per-pixel channel norms of a cf block: P pixels, channel c at offset c * HW.
template <typename T, typename A>
FASTIQA_INLINE void norms_cf(const T* __restrict__ x, const T* __restrict__ y, int64_t C, int64_t HW, int P,
                             A* __restrict__ r0, A* __restrict__ r1, A* __restrict__ i0, A* __restrict__ i1,
                             A* __restrict__ t) {
  for (int p = 0; p < P; ++p) r0[p] = r1[p] = A(0);
  for (int64_t c = 0; c < C; ++c) {
    const T* xc = x + c * HW;
    const T* yc = y + c * HW;
#pragma omp simd
    for (int p = 0; p < P; ++p) {
      const A a = to_acc<A>(xc[p]), b = to_acc<A>(yc[p]);
      r0[p] += a * a;
      r1[p] += b * b;
    }
  }
#pragma omp simd
  for (int p = 0; p < P; ++p) {
    r0[p] = sqrt_acc(r0[p]);
    r1[p] = sqrt_acc(r1[p]);
    i0[p] = unit_scale(r0[p]);
    i1[p] = unit_scale(r1[p]);
    t[p] = norm_ratio(r0[p], r1[p]);
  }
}

template <typename T, typename A>
A lpips_fwd_cf(const T* x, const T* y, const A* __restrict__ w, int64_t C, int64_t HW, int P) {
  A r0[kMaxBlock], r1[kMaxBlock], i0[kMaxBlock], i1[kMaxBlock], t[kMaxBlock], val[kMaxBlock];
  norms_cf<T, A>(x, y, C, HW, P, r0, r1, i0, i1, t);
  for (int p = 0; p < P; ++p) val[p] = A(0);
  for (int64_t c = 0; c < C; ++c) {
    const T* xc = x + c * HW;
    const T* yc = y + c * HW;
    const A wc = w[c];
#pragma omp simd
    for (int p = 0; p < P; ++p) {
      const A d = unit_diff(to_acc<A>(xc[p]), to_acc<A>(yc[p]), t[p], i0[p]);
      val[p] += wc * d * d;
    }
  }
  return pairwise_sum(val, P);
}

template <typename T, typename A, bool WX, bool WY>
void lpips_bwd_cf(const T* x, const T* y, const A* __restrict__ w, A k, T* __restrict__ gx, T* __restrict__ gy,
                  int64_t C, int64_t HW, int P) {
  A r0[kMaxBlock], r1[kMaxBlock], i0[kMaxBlock], i1[kMaxBlock], t[kMaxBlock], d0[kMaxBlock], d1[kMaxBlock];
  norms_cf<T, A>(x, y, C, HW, P, r0, r1, i0, i1, t);
  for (int p = 0; p < P; ++p) d0[p] = d1[p] = A(0);
  for (int64_t c = 0; c < C; ++c) {
    const T* xc = x + c * HW;
    const T* yc = y + c * HW;
    const A wc = k * w[c];
#pragma omp simd
    for (int p = 0; p < P; ++p) {
      const A a = to_acc<A>(xc[p]), b = to_acc<A>(yc[p]);
      const A g = wc * unit_diff(a, b, t[p], i0[p]);
      d0[p] += g * a;
      d1[p] += g * b;
    }
  }
  for (int p = 0; p < P; ++p) {  // d0, d1 become the coefficients of x and y
    d0[p] = unit_grad_coef(d0[p], r0[p], i0[p]);
    d1[p] = unit_grad_coef(d1[p], r1[p], i1[p]);
  }
  for (int64_t c = 0; c < C; ++c) {
    const T* xc = x + c * HW;
    const T* yc = y + c * HW;
    T* gxc = WX ? gx + c * HW : nullptr;
    T* gyc = WY ? gy + c * HW : nullptr;
    const A wc = k * w[c];
#pragma omp simd
    for (int p = 0; p < P; ++p) {
      const A a = to_acc<A>(xc[p]), b = to_acc<A>(yc[p]);
      const A g = wc * unit_diff(a, b, t[p], i0[p]);
      if (WX) gxc[p] = from_acc<T>(g * i0[p] - a * d0[p]);
      if (WY) gyc[p] = from_acc<T>(b * d1[p] - g * i1[p]);
    }
  }
}

// Lane-blocked sums over one pixel's C contiguous channels (cl).
template <typename T, typename A>
FASTIQA_INLINE void norms_cl(const T* __restrict__ x, const T* __restrict__ y, int64_t C, A& r0, A& r1) {
  A sx[kLanes] = {}, sy[kLanes] = {};
  int64_t c = 0;
  for (; c + kLanes <= C; c += kLanes) {
#pragma omp simd
    for (int j = 0; j < kLanes; ++j) {
      const A a = to_acc<A>(x[c + j]), b = to_acc<A>(y[c + j]);
      sx[j] += a * a;
      sy[j] += b * b;
    }
  }
  for (int j = 0; c < C; ++c, ++j) {
    const A a = to_acc<A>(x[c]), b = to_acc<A>(y[c]);
    sx[j] += a * a;
    sy[j] += b * b;
  }
  r0 = sqrt_acc(pairwise_sum(sx, kLanes));
  r1 = sqrt_acc(pairwise_sum(sy, kLanes));
}

template <typename T, typename A>
A lpips_fwd_cl(const T* x, const T* y, const A* __restrict__ w, int64_t C, int P) {
  A val[kClBlock];
  for (int p = 0; p < P; ++p, x += C, y += C) {
    A r0, r1;
    norms_cl<T, A>(x, y, C, r0, r1);
    const A i0 = unit_scale(r0), t = norm_ratio(r0, r1);
    A s[kLanes] = {};
    int64_t c = 0;
    for (; c + kLanes <= C; c += kLanes) {
#pragma omp simd
      for (int j = 0; j < kLanes; ++j) {
        const A d = unit_diff(to_acc<A>(x[c + j]), to_acc<A>(y[c + j]), t, i0);
        s[j] += w[c + j] * d * d;
      }
    }
    for (int j = 0; c < C; ++c, ++j) {
      const A d = unit_diff(to_acc<A>(x[c]), to_acc<A>(y[c]), t, i0);
      s[j] += w[c] * d * d;
    }
    val[p] = pairwise_sum(s, kLanes);
  }
  return pairwise_sum(val, P);
}

template <typename T, typename A, bool WX, bool WY>
void lpips_bwd_cl(const T* x, const T* y, const A* __restrict__ w, A k, T* __restrict__ gx, T* __restrict__ gy,
                  int64_t C, int P) {
  for (int p = 0; p < P; ++p, x += C, y += C, gx += WX ? C : 0, gy += WY ? C : 0) {
    A r0, r1;
    norms_cl<T, A>(x, y, C, r0, r1);
    const A i0 = unit_scale(r0), i1 = unit_scale(r1), t = norm_ratio(r0, r1);
    A s0[kLanes] = {}, s1[kLanes] = {};
    int64_t c = 0;
    for (; c + kLanes <= C; c += kLanes) {
#pragma omp simd
      for (int j = 0; j < kLanes; ++j) {
        const A a = to_acc<A>(x[c + j]), b = to_acc<A>(y[c + j]);
        const A g = k * w[c + j] * unit_diff(a, b, t, i0);
        s0[j] += g * a;
        s1[j] += g * b;
      }
    }
    for (int j = 0; c < C; ++c, ++j) {
      const A a = to_acc<A>(x[c]), b = to_acc<A>(y[c]);
      const A g = k * w[c] * unit_diff(a, b, t, i0);
      s0[j] += g * a;
      s1[j] += g * b;
    }
    const A q0 = unit_grad_coef(pairwise_sum(s0, kLanes), r0, i0);
    const A q1 = unit_grad_coef(pairwise_sum(s1, kLanes), r1, i1);
#pragma omp simd
    for (int64_t cc = 0; cc < C; ++cc) {
      const A a = to_acc<A>(x[cc]), b = to_acc<A>(y[cc]);
      const A g = k * w[cc] * unit_diff(a, b, t, i0);
      if (WX) gx[cc] = from_acc<T>(g * i0 - a * q0);
      if (WY) gy[cc] = from_acc<T>(b * q1 - g * i1);
    }
  }
}

struct Blocks {
  int64_t P, per_image;  // pixels per block, blocks per image
};

Blocks lpips_blocks(const Geo& g) {
  const int64_t P = g.cl ? kClBlock : block_pixels_cf(g.C);
  return {P, (g.HW + P - 1) / P};
}

at::Tensor lpips_head_fwd(const at::Tensor& pred, const at::Tensor& target, const at::Tensor& weight) {
  host::check_head(pred, target, weight, false, "lpips_head_fwd");
  Pair pr = dense_pair(pred, target);
  const Geo g = pr.g;
  const auto acc = host::acc_dtype(pred);
  at::Tensor w = weight.to(acc).contiguous();
  at::Tensor value = at::empty({g.N}, pred.options().dtype(acc));
  const Blocks b = lpips_blocks(g);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, pred.scalar_type(), "lpips_head_fwd", [&] {
    using A = typename AccOf<scalar_t>::type;
    const scalar_t* x = pr.x.data_ptr<scalar_t>();
    const scalar_t* y = pr.y.data_ptr<scalar_t>();
    const A* wp = w.data_ptr<A>();
    std::vector<A> partial(g.N * b.per_image);
    at::parallel_for(0, g.N * b.per_image, 1, [&](int64_t ub, int64_t ue) {
      for (int64_t u = ub; u < ue; ++u) {
        const int64_t n = u / b.per_image, p0 = (u % b.per_image) * b.P;
        const int P = static_cast<int>(std::min<int64_t>(b.P, g.HW - p0));
        const int64_t base = n * g.C * g.HW;
        partial[u] = g.cl ? lpips_fwd_cl<scalar_t, A>(x + base + p0 * g.C, y + base + p0 * g.C, wp, g.C, P)
                          : lpips_fwd_cf<scalar_t, A>(x + base + p0, y + base + p0, wp, g.C, g.HW, P);
      }
    });
    A* out = value.data_ptr<A>();
    for (int64_t n = 0; n < g.N; ++n)
      out[n] = pairwise_sum(partial.data() + n * b.per_image, b.per_image) / static_cast<A>(g.HW);
  });
  return value;
}

template <typename T, typename A, bool WX, bool WY>
void lpips_bwd_typed(const T* x, const T* y, const A* w, const A* go, T* gx, T* gy, const Geo& g, const Blocks& b) {
  at::parallel_for(0, g.N * b.per_image, 1, [&](int64_t ub, int64_t ue) {
    for (int64_t u = ub; u < ue; ++u) {
      const int64_t n = u / b.per_image, p0 = (u % b.per_image) * b.P;
      const int P = static_cast<int>(std::min<int64_t>(b.P, g.HW - p0));
      const int64_t off = n * g.C * g.HW + (g.cl ? p0 * g.C : p0);
      const A k = A(2) * go[n] / static_cast<A>(g.HW);
      T* gxo = WX ? gx + off : nullptr;
      T* gyo = WY ? gy + off : nullptr;
      if (g.cl)
        lpips_bwd_cl<T, A, WX, WY>(x + off, y + off, w, k, gxo, gyo, g.C, P);
      else
        lpips_bwd_cf<T, A, WX, WY>(x + off, y + off, w, k, gxo, gyo, g.C, g.HW, P);
    }
  });
}

std::tuple<at::Tensor, at::Tensor> lpips_head_bwd(const at::Tensor& pred, const at::Tensor& target,
                                                  const at::Tensor& weight, const at::Tensor& grad_out,
                                                  bool need_grad_pred, bool need_grad_target) {
  host::check_head(pred, target, weight, false, "lpips_head_bwd");
  host::check_head_bwd(pred, grad_out, "lpips_head_bwd");
  Pair pr = dense_pair(pred, target);
  const Geo g = pr.g;
  GradOut gp = grad_buffer(pred, need_grad_pred, g.cl), gt = grad_buffer(target, need_grad_target, g.cl);
  if (!need_grad_pred && !need_grad_target) return {gp.out, gt.out};
  const auto acc = host::acc_dtype(pred);
  at::Tensor w = weight.to(acc).contiguous(), go = grad_out.to(acc).contiguous();
  const Blocks b = lpips_blocks(g);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, pred.scalar_type(), "lpips_head_bwd", [&] {
    using A = typename AccOf<scalar_t>::type;
    const scalar_t* x = pr.x.data_ptr<scalar_t>();
    const scalar_t* y = pr.y.data_ptr<scalar_t>();
    scalar_t* gx = ptr_or_null<scalar_t>(gp);
    scalar_t* gy = ptr_or_null<scalar_t>(gt);
    const A* wp = w.data_ptr<A>();
    const A* gop = go.data_ptr<A>();
    if (gx && gy)
      lpips_bwd_typed<scalar_t, A, true, true>(x, y, wp, gop, gx, gy, g, b);
    else if (gx)
      lpips_bwd_typed<scalar_t, A, true, false>(x, y, wp, gop, gx, gy, g, b);
    else
      lpips_bwd_typed<scalar_t, A, false, true>(x, y, wp, gop, gx, gy, g, b);
  });
  finish(gp);
  finish(gt);
  return {gp.out, gt.out};
}

// ---------------------------------------------------------------- DISTS statistics
// Per-channel statistics of a run of pixels, stored as 5 arrays of C: means mx, my and the
// centred sums m2x = sum (x - mx)^2, m2y, cxy = sum (x - mx)(y - my); `count` pixels.
template <typename A>
struct StatsView {
  A* s;  // [mx | my | m2x | m2y | cxy], each C long
  int64_t C;
  A* mx() const { return s; }
  A* my() const { return s + C; }
  A* m2x() const { return s + 2 * C; }
  A* m2y() const { return s + 3 * C; }
  A* cxy() const { return s + 4 * C; }
};

// a (na pixels, earlier) absorbs b (nb pixels): Chan, Golub and LeVeque's pairwise update.
template <typename A>
void merge_stats(StatsView<A> a, int64_t na, StatsView<A> b, int64_t nb) {
  const double n = static_cast<double>(na + nb);
  const A fb = static_cast<A>(nb / n), fab = static_cast<A>(static_cast<double>(na) * nb / n);
  A *amx = a.mx(), *amy = a.my(), *am2x = a.m2x(), *am2y = a.m2y(), *acxy = a.cxy();
  const A *bmx = b.mx(), *bmy = b.my(), *bm2x = b.m2x(), *bm2y = b.m2y(), *bcxy = b.cxy();
#pragma omp simd
  for (int64_t c = 0; c < a.C; ++c) {
    const A dx = bmx[c] - amx[c], dy = bmy[c] - amy[c];
    amx[c] += dx * fb;
    amy[c] += dy * fb;
    am2x[c] += bm2x[c] + dx * dx * fab;
    am2y[c] += bm2y[c] + dy * dy * fab;
    acxy[c] += bcxy[c] + dx * dy * fab;
  }
}

// Leaf (cf): P pixels of each channel plane (offset c * HW): means, then centred sums, lane-blocked.
template <typename T, typename A>
void leaf_cf(const T* x, const T* y, int64_t C, int64_t HW, int64_t P, StatsView<A> s) {
  for (int64_t c = 0; c < C; ++c) {
    const T* xc = x + c * HW;
    const T* yc = y + c * HW;
    A sx[kLanes] = {}, sy[kLanes] = {};
    int64_t i = 0;
    for (; i + kLanes <= P; i += kLanes) {
#pragma omp simd
      for (int j = 0; j < kLanes; ++j) {
        sx[j] += to_acc<A>(xc[i + j]);
        sy[j] += to_acc<A>(yc[i + j]);
      }
    }
    for (int j = 0; i < P; ++i, ++j) {
      sx[j] += to_acc<A>(xc[i]);
      sy[j] += to_acc<A>(yc[i]);
    }
    const A mx = pairwise_sum(sx, kLanes) / static_cast<A>(P), my = pairwise_sum(sy, kLanes) / static_cast<A>(P);
    A qx[kLanes] = {}, qy[kLanes] = {}, qxy[kLanes] = {};
    i = 0;
    for (; i + kLanes <= P; i += kLanes) {
#pragma omp simd
      for (int j = 0; j < kLanes; ++j) {
        const A dx = to_acc<A>(xc[i + j]) - mx, dy = to_acc<A>(yc[i + j]) - my;
        qx[j] += dx * dx;
        qy[j] += dy * dy;
        qxy[j] += dx * dy;
      }
    }
    for (int j = 0; i < P; ++i, ++j) {
      const A dx = to_acc<A>(xc[i]) - mx, dy = to_acc<A>(yc[i]) - my;
      qx[j] += dx * dx;
      qy[j] += dy * dy;
      qxy[j] += dx * dy;
    }
    s.mx()[c] = mx;
    s.my()[c] = my;
    s.m2x()[c] = pairwise_sum(qx, kLanes);
    s.m2y()[c] = pairwise_sum(qy, kLanes);
    s.cxy()[c] = pairwise_sum(qxy, kLanes);
  }
}

// Leaf (cl): P pixels of C contiguous channels each; vectorised across the channels.
template <typename T, typename A>
void leaf_cl(const T* x, const T* y, int64_t C, int64_t P, StatsView<A> s) {
  A *mx = s.mx(), *my = s.my(), *m2x = s.m2x(), *m2y = s.m2y(), *cxy = s.cxy();
  for (int64_t c = 0; c < C; ++c) mx[c] = my[c] = m2x[c] = m2y[c] = cxy[c] = A(0);
  for (int64_t p = 0; p < P; ++p) {
    const T* xp = x + p * C;
    const T* yp = y + p * C;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) {
      mx[c] += to_acc<A>(xp[c]);
      my[c] += to_acc<A>(yp[c]);
    }
  }
  const A inv = A(1) / static_cast<A>(P);
#pragma omp simd
  for (int64_t c = 0; c < C; ++c) {
    mx[c] *= inv;
    my[c] *= inv;
  }
  for (int64_t p = 0; p < P; ++p) {
    const T* xp = x + p * C;
    const T* yp = y + p * C;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) {
      const A dx = to_acc<A>(xp[c]) - mx[c], dy = to_acc<A>(yp[c]) - my[c];
      m2x[c] += dx * dx;
      m2y[c] += dy * dy;
      cxy[c] += dx * dy;
    }
  }
}

struct Segments {
  int64_t per_image, len, leaf;  // segments per image, pixels per segment (a multiple of leaf), pixels per leaf
};

Segments dists_segments(const Geo& g) {
  const int64_t leaf = g.cl ? kLeafCl : kLeafCf;
  const int64_t leaves = (g.HW + leaf - 1) / leaf;
  const int64_t want = std::max<int64_t>(1, std::min<int64_t>((kTargetUnits + g.N - 1) / g.N, leaves));
  const int64_t per = (leaves + want - 1) / want;  // leaves per segment
  return {(leaves + per - 1) / per, per * leaf, leaf};
}

// Statistics of pixels [p0, p1) of image n (pointers at the image) into `out`; the leaves are
// merged pairwise (a binary counter: a stack of partial results of 2^k leaves each).
template <typename T, typename A>
void segment_stats(const T* x, const T* y, const Geo& g, int64_t p0, int64_t p1, int64_t leaf, StatsView<A> out,
                   std::vector<A>& scratch) {
  const int64_t width = 5 * g.C;
  constexpr int kMaxDepth = 64;  // the stack holds at most 1 + log2(leaves) partial results
  int depth = 2;
  for (int64_t l = (p1 - p0 + leaf - 1) / leaf; l > 1; l >>= 1) ++depth;
  scratch.resize(static_cast<size_t>(width) * depth);
  int64_t count[kMaxDepth];
  int level[kMaxDepth];
  int top = 0;
  for (int64_t p = p0; p < p1; p += leaf) {
    const int64_t P = std::min<int64_t>(leaf, p1 - p);
    StatsView<A> slot{scratch.data() + top * width, g.C};
    if (g.cl)
      leaf_cl<T, A>(x + p * g.C, y + p * g.C, g.C, P, slot);
    else
      leaf_cf<T, A>(x + p, y + p, g.C, g.HW, P, slot);
    count[top] = P;
    level[top] = 0;
    ++top;
    while (top >= 2 && level[top - 1] == level[top - 2]) {
      merge_stats(StatsView<A>{scratch.data() + (top - 2) * width, g.C}, count[top - 2],
                  StatsView<A>{scratch.data() + (top - 1) * width, g.C}, count[top - 1]);
      count[top - 2] += count[top - 1];
      ++level[top - 2];
      --top;
    }
  }
  while (top >= 2) {
    merge_stats(StatsView<A>{scratch.data() + (top - 2) * width, g.C}, count[top - 2],
                StatsView<A>{scratch.data() + (top - 1) * width, g.C}, count[top - 1]);
    count[top - 2] += count[top - 1];
    --top;
  }
  std::copy(scratch.data(), scratch.data() + width, out.s);
}

// (N, 5, C) statistics: means, variances and covariance (1 / HW) of every plane.
template <typename T, typename A>
std::vector<A> dists_stats(const T* x, const T* y, const Geo& g) {
  const Segments s = dists_segments(g);
  const int64_t width = 5 * g.C;
  std::vector<A> seg(static_cast<size_t>(g.N * s.per_image * width));
  at::parallel_for(0, g.N * s.per_image, 1, [&](int64_t ub, int64_t ue) {
    std::vector<A> scratch;
    for (int64_t u = ub; u < ue; ++u) {
      const int64_t n = u / s.per_image, p0 = (u % s.per_image) * s.len;
      const int64_t off = n * g.C * g.HW;
      segment_stats<T, A>(x + off, y + off, g, p0, std::min(p0 + s.len, g.HW), s.leaf,
                          StatsView<A>{seg.data() + u * width, g.C}, scratch);
    }
  });
  std::vector<A> out(static_cast<size_t>(g.N * width));
  for (int64_t n = 0; n < g.N; ++n) {
    StatsView<A> first{seg.data() + n * s.per_image * width, g.C};
    int64_t have = std::min(s.len, g.HW);
    for (int64_t k = 1; k < s.per_image; ++k) {
      const int64_t len = std::min(s.len, g.HW - k * s.len);
      merge_stats(first, have, StatsView<A>{seg.data() + (n * s.per_image + k) * width, g.C}, len);
      have += len;
    }
    const A inv = A(1) / static_cast<A>(g.HW);
    A* o = out.data() + n * width;
    for (int64_t c = 0; c < g.C; ++c) {
      o[c] = first.mx()[c];
      o[g.C + c] = first.my()[c];
      o[2 * g.C + c] = first.m2x()[c] * inv;
      o[3 * g.C + c] = first.m2y()[c] * inv;
      o[4 * g.C + c] = first.cxy()[c] * inv;
    }
  }
  return out;
}

at::Tensor dists_head_fwd(const at::Tensor& pred, const at::Tensor& target, const at::Tensor& weight) {
  host::check_head(pred, target, weight, true, "dists_head_fwd");
  Pair pr = dense_pair(pred, target);
  const Geo g = pr.g;
  const auto acc = host::acc_dtype(pred);
  at::Tensor w = weight.to(acc).contiguous();
  at::Tensor value = at::empty({g.N}, pred.options().dtype(acc));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, pred.scalar_type(), "dists_head_fwd", [&] {
    using A = typename AccOf<scalar_t>::type;
    const std::vector<A> st = dists_stats<scalar_t, A>(pr.x.data_ptr<scalar_t>(), pr.y.data_ptr<scalar_t>(), g);
    const A* alpha = w.data_ptr<A>();
    const A* beta = alpha + g.C;
    std::vector<A> terms(g.C);
    A* out = value.data_ptr<A>();
    for (int64_t n = 0; n < g.N; ++n) {
      const A* o = st.data() + n * 5 * g.C;
      for (int64_t c = 0; c < g.C; ++c)
        terms[c] = dists_plane_value(o[c], o[g.C + c], o[2 * g.C + c], o[3 * g.C + c], o[4 * g.C + c], alpha[c],
                                     beta[c]);
      out[n] = pairwise_sum(terms.data(), g.C);
    }
  });
  return value;
}

// Gradient pass of DISTS over unit (n, segment): coef is (N, 6, C): mx, my, gx0, gy0, gdd, gdo.
template <typename T, typename A, bool WX, bool WY>
void dists_grad_pass(const T* x, const T* y, const A* coef, T* gx, T* gy, const Geo& g, const Segments& s) {
  at::parallel_for(0, g.N * s.per_image, 1, [&](int64_t ub, int64_t ue) {
    for (int64_t u = ub; u < ue; ++u) {
      const int64_t n = u / s.per_image, p0 = (u % s.per_image) * s.len;
      const int64_t p1 = std::min(p0 + s.len, g.HW);
      const A* k = coef + n * 6 * g.C;
      const A *mx = k, *my = k + g.C, *gx0 = k + 2 * g.C, *gy0 = k + 3 * g.C, *gdd = k + 4 * g.C,
              *gdo = k + 5 * g.C;
      const int64_t img = n * g.C * g.HW;
      if (g.cl) {
        for (int64_t p = p0; p < p1; ++p) {
          const int64_t off = img + p * g.C;
          const T* xp = x + off;
          const T* yp = y + off;
#pragma omp simd
          for (int64_t c = 0; c < g.C; ++c) {
            const A dx = to_acc<A>(xp[c]) - mx[c], dy = to_acc<A>(yp[c]) - my[c];
            if (WX) gx[off + c] = from_acc<T>(gx0[c] + gdd[c] * dx + gdo[c] * dy);
            if (WY) gy[off + c] = from_acc<T>(gy0[c] + gdd[c] * dy + gdo[c] * dx);
          }
        }
      } else {
        for (int64_t c = 0; c < g.C; ++c) {
          const int64_t off = img + c * g.HW;
          const T* xc = x + off;
          const T* yc = y + off;
          const A m0 = mx[c], m1 = my[c], a0 = gx0[c], b0 = gy0[c], dd = gdd[c], dof = gdo[c];
#pragma omp simd
          for (int64_t p = p0; p < p1; ++p) {
            const A dx = to_acc<A>(xc[p]) - m0, dy = to_acc<A>(yc[p]) - m1;
            if (WX) gx[off + p] = from_acc<T>(a0 + dd * dx + dof * dy);
            if (WY) gy[off + p] = from_acc<T>(b0 + dd * dy + dof * dx);
          }
        }
      }
    }
  });
}

std::tuple<at::Tensor, at::Tensor> dists_head_bwd(const at::Tensor& pred, const at::Tensor& target,
                                                  const at::Tensor& weight, const at::Tensor& grad_out,
                                                  bool need_grad_pred, bool need_grad_target) {
  host::check_head(pred, target, weight, true, "dists_head_bwd");
  host::check_head_bwd(pred, grad_out, "dists_head_bwd");
  Pair pr = dense_pair(pred, target);
  const Geo g = pr.g;
  GradOut gp = grad_buffer(pred, need_grad_pred, g.cl), gt = grad_buffer(target, need_grad_target, g.cl);
  if (!need_grad_pred && !need_grad_target) return {gp.out, gt.out};
  const auto acc = host::acc_dtype(pred);
  at::Tensor w = weight.to(acc).contiguous(), go = grad_out.to(acc).contiguous();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, pred.scalar_type(), "dists_head_bwd", [&] {
    using A = typename AccOf<scalar_t>::type;
    const scalar_t* x = pr.x.data_ptr<scalar_t>();
    const scalar_t* y = pr.y.data_ptr<scalar_t>();
    const std::vector<A> st = dists_stats<scalar_t, A>(x, y, g);
    const A* alpha = w.data_ptr<A>();
    const A* beta = alpha + g.C;
    const A* gop = go.data_ptr<A>();
    const A inv_hw = A(1) / static_cast<A>(g.HW);
    std::vector<A> coef(static_cast<size_t>(g.N * 6 * g.C));
    for (int64_t n = 0; n < g.N; ++n) {
      const A* o = st.data() + n * 5 * g.C;
      A* k = coef.data() + n * 6 * g.C;
      const A scale = gop[n] * inv_hw;
      for (int64_t c = 0; c < g.C; ++c) {
        const DistsGrad<A> d = dists_plane_grad(o[c], o[g.C + c], o[2 * g.C + c], o[3 * g.C + c], o[4 * g.C + c],
                                                alpha[c] * scale, beta[c] * scale);
        k[c] = o[c];
        k[g.C + c] = o[g.C + c];
        k[2 * g.C + c] = d.gx0;
        k[3 * g.C + c] = d.gy0;
        k[4 * g.C + c] = d.gdd;
        k[5 * g.C + c] = d.gdo;
      }
    }
    scalar_t* gx = ptr_or_null<scalar_t>(gp);
    scalar_t* gy = ptr_or_null<scalar_t>(gt);
    const Segments s = dists_segments(g);
    if (gx && gy)
      dists_grad_pass<scalar_t, A, true, true>(x, y, coef.data(), gx, gy, g, s);
    else if (gx)
      dists_grad_pass<scalar_t, A, true, false>(x, y, coef.data(), gx, gy, g, s);
    else
      dists_grad_pass<scalar_t, A, false, true>(x, y, coef.data(), gx, gy, g, s);
  });
  finish(gp);
  finish(gt);
  return {gp.out, gt.out};
}

}  // namespace
}  // namespace perceptual_impl

void perceptual_kernels(PerceptualKernels* t) {
  using namespace perceptual_impl;
  t->lpips_head_fwd = &lpips_head_fwd;
  t->lpips_head_bwd = &lpips_head_bwd;
  t->dists_head_fwd = &dists_head_fwd;
  t->dists_head_bwd = &dists_head_bwd;
}

}  // namespace FASTIQA_ISA_NS
}  // namespace cpu
}  // namespace fastiqa
FASTIQA_ISA_END
