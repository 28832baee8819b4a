// Fused CPU kernels of the psnr family: per-image MSE / MAE with the optional
// BT.601 Y channel, border crop and 8-bit quantisation done on the fly (no
// converted, cropped or rounded copy is made). See csrc/common/psnr_math.h.
//
// Forward: one read of x and y; the statistic is summed per "row" (a run of
// samples of one image: one image row of one channel, or one image row of all
// channels for channels-last, or one row of pixels for the Y channel; an image that
// is one contiguous run without crop or Y conversion: segments of 16384 samples).
// Rows are summed in units of about 16384 samples (whole rows, or one segment) in
// independent lane accumulators; each unit's sum is stored, then each image's units are
// summed in order in double. Units depend on the shape only, so the result is bitwise
// the same for any thread count.
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

// Steps of a sum added plainly into the step accumulators before they are folded into
// the running total.
constexpr int kVecBlock = 16;

// The vector sum of a unit (a group of rows, or one segment) of one image. NACC independent
// accumulators (steps of NACC vectors) cover the add / FMA latency at one body a cycle.
// Each accumulator lane adds at most kVecBlock terms plainly (error ~16 u); then the
// accumulators are summed as a halving tree into one vector, which goes into the total with
// Kahan compensation (as pixel_impl.h's LaneSums), so a unit of 16384 samples sums as
// accurately as a row of 256. The accumulators carry over from one row to the next: a row
// costs no set-up and no lane sum of its own. finish() sums the total's lanes as a halving
// tree (a short dependency chain).
template <typename A, int NACC>
struct LaneSum {
  using V = Vec<A>;
  static constexpr int NV = vec_lanes<A>();
  static constexpr int64_t kStep = NACC * NV;
  V acc[NACC];
  V tot = V{}, comp = V{};
  int steps = 0;  // steps added to acc since the last fold
  bool folded = false;

  LaneSum() {
    for (int u = 0; u < NACC; ++u) acc[u] = V{};
  }
  FASTIQA_INLINE V tree() {
    for (int w = NACC / 2; w >= 1; w /= 2)
      for (int u = 0; u < w; ++u) acc[u] += acc[u + w];
    const V v = acc[0];
    for (int u = 0; u < NACC; ++u) acc[u] = V{};
    return v;
  }
  FASTIQA_INLINE void fold() {
    const V y = tree() - comp;
    const V t = tot + y;
    comp = (t - tot) - y;
    tot = t;
    steps = 0;
    folded = true;
  }
  // one vector (a row's masked head or tail, or a last whole vector)
  FASTIQA_INLINE void add_one(V v) {
    acc[0] += v;
    if (++steps == kVecBlock) fold();
  }
  // body(i) for the whole vectors i = 0, NV, ... of a run of len samples; returns the
  // samples covered (the caller adds the rest)
  template <typename Body> FASTIQA_INLINE int64_t add_run(int64_t len, Body body) {
    int64_t i = 0;
    if (steps > 0) {  // the block a previous row left open
      const int64_t room = kVecBlock - steps, fit = len / kStep;
      const int64_t k_end = fit < room ? fit : room;
      for (int64_t k = 0; k < k_end; ++k, i += kStep)
        for (int u = 0; u < NACC; ++u) acc[u] += body(i + u * NV);
      steps += static_cast<int>(k_end);
      if (steps == kVecBlock) fold();
    }
    if (steps == 0) {  // whole blocks: a fixed trip count
      for (; i + kVecBlock * kStep <= len;) {
        for (int k = 0; k < kVecBlock; ++k, i += kStep)
          for (int u = 0; u < NACC; ++u) acc[u] += body(i + u * NV);
        fold();
      }
    }
    for (; i + kStep <= len; i += kStep, ++steps)  // fewer than a block's steps are left
      for (int u = 0; u < NACC; ++u) acc[u] += body(i + u * NV);
    for (; i + NV <= len; i += NV) add_one(body(i));
    return i;
  }
  FASTIQA_INLINE A finish() {
    const V last = tree();
    const V t = folded ? tot + (last - comp) : last;  // a short unit needs no compensation
    A lanes[NV];
    vstore(lanes, t);
    for (int w = NV / 2; w >= 1; w /= 2)
      for (int j = 0; j < w; ++j) lanes[j] += lanes[j + w];
    return lanes[0];
  }
};

// How a body reads and writes its vectors: whole vectors, or the first n lanes (a row's
// masked head or tail: the other lanes read as 0, which add exactly 0 to the statistic).
struct WholeVec {
  template <typename A> FASTIQA_INLINE Vec<A> load(const A* p) const { return vload(p); }
  template <typename A> FASTIQA_INLINE void store(A* p, Vec<A> v) const { vstore(p, v); }
};
struct FirstLanes {
  int n;
  template <typename A> FASTIQA_INLINE Vec<A> load(const A* p) const { return vload_first(p, n); }
  template <typename A> FASTIQA_INLINE void store(A* p, Vec<A> v) const { vstore_first(p, v, n); }
};

