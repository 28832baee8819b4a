// Fused CPU kernels of the psnr family: per-image MSE / MAE with the optional
// BT.601 Y channel, border crop and 8-bit quantisation done on the fly (no
// converted, cropped or rounded copy is made). See csrc/common/psnr_math.h.
//
// Forward: one read of x and y; the statistic is summed per "row" (a run of
// samples of one image: one image row of one channel, or one image row of all
// channels for channels-last, or one row of pixels for the Y channel) into kLanes
// lane sums (sample t of the row into lane t % kLanes), which are added lane by lane in
// double over a block of kRowBlock rows of one image (no sum across lanes per row: that
// horizontal sum took a third of the kernel's time on 256-sample rows); each image's
// blocks are then summed lane by lane in block order and its kLanes lanes by pairwise
// halving. Rows and blocks depend on the shape only, and every vector holds whole lanes,
// so the result is bitwise the same for any thread count and ISA level.
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
constexpr int64_t kRowBlock = 16;  // rows of one image whose lane sums one task adds up in double

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

// One contiguous run of `len` samples (no Y conversion), added into lanes[t % kLanes].
template <typename T, typename A, int K, bool Q, bool GRAD>
void run_plain(const T* __restrict__ a, const T* __restrict__ b, T* __restrict__ g, int64_t len, A qscale,
               A gmul, A* __restrict__ lanes) {
  A acc[kLanes];
  for (int j = 0; j < kLanes; ++j) acc[j] = lanes[j];
  int64_t i = 0;
  for (; i + kLanes <= len; i += kLanes) {
#pragma omp simd
    for (int j = 0; j < kLanes; ++j) acc[j] += plain_sample<T, A, K, Q, GRAD>(a, b, g, i + j, qscale, gmul);
  }
  for (int j = 0; i < len; ++i, ++j) acc[j] += plain_sample<T, A, K, Q, GRAD>(a, b, g, i, qscale, gmul);
  for (int j = 0; j < kLanes; ++j) lanes[j] = acc[j];
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

// One row of `len` pixels of the Y channel, added into lanes[i % kLanes]; channel c of
// pixel i at c * sc + i * sp.
template <typename T, typename A, int K, bool Q, bool GRAD, bool UNIT>
void run_luma(const T* __restrict__ a, const T* __restrict__ b, T* __restrict__ g, int64_t len, int64_t sc,
              int64_t sp_runtime, A qscale, A gmul, A* __restrict__ lanes) {
  const int64_t sp = UNIT ? 1 : sp_runtime;
  const A wr = static_cast<A>(kYR / 255.0), wg = static_cast<A>(kYG / 255.0),
          wb = static_cast<A>(kYB / 255.0);
  A acc[kLanes];
  for (int j = 0; j < kLanes; ++j) acc[j] = lanes[j];
  int64_t i = 0;
  for (; i + kLanes <= len; i += kLanes) {
#pragma omp simd
    for (int j = 0; j < kLanes; ++j)
      acc[j] += luma_sample<T, A, K, Q, GRAD>(a, b, g, (i + j) * sp, sc, wr, wg, wb, qscale, gmul);
  }
  for (int j = 0; i < len; ++i, ++j)
    acc[j] += luma_sample<T, A, K, Q, GRAD>(a, b, g, i * sp, sc, wr, wg, wb, qscale, gmul);
  for (int j = 0; j < kLanes; ++j) lanes[j] = acc[j];
}

// Vector forms of the two loops above for float / double storage (no conversion) with
// unit sample stride: U = kLanes / lanes vectors of accumulators hold exactly the kLanes
// partial sums of the scalar form (same lanes, same order), in registers.

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

// The lane sums of one row of the vector paths: U vectors (lanes u * NV .. u * NV + NV - 1),
// in registers.
template <typename A> struct RowLanes {
  static constexpr int NV = vec_lanes<A>();
  static constexpr int U = kLanes / NV;
  Vec<A> v[U];
};

// Lane sums of one row: body(o), the statistic's vector of samples o .. o + NV - 1 (body
// stores their derivatives itself when asked), over the whole kLanes blocks of the row, then
// the last len % kLanes samples by scalar_tail(done, lanes) through memory (ragged widths only).
template <typename A, typename Body, typename Tail>
FASTIQA_INLINE RowLanes<A> sum_lanes_vec(int64_t len, Body body, Tail scalar_tail) {
  using R = RowLanes<A>;
  R acc;
  for (int u = 0; u < R::U; ++u) acc.v[u] = Vec<A>{};
  int64_t i = 0;
  for (; i + kLanes <= len; i += kLanes)
    for (int u = 0; u < R::U; ++u) acc.v[u] += body(i + u * R::NV);
  if (i < len) {
    alignas(64) A lanes[kLanes];
    for (int u = 0; u < R::U; ++u) vstore(lanes + u * R::NV, acc.v[u]);
    scalar_tail(i, lanes);
    for (int u = 0; u < R::U; ++u) acc.v[u] = vload(lanes + u * R::NV);
  }
  return acc;
}

template <typename A, int K, bool Q, bool GRAD>
FASTIQA_INLINE RowLanes<A> run_plain_vec(const A* __restrict__ a, const A* __restrict__ b, A* __restrict__ g,
                                         int64_t len, A qscale, A gmul) {
  using V = Vec<A>;
  return sum_lanes_vec<A>(len, [&](int64_t o) {
    V va = vload(a + o), vb = vload(b + o);
    if (Q) {
      va = vquant8_plus_m<A>(va * qscale);
      vb = vquant8_plus_m<A>(vb * qscale);
    }
    V v, dv;
    vstat_and_grad<K, A>(va - vb, v, dv);
    if (GRAD) vstore(g + o, dv * gmul);
    return v;
  }, [&](int64_t done, A* lanes) {  // done: a multiple of kLanes
    run_plain<A, A, K, Q, GRAD>(a + done, b + done, GRAD ? g + done : g, len - done, qscale, gmul, lanes);
  });
}

template <typename A, int K, bool Q, bool GRAD>
FASTIQA_INLINE RowLanes<A> run_luma_vec(const A* __restrict__ a, const A* __restrict__ b, A* __restrict__ g,
                                        int64_t len, int64_t sc, A qscale, A gmul) {
  using V = Vec<A>;
  const A wr = static_cast<A>(kYR / 255.0), wg = static_cast<A>(kYG / 255.0),
          wb = static_cast<A>(kYB / 255.0);
  return sum_lanes_vec<A>(len, [&](int64_t o) {
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
  }, [&](int64_t done, A* lanes) {
    run_luma<A, A, K, Q, GRAD, true>(a + done, b + done, GRAD ? g + done : g, len - done, sc, 1, qscale, gmul,
                                     lanes);
  });
}

struct Geometry {
  int64_t n, c, h, w, sn, sc, sh, sw, crop;
  bool luma, channels_last;
  // rows per image, samples per row, samples (of the statistic) per image
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
  return G;
}

// offset of the first sample of row r of image i
int64_t row_offset(const Geometry& G, int64_t i, int64_t r) {
  const int64_t k = G.crop;
  if (G.luma || G.channels_last) return i * G.sn + (r + k) * G.sh + k * G.sw;
  const int64_t hh = G.h - 2 * k;
  const int64_t c = r / hh, h = r % hh;
  return i * G.sn + c * G.sc + (h + k) * G.sh + k * G.sw;
}

// partial: kLanes double lane sums per block of kRowBlock rows of one image (blocks per image:
// blocks_of(G)), in image and block order.
int64_t blocks_of(const Geometry& G) { return (G.rows + kRowBlock - 1) / kRowBlock; }

// acc (kLanes doubles as native double vectors) += the row's lane sums, lane by lane: a float
// vector is widened in halves (whole registers: a double vector as wide as the float one is
// lowered through the stack by GCC on AVX2).
FASTIQA_INLINE void widen_add(const RowLanes<double>& row, Vec<double>* acc) {
  for (int u = 0; u < RowLanes<double>::U; ++u) acc[u] += row.v[u];
}
FASTIQA_INLINE void widen_add(const RowLanes<float>& row, Vec<double>* acc) {
  typedef float Half __attribute__((vector_size(kVecBytes / 2)));
  for (int u = 0; u < RowLanes<float>::U; ++u) {
    Half lo, hi;
    __builtin_memcpy(&lo, &row.v[u], sizeof(Half));
    __builtin_memcpy(&hi, reinterpret_cast<const char*>(&row.v[u]) + sizeof(Half), sizeof(Half));
    acc[2 * u] += __builtin_convertvector(lo, Vec<double>);
    acc[2 * u + 1] += __builtin_convertvector(hi, Vec<double>);
  }
}

// Rows r0 .. r1 - 1 of image i by the vector paths (float / double storage, unit sample
// stride): each row's lane sums widened to double and added lane by lane into `sums`.
template <typename A, int K, bool Q, bool GRAD>
FASTIQA_INLINE void block_vec(const A* a, const A* b, A* g, const Geometry& G, int64_t i, int64_t r0, int64_t r1,
                              A qscale, A gmul, double* sums) {
  using R = RowLanes<A>;
  constexpr int D = kLanes / vec_lanes<double>();
  Vec<double> acc[D];
  for (int m = 0; m < D; ++m) acc[m] = Vec<double>{};
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t o = row_offset(G, i, r);
    A* gp = GRAD ? g + o : nullptr;
    const R row = G.luma ? run_luma_vec<A, K, Q, GRAD>(a + o, b + o, gp, G.len, G.sc, qscale, gmul)
                         : run_plain_vec<A, K, Q, GRAD>(a + o, b + o, gp, G.len, qscale, gmul);
    widen_add(row, acc);
  }
  for (int m = 0; m < D; ++m) vstore(sums + m * vec_lanes<double>(), acc[m]);
}

