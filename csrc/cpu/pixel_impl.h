// Fused CPU kernels of the pixel-loss family (L1, MSE, Charbonnier).
// Forward: one read of pred, target (and weight); writes the loss map only for
// reduction="none" and the elementwise gradient only when asked; the reduction
// is per fixed-size chunk (independent of the thread count, so the result is bitwise
// reproducible): lane sums compensated per block within a chunk, pairwise across
// lanes and chunks, as accurate as torch.sum at any size.
// The stored gradient is that of the reduced loss for sum and mean (1/n folded in)
// and of the weighted sum for weighted_mean, whose divisor is known only at the
// end: gscale = 1 / divisor then, else 1.
// Backward: grad_pred = g * grad_out * gscale, grad_target = -grad_pred, one pass.
#pragma once

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <torch/library.h>

#include <limits>
#include <type_traits>
#include <vector>

#include "../common/pixel_math.h"
#include "../host/pixel_checks.h"
#include "buffer_pool.h"
#include "convert.h"
#include "isa.h"
#include "kernel_tables.h"

FASTIQA_ISA_BEGIN
namespace fastiqa {
namespace cpu {
namespace FASTIQA_ISA_NS {
#include "simd.h"
namespace pixel_impl {
namespace {

using namespace fastiqa::pixel;

constexpr int64_t kChunk = 1 << 15;

// Sum of v[0], v[stride], ..., v[(n - 1) stride] by pairwise halving (error ~ log2(n) u);
// the order depends on n only, so the result is reproducible.
template <typename A>
A pairwise_sum(const A* v, int64_t n, int64_t stride) {
  if (n <= 8) {
    A s = 0;
    for (int64_t k = 0; k < n; ++k) s += v[k * stride];
    return s;
  }
  const int64_t half = n / 2;
  return pairwise_sum(v, half, stride) + pairwise_sum(v + half * stride, n - half, stride);
}

// Per-lane sums: each lane adds kBlockIters terms plainly into a block sum (16 terms:
// error ~4u), and the block sums into the lane's total with Kahan compensation
// (Higham, Accuracy and Stability, 4.3), so a lane's 2048 terms of a chunk carry an
// error of a few u instead of ~2048 u; the lane totals (s - comp) and the chunk
// partials are then summed pairwise. Compensating one add in 16 costs ~5% of the L1
// loop's arithmetic (every add: +35% kernel time on the baseline level).
constexpr int kBlockIters = 16;

template <typename A>
struct LaneSums {
  A s[kLanes] = {};
  A comp[kLanes] = {};
  // adds block sums (a local array of the loop, so that it lives in registers) to the
  // totals, compensated, and clears them
  FASTIQA_INLINE void fold(A* __restrict__ block) {
#pragma omp simd
    for (int j = 0; j < kLanes; ++j) {
      const A y = block[j] - comp[j];
      const A t = s[j] + y;
      comp[j] = (t - s[j]) - y;
      s[j] = t;
      block[j] = A(0);
    }
  }
  A total() const {
    A t[kLanes];
    for (int j = 0; j < kLanes; ++j) t[j] = s[j] - comp[j];
    return pairwise_sum(t, kLanes, 1);
  }
};

// Element i with weight ww (1 when unweighted): adds to lane j's block sums, stores map and gradient.
template <typename T, typename A, int K, bool HAS_W, bool MAP, bool GRAD>
FASTIQA_INLINE void pixel_element(const T* __restrict__ a, const T* __restrict__ b, A ww, T* __restrict__ map,
                                  T* __restrict__ grad, int64_t i, int j, A c, A gmul, A* __restrict__ acc,
                                  A* __restrict__ accw) {
  const A d = to_acc<A>(a[i]) - to_acc<A>(b[i]);
  A v, g;
  loss_and_grad<K, A>(d, c, v, g);
  if (HAS_W) {
    v *= ww;
    g *= ww;
    accw[j] += ww;
  }
  acc[j] += v;
  if (MAP) map[i] = from_acc<T>(v);
  if (GRAD) grad[i] = from_acc<T>(g * gmul);
}

// Charbonnier on float32 storage where the ISA has a reciprocal square root estimate:
// run_segment's loop (same lanes, same blocks, same folds) with q = d^2 + c, the estimate
// r0 ~ 1 / sqrt(q) (simd.h) and one Newton step written as
//   y = q r0,  e = 3 - y r0,  sqrt(q) ~ y e / 2,  d / sqrt(q) ~ d r0 e / 2
// (Newton: r = r0 (3 - q r0^2) / 2). The block sums add y e (one FMA) and are halved when
// folded (exact); the gradient's 1/2 rides on gmul. 4 multiply-class operations a vector
// forward, 7 with the gradient, where IEEE sqrt and division take the divider 5-10 cycles.
// Within 5 ulps of the IEEE form per element (tests/test_cpu_isa.py), as the CUDA kernel's
// rsqrtf. The caller guarantees c >= FLT_MIN, so q is normal unless d is inf or NaN; such a
// lane makes y (inf 0 or NaN) and the block's sum NaN, and the block is then recomputed in
// the IEEE form (stores and sums both: the sums restart from zero at every block).
template <bool HAS_W, bool MAP, bool GRAD>
void run_segment_charbonnier(const float* __restrict__ a, const float* __restrict__ b, const float* __restrict__ w,
                             float* __restrict__ map, float* __restrict__ grad, int64_t len, float c, float gmul,
                             LaneSums<float>& acc, LaneSums<float>& accw) {
  using V = Vec<float>;
  constexpr int NV = vec_lanes<float>();
  constexpr int U = kLanes / NV;
  V bs[U], bw[U];  // bs: twice the block sums of the loss
  float lanes[kLanes];
  const V half = vsplat(0.5f), three = vsplat(3.0f), cv = vsplat(c), gm2 = vsplat(0.5f * gmul);
  auto clear = [&] {
    for (int u = 0; u < U; ++u) bs[u] = bw[u] = V{};
  };
  auto body = [&](int64_t o, int u, auto fast) {
    const V d = vload(a + o) - vload(b + o);
    V value2, deriv2;  // twice the loss and twice its derivative
    if constexpr (decltype(fast)::value) {
      const V q = d * d + cv;
      const V r0 = vrsqrt_estimate(q);
      const V y = q * r0;
      const V e = three - y * r0;
      value2 = y * e;
      deriv2 = (d * r0) * e;
    } else {
      float dl[NV], vl[NV], gl[NV];
      vstore(dl, d);
      for (int j = 0; j < NV; ++j) loss_and_grad<kCharbonnier, float>(dl[j], c, vl[j], gl[j]);
      value2 = vload(vl) + vload(vl);
      deriv2 = vload(gl) + vload(gl);
    }
    if (HAS_W) {
      const V ww = vload(w + o);
      value2 *= ww;
      deriv2 *= ww;
      bw[u] += ww;
    }
    bs[u] += value2;
    if (MAP) vstore(map + o, value2 * half);
    if (GRAD) vstore(grad + o, deriv2 * gm2);
  };
  // steps of kLanes elements from i: the estimate, then the IEEE form when the sum is NaN
  auto block = [&](int64_t i, int64_t steps) {
    clear();
    for (int64_t k = 0; k < steps; ++k)
      for (int u = 0; u < U; ++u) body(i + k * kLanes + u * NV, u, std::true_type{});
    V t = bs[0];
    for (int u = 1; u < U; ++u) t += bs[u];
    vstore(lanes, t);
    float sum = 0;
    for (int j = 0; j < NV; ++j) sum += lanes[j];
    if (sum != sum) {
      clear();
      for (int64_t k = 0; k < steps; ++k)
        for (int u = 0; u < U; ++u) body(i + k * kLanes + u * NV, u, std::false_type{});
    }
    for (int u = 0; u < U; ++u) vstore(lanes + u * NV, bs[u] * half);
    acc.fold(lanes);
    if (HAS_W) {
      for (int u = 0; u < U; ++u) vstore(lanes + u * NV, bw[u]);
      accw.fold(lanes);
    }
  };
  int64_t i = 0;
  for (; i + kBlockIters * kLanes <= len; i += kBlockIters * kLanes) block(i, kBlockIters);
  const int64_t steps = (len - i) / kLanes;
  block(i, steps);
  i += steps * kLanes;
  // the last len % kLanes elements: the IEEE form, lanes 0 .. as run_segment's tail
  float ts[kLanes] = {}, tw[kLanes] = {};
  for (int j = 0; i < len; ++i, ++j) {
    pixel_element<float, float, kCharbonnier, HAS_W, MAP, GRAD>(a, b, HAS_W ? w[i] : 1.0f, map, grad, i, j, c,
                                                                gmul, ts, tw);
  }
  acc.fold(ts);
  if (HAS_W) accw.fold(tw);
}

// A contiguous run of `len` elements into the lane sums acc (loss) and accw (weight).
template <typename T, typename A, int K, bool HAS_W, bool MAP, bool GRAD>
void run_segment(const T* __restrict__ a, const T* __restrict__ b, const T* __restrict__ w, T* __restrict__ map,
                 T* __restrict__ grad, int64_t len, A c, A gmul, LaneSums<A>& acc, LaneSums<A>& accw) {
  if constexpr (K == kCharbonnier && std::is_same<T, float>::value && kHasRsqrt) {
    if (c >= std::numeric_limits<float>::min()) {  // q = d^2 + c normal for every finite d
      run_segment_charbonnier<HAS_W, MAP, GRAD>(a, b, w, map, grad, len, c, gmul, acc, accw);
      return;
    }
  }
  A bs[kLanes] = {};
  A bw[kLanes] = {};
  int64_t i = 0;
  for (; i + kBlockIters * kLanes <= len; i += kBlockIters * kLanes) {
    for (int64_t k = i; k < i + kBlockIters * kLanes; k += kLanes) {
#pragma omp simd
      for (int j = 0; j < kLanes; ++j)
        pixel_element<T, A, K, HAS_W, MAP, GRAD>(a, b, HAS_W ? to_acc<A>(w[k + j]) : A(1), map, grad, k + j, j, c,
                                                 gmul, bs, bw);
    }
    acc.fold(bs);
    if (HAS_W) accw.fold(bw);
  }
  for (; i + kLanes <= len; i += kLanes) {
#pragma omp simd
    for (int j = 0; j < kLanes; ++j)
      pixel_element<T, A, K, HAS_W, MAP, GRAD>(a, b, HAS_W ? to_acc<A>(w[i + j]) : A(1), map, grad, i + j, j, c,
                                               gmul, bs, bw);
  }
  for (int j = 0; i < len; ++i, ++j)
    pixel_element<T, A, K, HAS_W, MAP, GRAD>(a, b, HAS_W ? to_acc<A>(w[i]) : A(1), map, grad, i, j, c, gmul, bs,
                                             bw);
  acc.fold(bs);
  if (HAS_W) accw.fold(bw);
}

// Channels-last input with a one-channel weight: C consecutive elements share
// one weight value. Rare layout; plain loop, blocked as run_segment.
template <typename T, typename A, int K, bool MAP, bool GRAD>
void run_pixel_weighted(const T* a, const T* b, const T* w, T* map, T* grad,
                        int64_t begin, int64_t end, int64_t channels, A c, A gmul, LaneSums<A>& acc,
                        LaneSums<A>& accw) {
  A bs[kLanes] = {};
  A bw[kLanes] = {};
  for (int64_t i = begin; i < end; ++i) {
    const int64_t k = i - begin;
    pixel_element<T, A, K, true, MAP, GRAD>(a, b, to_acc<A>(w[i / channels]), map, grad, i,
                                            static_cast<int>(k % kLanes), c, gmul, bs, bw);
    if ((k + 1) % (kBlockIters * kLanes) == 0) {
      acc.fold(bs);
      accw.fold(bw);
    }
  }
  acc.fold(bs);
  accw.fold(bw);
}

template <typename T, int K, bool MAP, bool GRAD>
void forward_typed(const T* a, const T* b, const T* w, T* map, T* grad, int64_t n, int wmode,
                   int64_t channels, int64_t inner, typename AccOf<T>::type c,
                   typename AccOf<T>::type gmul, std::vector<typename AccOf<T>::type>& partial) {
  using A = typename AccOf<T>::type;
  const int64_t nchunks = (n + kChunk - 1) / kChunk;
  partial.assign(2 * nchunks, A(0));
  at::parallel_for(0, nchunks, 1, [&](int64_t cb, int64_t ce) {
    for (int64_t ch = cb; ch < ce; ++ch) {
      const int64_t begin = ch * kChunk;
      const int64_t end = begin + kChunk < n ? begin + kChunk : n;
      LaneSums<A> acc, accw;
      T* m = MAP ? map + begin : nullptr;
      T* g = GRAD ? grad + begin : nullptr;
      if (wmode == kNoWeight) {
        run_segment<T, A, K, false, MAP, GRAD>(a + begin, b + begin, nullptr, m, g, end - begin,
                                               c, gmul, acc, accw);
      } else if (wmode == kFull) {
        run_segment<T, A, K, true, MAP, GRAD>(a + begin, b + begin, w + begin, m, g,
                                              end - begin, c, gmul, acc, accw);
      } else if (wmode == kPlane) {
        // Split the chunk at plane boundaries; each piece has a contiguous weight run.
        int64_t i = begin;
        while (i < end) {
          const int64_t plane = i / inner;
          const int64_t stop = (plane + 1) * inner < end ? (plane + 1) * inner : end;
          const T* wp = w + (plane / channels) * inner + (i - plane * inner);
          run_segment<T, A, K, true, MAP, GRAD>(a + i, b + i, wp, MAP ? map + i : nullptr,
                                                GRAD ? grad + i : nullptr, stop - i, c, gmul,
                                                acc, accw);
          i = stop;
        }
      } else {
        run_pixel_weighted<T, A, K, MAP, GRAD>(a, b, w, map, grad, begin, end, channels, c, gmul,
                                               acc, accw);
      }
      partial[2 * ch] = acc.total();
      partial[2 * ch + 1] = accw.total();
    }
  });
}

template <typename T, int K>
void forward_kind(const T* a, const T* b, const T* w, T* map, T* grad, int64_t n, int wmode,
                  int64_t channels, int64_t inner, typename AccOf<T>::type c,
                  typename AccOf<T>::type gmul, std::vector<typename AccOf<T>::type>& partial) {
  if (map && grad)
    forward_typed<T, K, true, true>(a, b, w, map, grad, n, wmode, channels, inner, c, gmul, partial);
  else if (map)
    forward_typed<T, K, true, false>(a, b, w, map, grad, n, wmode, channels, inner, c, gmul, partial);
  else if (grad)
    forward_typed<T, K, false, true>(a, b, w, map, grad, n, wmode, channels, inner, c, gmul, partial);
  else
    forward_typed<T, K, false, false>(a, b, w, map, grad, n, wmode, channels, inner, c, gmul, partial);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> pixel_fwd(
    const at::Tensor& pred, const at::Tensor& target, const std::optional<at::Tensor>& weight,
    int64_t weight_mode, int64_t channels, int64_t inner, int64_t kind, double c,
    int64_t reduction, double norm_scale, bool need_grad) {
  host::check_pixel_fwd(pred, target, weight, weight_mode, channels, inner, kind, reduction);
  const int64_t n = pred.numel();
  const auto scalar_opts = pred.options().dtype(host::acc_dtype(pred));
  at::Tensor map = reduction == kNone ? pooled_empty_like(pred) : at::Tensor();
  at::Tensor grad = need_grad ? pooled_empty_like(pred) : at::empty({0}, pred.options());
  at::Tensor out = reduction == kNone ? map : at::empty({}, scalar_opts);
  at::Tensor gscale = at::empty({}, scalar_opts);

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, pred.scalar_type(), "pixel_fwd", [&] {
    using A = typename AccOf<scalar_t>::type;
    const scalar_t* a = pred.data_ptr<scalar_t>();
    const scalar_t* b = target.data_ptr<scalar_t>();
    const scalar_t* w = weight.has_value() ? weight->data_ptr<scalar_t>() : nullptr;
    scalar_t* m = reduction == kNone ? map.data_ptr<scalar_t>() : nullptr;
    scalar_t* g = need_grad ? grad.data_ptr<scalar_t>() : nullptr;
    std::vector<A> partial;
    const int wm = static_cast<int>(weight_mode);
    const A cc = static_cast<A>(c);
    // sum and mean know their divisor before the pass: store the gradient of the
    // reduced loss itself, so backward can hand it over untouched when grad_out == 1
    const A gmul = reduction == kMean ? A(1) / static_cast<A>(n) : A(1);
    if (kind == kL1)
      forward_kind<scalar_t, kL1>(a, b, w, m, g, n, wm, channels, inner, cc, gmul, partial);
    else if (kind == kMSE)
      forward_kind<scalar_t, kMSE>(a, b, w, m, g, n, wm, channels, inner, cc, gmul, partial);
    else
      forward_kind<scalar_t, kCharbonnier>(a, b, w, m, g, n, wm, channels, inner, cc, gmul, partial);
    const int64_t nchunks = static_cast<int64_t>(partial.size() / 2);
    const A total = pairwise_sum(partial.data(), nchunks, 2);
    const A wtotal = pairwise_sum(partial.data() + 1, nchunks, 2);
    A denom = 1;
    if (reduction == kMean) denom = static_cast<A>(n);
    // weighted mean without a weight map: every weight 1, the divisor is n (the op contract)
    if (reduction == kWeightedMean) denom = w ? wtotal * static_cast<A>(norm_scale) : static_cast<A>(n);
    gscale.data_ptr<A>()[0] = reduction == kWeightedMean ? A(1) / denom : A(1);
    if (reduction != kNone) out.data_ptr<A>()[0] = reduction == kSum ? total : total / denom;
  });
  return {out, gscale, grad};
}

double read_scalar(const at::Tensor& t) {
  double v = 0;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, t.scalar_type(), "read_scalar",
                                  [&] { v = static_cast<double>(*t.data_ptr<scalar_t>()); });
  return v;
}

template <typename T, typename A, bool PRED, bool TARGET>
void scale_segment(const T* __restrict__ g, T* __restrict__ gp,
                                      T* __restrict__ gt, int64_t len, A s) {
#pragma omp simd
  for (int64_t i = 0; i < len; ++i) {
    A v = to_acc<A>(g[i]) * s;
    if (PRED) gp[i] = from_acc<T>(v);
    if (TARGET) gt[i] = from_acc<T>(-v);
  }
}

std::tuple<at::Tensor, at::Tensor> pixel_bwd(const at::Tensor& grad, const at::Tensor& grad_out,
                                             const at::Tensor& gscale, bool need_pred,
                                             bool need_target) {
  host::check_pixel_bwd(grad, grad_out, gscale);
  at::Tensor gp = need_pred ? pooled_empty_like(grad) : at::empty({0}, grad.options());
  at::Tensor gt = need_target ? pooled_empty_like(grad) : at::empty({0}, grad.options());
  const int64_t n = grad.numel();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, grad.scalar_type(), "pixel_bwd", [&] {
    using A = typename AccOf<scalar_t>::type;
    const A s = static_cast<A>(read_scalar(grad_out) * read_scalar(gscale));
    const scalar_t* g = grad.data_ptr<scalar_t>();
    scalar_t* p = need_pred ? gp.data_ptr<scalar_t>() : nullptr;
    scalar_t* t = need_target ? gt.data_ptr<scalar_t>() : nullptr;
    at::parallel_for(0, n, kChunk, [&](int64_t begin, int64_t end) {
      const int64_t len = end - begin;
      if (p && t)
        scale_segment<scalar_t, A, true, true>(g + begin, p + begin, t + begin, len, s);
      else if (p)
        scale_segment<scalar_t, A, true, false>(g + begin, p + begin, nullptr, len, s);
      else if (t)
        scale_segment<scalar_t, A, false, true>(g + begin, nullptr, t + begin, len, s);
    });
  });
  return {gp, gt};
}

}  // namespace
}  // namespace pixel_impl

void pixel_kernels(PixelKernels* t) {
  using namespace pixel_impl;
  t->fwd = &pixel_fwd;
  t->bwd = &pixel_bwd;
}

}  // namespace FASTIQA_ISA_NS
}  // namespace cpu
}  // namespace fastiqa
FASTIQA_ISA_END