// Adds the row of `len` samples at offset o (elements from the images' first sample) to s and
// returns the samples covered. With masked loads: a head up to the next offset that is a
// multiple of the vector's lanes (an aligned address when the tensor's data is: no load
// splits a cache line), whole vectors, a tail; the head depends on the offset only, so the
// sum order on the shape and strides. Without: whole vectors (the caller sums the rest).
template <typename A, int NACC, typename Body>
FASTIQA_INLINE int64_t add_row_vec(LaneSum<A, NACC>& s, int64_t o, int64_t len, const Body& body) {
  constexpr int NV = vec_lanes<A>();
  if constexpr (kHasMasked) {
    int64_t head = (NV - o % NV) % NV;
    head = head < len ? head : len;
    if (head > 0) s.add_one(body(o, FirstLanes{static_cast<int>(head)}));
    const int64_t i = head + s.add_run(len - head, [&](int64_t j) { return body(o + head + j, WholeVec{}); });
    if (i < len) s.add_one(body(o + i, FirstLanes{static_cast<int>(len - i)}));
    return len;
  } else {
    return s.add_run(len, [&](int64_t j) { return body(o + j, WholeVec{}); });
  }
}

// The statistic's vector at offset o of float / double images (unit sample stride); stores
// its derivative when GRAD.
template <typename A, int K, bool Q, bool GRAD>
struct PlainBody {
  const A* a;
  const A* b;
  A* g;
  A qscale, gmul;
  template <typename M> FASTIQA_INLINE Vec<A> operator()(int64_t o, M m) const {
    Vec<A> va = m.load(a + o), vb = m.load(b + o);
    if (Q) {
      va = vquant8_plus_m<A>(va * qscale);
      vb = vquant8_plus_m<A>(vb * qscale);
    }
    Vec<A> v, dv;
    vstat_and_grad<K, A>(va - vb, v, dv);
    if (GRAD) m.store(g + o, dv * gmul);
    return v;
  }
};

// The same for the Y channel: R, G, B of a pixel at o, o + sc, o + 2 sc.
template <typename A, int K, bool Q, bool GRAD>
struct LumaBody {
  const A* a;
  const A* b;
  A* g;
  int64_t sc;
  A qscale, gmul;
  A wr = static_cast<A>(kYR / 255.0), wg = static_cast<A>(kYG / 255.0), wb = static_cast<A>(kYB / 255.0);
  template <typename M> FASTIQA_INLINE Vec<A> operator()(int64_t o, M m) const {
    using V = Vec<A>;
    V xr = m.load(a + o), xg = m.load(a + o + sc), xb = m.load(a + o + 2 * sc);
    V yr = m.load(b + o), yg = m.load(b + o + sc), yb = m.load(b + o + 2 * sc);
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
      m.store(g + o, dv * wr);
      m.store(g + o + sc, dv * wg);
      m.store(g + o + 2 * sc, dv * wb);
    }
    return v;
  }
};

// Samples of a segment: an image whose samples are one contiguous run (no crop, no Y
// conversion, dense NCHW or channels_last) is summed in segments of this many samples
// instead of image rows. Rows shorter than this are summed in groups of whole rows of about
// this many samples: a row of a few hundred samples summed on its own spends as long on its
// set-up and final lane sum as on its loads (1.5x the whole pass at 256-wide rows).
constexpr int64_t kSegmentSamples = 1 << 14;

struct Geometry {
  int64_t n, c, h, w, sn, sc, sh, sw, crop;
  bool luma, channels_last;
  bool segments;  // rows are kSegmentSamples runs of one contiguous image (the last one shorter)
  // rows per image, samples per row (the last row of an image may be shorter when
  // `segments`), samples (of the statistic) per image
  int64_t rows, len, count;
  // rows per unit (a partial sum of its own) and units per image
  int64_t group, units;
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
  G.group = G.len >= kSegmentSamples ? 1 : kSegmentSamples / (G.len > 0 ? G.len : 1);
  G.units = (G.rows + G.group - 1) / G.group;
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

// The sum over rows r0 .. r1 - 1 of image i through one LaneSum of body's vectors;
// scalar_tail(o, len) sums the samples a row leaves over where there is no masked load.
template <typename A, int NACC, typename Body, typename Tail>
double sum_rows_vec(const Geometry& G, int64_t i, int64_t r0, int64_t r1, const Body& body, Tail scalar_tail) {
  LaneSum<A, NACC> s;
  A tail = 0;
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t o = row_offset(G, i, r), len = row_length(G, r);
    const int64_t done = add_row_vec(s, o, len, body);
    if (done < len) tail += scalar_tail(o + done, len - done);
  }
  return static_cast<double>(s.finish() + tail);
}