// The same by the scalar loops (half / bfloat16 storage, or a Y channel with a pixel stride).
template <typename T, typename A, int K, bool Q, bool GRAD>
void block_scalar(const T* a, const T* b, T* g, const Geometry& G, int64_t i, int64_t r0, int64_t r1, A qscale,
                  A gmul, double* sums) {
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t o = row_offset(G, i, r);
    T* gp = GRAD ? g + o : nullptr;
    A lanes[kLanes] = {};
    if (!G.luma)
      run_plain<T, A, K, Q, GRAD>(a + o, b + o, gp, G.len, qscale, gmul, lanes);
    else if (G.sw != 1)
      run_luma<T, A, K, Q, GRAD, false>(a + o, b + o, gp, G.len, G.sc, G.sw, qscale, gmul, lanes);
    else
      run_luma<T, A, K, Q, GRAD, true>(a + o, b + o, gp, G.len, G.sc, 1, qscale, gmul, lanes);
    for (int j = 0; j < kLanes; ++j) sums[j] += static_cast<double>(lanes[j]);
  }
}

template <typename T, int K, bool Q, bool GRAD>
void forward_typed(const T* a, const T* b, T* g, const Geometry& G, double data_range,
                   std::vector<double>& partial) {
  using A = typename AccOf<T>::type;
  const int64_t per_image = blocks_of(G);
  partial.assign(G.n * per_image * kLanes, 0.0);
  const A qscale = static_cast<A>(255.0 / data_range);
  const A gmul = static_cast<A>(1.0 / static_cast<double>(G.count));
  const int64_t grain_rows = G.len >= kGrainSamples ? 1 : kGrainSamples / (G.len > 0 ? G.len : 1);
  const int64_t grain = std::max<int64_t>(1, grain_rows / kRowBlock);
  at::parallel_for(0, G.n * per_image, grain, [&](int64_t kb, int64_t ke) {
    for (int64_t k = kb; k < ke; ++k) {
      const int64_t i = k / per_image, r0 = (k % per_image) * kRowBlock;
      const int64_t r1 = std::min(r0 + kRowBlock, G.rows);
      double* sums = partial.data() + k * kLanes;
      if constexpr (std::is_same<T, A>::value) {
        if (!G.luma || G.sw == 1) {
          block_vec<A, K, Q, GRAD>(a, b, g, G, i, r0, r1, qscale, gmul, sums);
          continue;
        }
      }
      block_scalar<T, A, K, Q, GRAD>(a, b, g, G, i, r0, r1, qscale, gmul, sums);
    }
  });
}

// Image i's statistic: its blocks' lane sums added lane by lane in block order, then the
// kLanes lanes by pairwise halving (an order fixed by the shape).
double image_sum(const std::vector<double>& partial, int64_t i, int64_t per_image) {
  double t[kLanes] = {};
  const double* p = partial.data() + i * per_image * kLanes;
  for (int64_t k = 0; k < per_image; ++k, p += kLanes) {
#pragma omp simd
    for (int j = 0; j < kLanes; ++j) t[j] += p[j];
  }
  for (int w = kLanes / 2; w >= 1; w /= 2)
    for (int j = 0; j < w; ++j) t[j] += t[j + w];
  return t[0];
}

template <typename T, int K>
void forward_kind(const T* a, const T* b, T* g, const Geometry& G, bool quantize, double data_range,
                  std::vector<double>& partial) {
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
    std::vector<double> partial;
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
    for (int64_t i = 0; i < G.n; ++i)
      out[i] = static_cast<A>(image_sum(partial, i, blocks_of(G)) / static_cast<double>(G.count) * out_scale);
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
