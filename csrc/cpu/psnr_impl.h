// Fused CPU kernels of the psnr family: per-image MSE / MAE with the optional
// BT.601 Y channel, border crop and 8-bit quantisation done on the fly (no
// converted, cropped or rounded copy is made). See csrc/common/psnr_math.h.
//
// Forward: one read of x and y; the statistic is summed per "row" (a run of
// samples of one image: one image row of one channel, or one image row of all
// channels for channels-last, or one row of pixels for the Y channel; an image that
// is one contiguous run without crop or Y conversion: segments of 16384 samples) in
// independent lane accumulators, the row sums are stored, then each image's rows are
// summed in row order in double. Row boundaries depend on the shape only, so the result
// is bitwise the same for any thread count.
// When asked (and not quantising: the rounding has zero derivative), the same
// pass writes d(stat_n)/dx into a buffer of x's shape (zero in the cropped border).
// Backward: grad_x[n] = grad[n] * grad_out[n], grad_y = -grad_x, one pass.
#pragma once

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "../common/psnr_math.h"
#include "../host/psnr_checks.h"
#include "buffer_pool.h"
#include "convert.h"
#include "isa.h"
#include "kernel_tables.h"

FASTIQA_ISA_BEGIN
namespace fastiqa {
namespace cpu {
namespace FASTIQA_ISA_NS {
#include "simd.h"
namespace psnr_impl {
namespace {

using namespace fastiqa::psnr;

constexpr int64_t kGrainSamples = 1 << 14;

// The statistic of sample i (optionally quantised), its derivative stored when GRAD.
template <typename T, typename A, int K, bool Q, bool GRAD>
FASTIQA_INLINE A plain_sample(const T* __restrict__ a, const T* __restrict__ b, T* __restrict__ g, int64_t i,
                              A qscale, A gmul) {
  A va = to_acc<A>(a[i]), vb = to_acc<A>(b[i]);
  if (Q) {
    va = quant8<A>(va * qscale);
    vb = quant8<A>(vb * qscale);
  }
  A v, dv;
  stat_and_grad<K, A>(va - vb, v, dv);
  if (GRAD) g[i] = from_acc<T>(dv * gmul);
  return v;
}

// One contiguous run of `len` samples (no Y conversion).
template <typename T, typename A, int K, bool Q, bool GRAD>
A run_plain(const T* __restrict__ a, const T* __restrict__ b, T* __restrict__ g, int64_t len, A qscale, A gmul) {
  A acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= len; i += kLanes) {
#pragma omp simd
    for (int j = 0; j < kLanes; ++j) acc[j] += plain_sample<T, A, K, Q, GRAD>(a, b, g, i + j, qscale, gmul);
  }
  for (int j = 0; i < len; ++i, ++j) acc[j] += plain_sample<T, A, K, Q, GRAD>(a, b, g, i, qscale, gmul);
  A s = 0;
  for (int j = 0; j < kLanes; ++j) s += acc[j];
  return s;
}

template <typename T, typename A, int K, bool Q, bool GRAD>
FASTIQA_INLINE A luma_sample(const T* __restrict__ a, const T* __restrict__ b, T* __restrict__ g,
                             int64_t o, int64_t sc, A wr, A wg, A wb, A qscale, A gmul) {
  const A d = luma_diff<A, Q>(to_acc<A>(a[o]), to_acc<A>(a[o + sc]), to_acc<A>(a[o + 2 * sc]),
                             to_acc<A>(b[o]), to_acc<A>(b[o + sc]), to_acc<A>(b[o + 2 * sc]),
                             wr, wg, wb, qscale);
  A v, dv;
  stat_and_grad<K, A>(d, v, dv);
  if (GRAD) {
    dv *= gmul;
    g[o] = from_acc<T>(dv * wr);
    g[o + sc] = from_acc<T>(dv * wg);
    g[o + 2 * sc] = from_acc<T>(dv * wb);
  }
  return v;
}

// One row of `len` pixels of the Y channel; channel c of pixel i at c * sc + i * sp.
template <typename T, typename A, int K, bool Q, bool GRAD, bool UNIT>
A run_luma(const T* __restrict__ a, const T* __restrict__ b, T* __restrict__ g,
                              int64_t len, int64_t sc, int64_t sp_runtime, A qscale, A gmul) {
  const int64_t sp = UNIT ? 1 : sp_runtime;
  const A wr = static_cast<A>(kYR / 255.0), wg = static_cast<A>(kYG / 255.0),
          wb = static_cast<A>(kYB / 255.0);
  A acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= len; i += kLanes) {
#pragma omp simd
    for (int j = 0; j < kLanes; ++j)
      acc[j] += luma_sample<T, A, K, Q, GRAD>(a, b, g, (i + j) * sp, sc, wr, wg, wb, qscale, gmul);
  }
  for (int j = 0; i < len; ++i, ++j)
    acc[j] += luma_sample<T, A, K, Q, GRAD>(a, b, g, i * sp, sc, wr, wg, wb, qscale, gmul);
  A s = 0;
  for (int j = 0; j < kLanes; ++j) s += acc[j];
  return s;
}

// Vector forms of the two loops above for float / double storage (no conversion) with
// unit sample stride. They sum in another order than the scalar forms (kVecAcc vector
// accumulators, then a halving tree), fixed by the ISA's vector width and the row length:
// the same bits for any thread count, last-bit differences between ISA variants.

// quant8 of psnr_math.h plus the rounding constant m: rint(clamp(v, 0, 255)) + m, exact.
// The difference of two such values is the difference of the quantised samples, exactly
// (both lie in [m, m + 255]), so the "- m" of the rounding is never computed.
template <typename A> FASTIQA_INLINE Vec<A> vquant8_plus_m(Vec<A> v) {
  using V = Vec<A>;
  return vclamp(v, V{}, vsplat(A(255))) + RoundMagic<A>::value;
}

template <int K, typename A> FASTIQA_INLINE void vstat_and_grad(Vec<A> d, Vec<A>& value, Vec<A>& deriv) {
  using V = Vec<A>;
  const V zero = V{};
  if (K == kMSE) {
    value = d * d;
    deriv = A(2) * d;
  } else {
    value = d < zero ? -d : d;
    const V one = vsplat(A(1));
    deriv = d > zero ? one : (d < zero ? -one : zero);
  }
}

// Steps of a row sum summed plainly into the step accumulators before they are folded
// into the row's total.
constexpr int kVecBlock = 16;

// Sum over the whole vectors of a row of body(o), the statistic's vector of samples
// o .. o + lanes - 1 (body stores their derivatives itself when asked); `done` gets the
// number of samples covered, the caller adds the rest with the scalar loop.
// NACC independent accumulators (steps of NACC vectors) cover the add / FMA latency at
// one body a cycle. Each accumulator lane adds at most kVecBlock terms plainly (error
// ~16 u); the block's accumulators are summed as a halving tree into one vector, which
// goes into the row total with Kahan compensation (as pixel_impl.h's LaneSums), so a
// segment of 16384 samples sums as accurately as a row of 256. The total's lanes are
// summed as a halving tree too: a short dependency chain, where a running sum of the
// lanes is one dependent add per lane on every row.
template <typename A, int NACC, typename Body>
FASTIQA_INLINE A sum_lanes_vec(int64_t len, Body body, int64_t& done) {
  using V = Vec<A>;
  constexpr int NV = vec_lanes<A>();
  constexpr int64_t kStep = NACC * NV;
  V acc[NACC];
  for (int u = 0; u < NACC; ++u) acc[u] = V{};
  auto block_sum = [&] {
    for (int w = NACC / 2; w >= 1; w /= 2)
      for (int u = 0; u < w; ++u) acc[u] += acc[u + w];
    const V v = acc[0];
    for (int u = 0; u < NACC; ++u) acc[u] = V{};
    return v;
  };
  V tot = V{}, comp = V{};
  int64_t i = 0;
  for (; i + kVecBlock * kStep <= len;) {
    for (int k = 0; k < kVecBlock; ++k, i += kStep)
      for (int u = 0; u < NACC; ++u) acc[u] += body(i + u * NV);
    const V y = block_sum() - comp;
    const V t = tot + y;
    comp = (t - tot) - y;
    tot = t;
  }
  for (; i + kStep <= len; i += kStep)
    for (int u = 0; u < NACC; ++u) acc[u] += body(i + u * NV);
  for (; i + NV <= len; i += NV) acc[0] += body(i);
  done = i;
  const V last = block_sum();
  tot = i > kVecBlock * kStep ? tot + (last - comp) : last;  // a short row needs no compensation
  A lanes[NV];
  vstore(lanes, tot);
  for (int w = NV / 2; w >= 1; w /= 2)
    for (int j = 0; j < w; ++j) lanes[j] += lanes[j + w];
  return lanes[0];
}

template <typename A, int K, bool Q, bool GRAD>
A run_plain_vec(const A* __restrict__ a, const A* __restrict__ b, A* __restrict__ g, int64_t len, A qscale,
                A gmul) {
  using V = Vec<A>;
  int64_t done = 0;
  A s = sum_lanes_vec<A, 4>(len, [&](int64_t o) {
    V va = vload(a + o), vb = vload(b + o);
    if (Q) {
      va = vquant8_plus_m<A>(va * qscale);
      vb = vquant8_plus_m<A>(vb * qscale);
    }
    V v, dv;
    vstat_and_grad<K, A>(va - vb, v, dv);
    if (GRAD) vstore(g + o, dv * gmul);
    return v;
  }, done);
  // the last len % (vector lanes) samples by the scalar loop
  return s + run_plain<A, A, K, Q, GRAD>(a + done, b + done, GRAD ? g + done : g, len - done, qscale, gmul);
}

template <typename A, int K, bool Q, bool GRAD>
A run_luma_vec(const A* __restrict__ a, const A* __restrict__ b, A* __restrict__ g, int64_t len, int64_t sc,
               A qscale, A gmul) {
  using V = Vec<A>;
  const A wr = static_cast<A>(kYR / 255.0), wg = static_cast<A>(kYG / 255.0),
          wb = static_cast<A>(kYB / 255.0);
  int64_t done = 0;
  A s = sum_lanes_vec<A, 2>(len, [&](int64_t o) {
    V xr = vload(a + o), xg = vload(a + o + sc), xb = vload(a + o + 2 * sc);
    V yr = vload(b + o), yg = vload(b + o + sc), yb = vload(b + o + 2 * sc);
    if (Q) {
      xr = vquant8_plus_m<A>(xr * qscale);
      xg = vquant8_plus_m<A>(xg * qscale);
      xb = vquant8_plus_m<A>(xb * qscale);
      yr = vquant8_plus_m<A>(yr * qscale);
      yg = vquant8_plus_m<A>(yg * qscale);
      yb = vquant8_plus_m<A>(yb * qscale);
    }
    const V d = wr * (xr - yr) + wg * (xg - yg) + wb * (xb - yb);
    V v, dv;
    vstat_and_grad<K, A>(d, v, dv);
    if (GRAD) {
      dv *= gmul;
      vstore(g + o, dv * wr);
      vstore(g + o + sc, dv * wg);
      vstore(g + o + 2 * sc, dv * wb);
    }
    return v;
  }, done);
  return s + run_luma<A, A, K, Q, GRAD, true>(a + done, b + done, GRAD ? g + done : g, len - done, sc, 1,
                                             qscale, gmul);
}

// Samples of a segment: an image whose samples are one contiguous run (no crop, no Y
// conversion, dense NCHW or channels_last) is summed in segments of this many samples
// instead of image rows; a row of a few hundred samples spends as long on its own set-up
// and final lane sum as on its loads (1.5x the whole pass at 256-wide rows).
constexpr int64_t kSegmentSamples = 1 << 14;

struct Geometry {
  int64_t n, c, h, w, sn, sc, sh, sw, crop;
  bool luma, channels_last;
  bool segments;  // rows are kSegmentSamples runs of one contiguous image (the last one shorter)
  // rows per image, samples per row (the last row of an image may be shorter when
  // `segments`), samples (of the statistic) per image
  int64_t rows, len, count;
};

Geometry geometry(const at::Tensor& x, int64_t crop, bool luma) {
  Geometry G{};
  G.n = x.size(0), G.c = x.size(1), G.h = x.size(2), G.w = x.size(3);
  G.sn = x.stride(0), G.sc = x.stride(1), G.sh = x.stride(2), G.sw = x.stride(3);
  G.crop = crop;
  G.luma = luma;
  const int64_t hh = G.h - 2 * crop, ww = G.w - 2 * crop;
  // channels-last dense: a row of all channels is one contiguous run
  G.channels_last = G.c > 1 && G.sc == 1 && G.sw == G.c;
  if (luma) {
    G.rows = hh, G.len = ww, G.count = hh * ww;
  } else if (G.channels_last) {
    G.rows = hh, G.len = ww * G.c, G.count = hh * ww * G.c;
  } else {
    G.rows = G.c * hh, G.len = ww, G.count = G.c * hh * ww;
  }
  // the image is one run when its rows (and, planar, its channel planes) follow each other
  const bool contiguous = G.channels_last ? G.sh == G.w * G.c
                                          : G.sw == 1 && (G.h == 1 || G.sh == G.w) &&
                                                (G.c == 1 || G.sc == G.h * G.w);
  G.segments = !luma && crop == 0 && contiguous && G.count > G.len;
  if (G.segments) {
    G.rows = (G.count + kSegmentSamples - 1) / kSegmentSamples;
    G.len = G.count < kSegmentSamples ? G.count : kSegmentSamples;
  }
  return G;
}

// offset of the first sample of row r of image i
int64_t row_offset(const Geometry& G, int64_t i, int64_t r) {
  const int64_t k = G.crop;
  if (G.segments) return i * G.sn + r * kSegmentSamples;
  if (G.luma || G.channels_last) return i * G.sn + (r + k) * G.sh + k * G.sw;
  const int64_t hh = G.h - 2 * k;
  const int64_t c = r / hh, h = r % hh;
  return i * G.sn + c * G.sc + (h + k) * G.sh + k * G.sw;
}

// samples in row r (only a segmented image's last row is shorter)
int64_t row_length(const Geometry& G, int64_t r) {
  if (!G.segments) return G.len;
  const int64_t rest = G.count - r * kSegmentSamples;
  return rest < kSegmentSamples ? rest : kSegmentSamples;
}

template <typename T, int K, bool Q, bool GRAD>
void forward_typed(const T* a, const T* b, T* g, const Geometry& G, double data_range,
                   std::vector<typename AccOf<T>::type>& partial) {
  using A = typename AccOf<T>::type;
  const int64_t total_rows = G.n * G.rows;
  partial.assign(total_rows, A(0));
  const A qscale = static_cast<A>(255.0 / data_range);
  const A gmul = static_cast<A>(1.0 / static_cast<double>(G.count));
  const int64_t grain = G.len >= kGrainSamples ? 1 : kGrainSamples / (G.len > 0 ? G.len : 1);
  at::parallel_for(0, total_rows, grain, [&](int64_t rb, int64_t re) {
    for (int64_t rr = rb; rr < re; ++rr) {
      const int64_t i = rr / G.rows, r = rr % G.rows;
      const int64_t o = row_offset(G, i, r), len = row_length(G, r);
      T* gp = GRAD ? g + o : nullptr;
      A s;
      if (G.luma) {
        if (G.sw != 1)
          s = run_luma<T, A, K, Q, GRAD, false>(a + o, b + o, gp, len, G.sc, G.sw, qscale, gmul);
        else if constexpr (std::is_same<T, A>::value)
          s = run_luma_vec<A, K, Q, GRAD>(a + o, b + o, gp, len, G.sc, qscale, gmul);
        else
          s = run_luma<T, A, K, Q, GRAD, true>(a + o, b + o, gp, len, G.sc, 1, qscale, gmul);
      } else {
        if constexpr (std::is_same<T, A>::value)
          s = run_plain_vec<A, K, Q, GRAD>(a + o, b + o, gp, len, qscale, gmul);
        else
          s = run_plain<T, A, K, Q, GRAD>(a + o, b + o, gp, len, qscale, gmul);
      }
      partial[rr] = s;
    }
  });
}

template <typename T, int K>
void forward_kind(const T* a, const T* b, T* g, const Geometry& G, bool quantize, double data_range,
                  std::vector<typename AccOf<T>::type>& partial) {
  if (quantize)
    forward_typed<T, K, true, false>(a, b, g, G, data_range, partial);
  else if (g)
    forward_typed<T, K, false, true>(a, b, g, G, data_range, partial);
  else
    forward_typed<T, K, false, false>(a, b, g, G, data_range, partial);
}

void zero_fill(void* p, int64_t bytes) {
  constexpr int64_t kBlock = 1 << 20;
  at::parallel_for(0, (bytes + kBlock - 1) / kBlock, 1, [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k) {
      const int64_t off = k * kBlock;
      const int64_t len = off + kBlock < bytes ? kBlock : bytes - off;
      std::memset(static_cast<char*>(p) + off, 0, len);
    }
  });
}

std::tuple<at::Tensor, at::Tensor> psnr_fwd(const at::Tensor& x, const at::Tensor& y, int64_t kind,
                                            int64_t crop, bool y_channel, bool quantize,
                                            double data_range, bool need_grad) {
  host::check_psnr_fwd(x, y, kind, crop, y_channel, quantize, data_range, need_grad);
  // what this backend reads: unit stride along W, or channels_last
  TORCH_CHECK(x.stride(3) == 1 || (x.stride(1) == 1 && x.stride(3) == x.size(1)),
              "fastiqa_C::psnr_fwd: layout must be contiguous NCHW or channels_last");
  const Geometry G = geometry(x, crop, y_channel);
  at::Tensor stat = at::empty({G.n}, x.options().dtype(host::acc_dtype(x)));
  at::Tensor grad = need_grad ? pooled_empty_like(x) : at::empty({0}, x.options());
  if (need_grad && crop > 0) zero_fill(grad.data_ptr(), grad.numel() * grad.element_size());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "psnr_fwd", [&] {
    using A = typename AccOf<scalar_t>::type;
    const scalar_t* a = x.data_ptr<scalar_t>();
    const scalar_t* b = y.data_ptr<scalar_t>();
    scalar_t* g = need_grad ? grad.data_ptr<scalar_t>() : nullptr;
    std::vector<A> partial;
    if (kind == kMSE)
      forward_kind<scalar_t, kMSE>(a, b, g, G, quantize, data_range, partial);
    else
      forward_kind<scalar_t, kL1>(a, b, g, G, quantize, data_range, partial);
    double out_scale = 1.0;
    if (quantize) {
      const double u = data_range / 255.0;
      out_scale = kind == kMSE ? u * u : u;
    }
    A* out = stat.data_ptr<A>();
    for (int64_t i = 0; i < G.n; ++i) {
      double s = 0;
      for (int64_t r = 0; r < G.rows; ++r) s += static_cast<double>(partial[i * G.rows + r]);
      out[i] = static_cast<A>(s / static_cast<double>(G.count) * out_scale);
    }
  });
  return {stat, grad};
}

template <typename T, typename A, bool PX, bool PY>
void scale_run(const T* __restrict__ g, T* __restrict__ gx, T* __restrict__ gy,
                                  int64_t len, A s) {
#pragma omp simd
  for (int64_t i = 0; i < len; ++i) {
    A v = to_acc<A>(g[i]) * s;
    if (PX) gx[i] = from_acc<T>(v);
    if (PY) gy[i] = from_acc<T>(-v);
  }
}

std::tuple<at::Tensor, at::Tensor> psnr_bwd(const at::Tensor& grad, const at::Tensor& grad_out,
                                            bool need_x, bool need_y) {
  host::check_psnr_bwd(grad, grad_out);
  const int64_t n = grad.size(0);
  const at::Tensor& go = grad_out;
  at::Tensor gx = need_x ? pooled_empty_like(grad) : at::empty({0}, grad.options());
  at::Tensor gy = need_y ? pooled_empty_like(grad) : at::empty({0}, grad.options());
  const int64_t per = n > 0 ? grad.numel() / n : 0;
  const int64_t chunk = 1 << 15;
  const int64_t chunks_per = (per + chunk - 1) / chunk;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, grad.scalar_type(), "psnr_bwd", [&] {
    using A = typename AccOf<scalar_t>::type;
    const scalar_t* g = grad.data_ptr<scalar_t>();
    scalar_t* px = need_x ? gx.data_ptr<scalar_t>() : nullptr;
    scalar_t* py = need_y ? gy.data_ptr<scalar_t>() : nullptr;
    const A* s = go.data_ptr<A>();
    at::parallel_for(0, n * chunks_per, 1, [&](int64_t cb, int64_t ce) {
      for (int64_t ck = cb; ck < ce; ++ck) {
        const int64_t i = ck / chunks_per;
        const int64_t begin = i * per + (ck % chunks_per) * chunk;
        const int64_t end = begin + chunk < (i + 1) * per ? begin + chunk : (i + 1) * per;
        const int64_t len = end - begin;
        if (px && py)
          scale_run<scalar_t, A, true, true>(g + begin, px + begin, py + begin, len, s[i]);
        else if (px)
          scale_run<scalar_t, A, true, false>(g + begin, px + begin, nullptr, len, s[i]);
        else if (py)
          scale_run<scalar_t, A, false, true>(g + begin, nullptr, py + begin, len, s[i]);
      }
    });
  });
  return {gx, gy};
}

}  // namespace
}  // namespace psnr_impl

#include "y_plane_impl.h"

void psnr_kernels(PsnrKernels* t) {
  t->fwd = &psnr_impl::psnr_fwd;
  t->bwd = &psnr_impl::psnr_bwd;
  t->y_plane = &y_plane_impl::y_plane;
  t->y_mse = &y_plane_impl::y_mse;
}

}  // namespace FASTIQA_ISA_NS
}  // namespace cpu
}  // namespace fastiqa
FASTIQA_ISA_END