// sum_rows_vec for float / double storage with unit sample stride: the Y channel's body, or
// the plain one.
template <typename A, int K, bool Q, bool GRAD>
double unit_sum_vec(const A* a, const A* b, A* g, const Geometry& G, int64_t i, int64_t r0, int64_t r1,
                    A qscale, A gmul) {
  if (G.luma)
    return sum_rows_vec<A, 2>(G, i, r0, r1, LumaBody<A, K, Q, GRAD>{a, b, g, G.sc, qscale, gmul},
                              [&](int64_t o, int64_t n) {
                                return run_luma<A, A, K, Q, GRAD, true>(a + o, b + o, GRAD ? g + o : g, n, G.sc,
                                                                        1, qscale, gmul);
                              });
  return sum_rows_vec<A, 4>(G, i, r0, r1, PlainBody<A, K, Q, GRAD>{a, b, g, qscale, gmul},
                            [&](int64_t o, int64_t n) {
                              return run_plain<A, A, K, Q, GRAD>(a + o, b + o, GRAD ? g + o : g, n, qscale, gmul);
                            });
}

// The same for any storage and stride: each row summed on its own (lane-blocked scalar
// loops), the row sums added in double.
template <typename T, typename A, int K, bool Q, bool GRAD>
double unit_sum_rows(const T* a, const T* b, T* g, const Geometry& G, int64_t i, int64_t r0, int64_t r1,
                     A qscale, A gmul) {
  double total = 0;
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t o = row_offset(G, i, r), len = row_length(G, r);
    T* gp = GRAD ? g + o : nullptr;
    A s;
    if (G.luma && G.sw != 1)
      s = run_luma<T, A, K, Q, GRAD, false>(a + o, b + o, gp, len, G.sc, G.sw, qscale, gmul);
    else if (G.luma)
      s = run_luma<T, A, K, Q, GRAD, true>(a + o, b + o, gp, len, G.sc, 1, qscale, gmul);
    else
      s = run_plain<T, A, K, Q, GRAD>(a + o, b + o, gp, len, qscale, gmul);
    total += static_cast<double>(s);
  }
  return total;
}

// partial[i * G.units + q]: the sum of unit q of image i. Units depend on the shape only, so
// the result is bitwise the same for any thread count.
template <typename T, int K, bool Q, bool GRAD>
void forward_typed(const T* a, const T* b, T* g, const Geometry& G, double data_range, std::vector<double>& partial) {
  using A = typename AccOf<T>::type;
  const int64_t total_units = G.n * G.units;
  partial.assign(total_units, 0.0);
  const A qscale = static_cast<A>(255.0 / data_range);
  const A gmul = static_cast<A>(1.0 / static_cast<double>(G.count));
  at::parallel_for(0, total_units, 1, [&](int64_t ub, int64_t ue) {
    for (int64_t u = ub; u < ue; ++u) {
      const int64_t i = u / G.units, r0 = (u % G.units) * G.group;
      const int64_t r1 = r0 + G.group < G.rows ? r0 + G.group : G.rows;
      if constexpr (std::is_same<T, A>::value) {
        if (!G.luma || G.sw == 1) {
          partial[u] = unit_sum_vec<A, K, Q, GRAD>(a, b, g, G, i, r0, r1, qscale, gmul);
          continue;
        }
      }
      partial[u] = unit_sum_rows<T, A, K, Q, GRAD>(a, b, g, G, i, r0, r1, qscale, gmul);
    }
  });
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

// Zeroes the cropped border of the gradient (the pass writes the kept samples only): the
// top and bottom crop rows of every channel plane and the crop columns at both ends of every
// kept row; only the border's memory is touched (a full zero fill was another pass over the
// whole buffer).
template <typename T>
void zero_border(T* g, const Geometry& G) {
  const int64_t k = G.crop;
  at::parallel_for(0, G.n * G.c, 1, [&](int64_t pb, int64_t pe) {
    for (int64_t pl = pb; pl < pe; ++pl) {
      T* base = g + (pl / G.c) * G.sn + (pl % G.c) * G.sc;
      for (int64_t h = 0; h < G.h; ++h) {
        T* row = base + h * G.sh;
        const bool whole = h < k || h >= G.h - k;
        for (int64_t x = 0; x < G.w; x = (whole || x != k - 1) ? x + 1 : G.w - k) row[x * G.sw] = T(0);
      }
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
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "psnr_fwd", [&] {
    using A = typename AccOf<scalar_t>::type;
    const scalar_t* a = x.data_ptr<scalar_t>();
    const scalar_t* b = y.data_ptr<scalar_t>();
    scalar_t* g = need_grad ? grad.data_ptr<scalar_t>() : nullptr;
    if (g && crop > 0) zero_border(g, G);
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
    for (int64_t i = 0; i < G.n; ++i) {
      double s = 0;
      for (int64_t q = 0; q < G.units; ++q) s += partial[i * G.units + q];
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
