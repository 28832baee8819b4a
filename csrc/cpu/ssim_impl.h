// Fused CPU kernels of the SSIM family (SSIM, MS-SSIM scales, L1+SSIM).
//
// Work unit: one band of `band` source rows of one (n, c) plane (see set_bands). A band streams
// the padded rows it needs once: each row is gathered (any strides, zero or
// reflect padding) into a cache-resident buffer, blurred horizontally for the
// quantities x, y, x^2, y^2, xy into a ring of win rows, and every completed ring
// gives one output row of the statistics by the vertical blur. In float64 four
// quantities, not five: SSIM and its gradient need sigma_x^2 and sigma_y^2 only as
// their sum, sigma_x^2 + sigma_y^2 = G*(x^2 + y^2) - mu_x^2 - mu_y^2 (Wang et al.
// 2004, eq. 13: the denominator of cs), so G*(x^2) and G*(y^2) are never needed apart
// (20% fewer FMAs; float32 keeps five, see stats_of). Nothing image-sized is written
// besides what is asked for (the SSIM map, the gradients).
//
// Gradient (csrc/common/ssim_math.h), in column strips like the forward (grad_strips):
// each output row's coefficient rows (3 for one input's gradient, 4 for both; 5 with the
// components) go into a ring of win rows; a padded row is complete as soon as the last
// output row that reads it is in the ring, and then adds its vertical adjoint into the
// band's accumulator row of its source row. Once the band's strips are done, each source
// row goes through the transposed horizontal blur and the column fold (zero padding drops,
// reflect padding adds back onto the mirrored source pixel), is combined with x and y and
// written once (combine_row). The band recomputes the win - 1 output rows of halo it
// shares with its neighbours.
//
// Per-band sums (S, cs, |x - y|) are kept per band and summed in band order, so
// results do not depend on the thread count and are bitwise reproducible.
//
// Bytes: forward reads x and y once (plus (win-1)/band halo rows) and writes
// only the map if asked; forward-with-gradient and backward read x and y once
// more for the final combination and write each requested gradient once.
#pragma once

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "../common/psnr_math.h"
#include "../common/ssim_math.h"
#include "../host/psnr_checks.h"
#include "../host/ssim_checks.h"
#include "buffer_pool.h"
#include "convert.h"
#include "isa.h"
#include "kernel_tables.h"

FASTIQA_ISA_BEGIN
namespace fastiqa {
namespace cpu {
namespace FASTIQA_ISA_NS {
#include "simd.h"
#include "luma_row.h"
#include "blur_rows.h"
namespace ssim_impl {
namespace {

using namespace fastiqa::ssim;

// Band height: with a gradient kBand or 2 kBand (set_bands: its accumulator rows stay in
// L2); up to kBandValues without one, halved while the planes give fewer than
// kMinTasks bands (a band recomputes win - 1 rows of horizontal blur: 16% of that work
// at 64 rows and an 11x11 window, 4% at 256). Never from the thread count: results must
// not depend on it.
constexpr int64_t kBand = 64;
// The most a gradient band's accumulator rows (band x nq rows, see set_bands) may take.
constexpr int64_t kBandGradBytes = 512 * 1024;
// Blurred quantities: float64 x, y, x^2 + y^2, xy (see the header comment); float32
// x, y, x^2, y^2, xy. In float32 the sum loses what the separate terms keep where the
// variance is ~0: for constants like 0.5 and 0.25, G*(x^2) and mu_x^2 round alike (power-of-two
// scaling) and sigma^2 comes out exact, G*(x^2 + y^2) does not, and 1/C2 amplifies the
// difference (SSIM off by 2.6e-5 in the fuzz suite). In float64 that error is ~1e-13.
template <typename A> constexpr int stats_of() { return std::is_same_v<A, double> ? 4 : 5; }
constexpr int kMaxStats = 5;
constexpr int64_t kBandValues = 256;
constexpr int64_t kMinTasks = 4;
// Source rows read ahead by the strips (prefetch_cols).
constexpr int64_t kPrefetchRows = 4;

int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

template <typename T> struct View {
  T* p = nullptr;
  int64_t sn = 0, sc = 0, sh = 0, sw = 0;
  View() = default;
  explicit View(const at::Tensor& t)
      : p(static_cast<T*>(t.data_ptr())), sn(t.stride(0)), sc(t.stride(1)), sh(t.stride(2)),
        sw(t.stride(3)) {}
  T* row(int64_t n, int64_t c, int64_t h) const { return p + n * sn + c * sc + h * sh; }
};

template <typename T, typename A> struct Job {
  View<const T> x, y, dmap;
  View<T> map, gx, gy;
  // the components (codes::kComponents, csrc/common/ssim_math.h): their 4 maps S, l, c, s
  // (forward), 4 map weights (backward)
  View<T> mapk[kNumComponentMaps];
  View<const T> dmapk[kNumComponentMaps];
  bool comp = false;
  int nw = kNumWeights;        // weights per plane: kNumWeights, kNumComponentStats with comp
  const A* weights = nullptr;  // (planes, nw) or null
  int64_t C = 0, H = 0, W = 0, Ho = 0, Wo = 0, offh = 0, offw = 0, Wp = 0, LW = 0, LWp = 0, band = 0, nbands = 0;
  // output columns per strip and the strip's row pitch (values_band, grad_strips; set_bands):
  // row_pitch, so that the many row streams of the blurs never sit a multiple of 4 KiB apart
  // (L1 set aliasing)
  int64_t SW = 0, PS = 0;
  // the gradient (set_bands): pitch of the band's accumulator rows (vertical adjoints, LWp + ww
  // with zero margins), the coefficient maps kept (nq of a0, a1, bx, by, c: mrow[k] = their row
  // in a slot, -1 = not needed; bx = by without the components) and the rows that dF/dx and
  // dF/dy combine (gxr, gyr: the rows of a, b, c; see ssim_math.h)
  int64_t VP = 0;
  int nq = 0;
  int mrow[5] = {-1, -1, -1, -1, -1};
  int gxr[3] = {0, 0, 0}, gyr[3] = {0, 0, 0};
  int wh = 0, ww = 0, padding = 0;  // window taps: vertical (H), horizontal (W)
  A gh[kMaxWin] = {}, gw[kMaxWin] = {};  // the vertical and horizontal windows
  A c1 = 0, c2 = 0;
  bool values = false, l1 = false, want_map = false, grad = false;
  // values_band<.., LUMA = true>: x and y are RGB samples, each row gathered as its BT.601 Y
  // (luma_row) of samples / ydiv_x (ydiv_y), offset yoff; valid padding only. sq_lanes: the
  // Y MSE's lane sums per source row (add_sq_diffs), (N * H, kLanes)
  double ydiv_x = 1, ydiv_y = 1, yoff = 0;
  double* sq_lanes = nullptr;
  std::vector<int64_t> colsrc;  // padded column -> source column or -1, size Wp
};

// ---------------------------------------------------------------------------
// Row loops. Always inlined into the band function, which is compiled once per ISA.
// ---------------------------------------------------------------------------

template <typename T, typename A>
FASTIQA_INLINE void load_row(const T* row, int64_t sw, int64_t n, A* out) {
  if (sw == 1) {
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) out[j] = to_acc<A>(row[j]);
  } else {
    for (int64_t j = 0; j < n; ++j) out[j] = to_acc<A>(row[j * sw]);
  }
}

// out[j'] = x(row, colsrc[j']) for j' < Wp, zero up to len (JobT: Job here, VolJob of
// csrc/cpu/ssim_volume.h).
template <typename T, typename A, typename JobT>
FASTIQA_INLINE void gather_padded(const T* row, int64_t sw, const JobT& J, A* out, int64_t len) {
  // padded columns offw .. offw + W - 1 are the source row itself (Wp = W + 2 offw)
  for (int64_t j = 0; j < J.offw; ++j) out[j] = J.colsrc[j] < 0 ? A(0) : to_acc<A>(row[J.colsrc[j] * sw]);
  load_row(row, sw, J.W, out + J.offw);
  for (int64_t j = J.offw + J.W; j < J.Wp; ++j) out[j] = J.colsrc[j] < 0 ? A(0) : to_acc<A>(row[J.colsrc[j] * sw]);
  for (int64_t j = J.Wp; j < len; ++j) out[j] = A(0);
}

// out[t] = x(row, colsrc[c0 + t]) for t < n_in (padded columns c0 .. c0 + n_in - 1), zero up to len.
template <typename T, typename A>
FASTIQA_INLINE void gather_cols(const T* row, int64_t sw, const Job<T, A>& J, int64_t c0, int64_t n_in, A* out,
                                int64_t len) {
  // padded column pc is source column pc - offw for offw <= pc < offw + W
  const int64_t t_a = std::min(n_in, std::max<int64_t>(0, J.offw - c0));
  const int64_t t_b = std::max(t_a, std::min(n_in, J.offw + J.W - c0));
  for (int64_t t = 0; t < t_a; ++t) out[t] = J.colsrc[c0 + t] < 0 ? A(0) : to_acc<A>(row[J.colsrc[c0 + t] * sw]);
  load_row(row + (c0 + t_a - J.offw) * sw, sw, t_b - t_a, out + t_a);
  for (int64_t t = t_b; t < n_in; ++t) out[t] = J.colsrc[c0 + t] < 0 ? A(0) : to_acc<A>(row[J.colsrc[c0 + t] * sw]);
  for (int64_t t = n_in; t < len; ++t) out[t] = A(0);
}

// Prefetches padded columns c0 .. c0 + n - 1 of source row s (of x and y) into the cache: the
// strips of a band read the rows ahead of their use, the first strip from memory.
template <typename T, typename A>
FASTIQA_INLINE void prefetch_cols(const Job<T, A>& J, int64_t n, int64_t c, int64_t s, int64_t c0, int64_t cols) {
  const int64_t a = std::max<int64_t>(0, c0 - J.offw), b = std::min(J.W, c0 + cols - J.offw);
  if (s < 0 || s >= J.H || b <= a || J.x.sw != 1 || J.y.sw != 1) return;
  const char* px = reinterpret_cast<const char*>(J.x.row(n, c, s) + a);
  const char* py = reinterpret_cast<const char*>(J.y.row(n, c, s) + a);
  const int64_t bytes = (b - a) * static_cast<int64_t>(sizeof(T));
  for (int64_t o = 0; o < bytes + 63; o += 64) {
    __builtin_prefetch(px + o);
    __builtin_prefetch(py + o);
  }
}

template <typename T, typename A>
FASTIQA_INLINE void store_row(T* row, int64_t sw, int64_t n, const A* in) {
  if (sw == 1) {
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) row[j] = from_acc<T>(in[j]);
  } else {
    for (int64_t j = 0; j < n; ++j) row[j * sw] = from_acc<T>(in[j]);
  }
}

// Products of one padded row pair (r[0] = x, r[1] = y): float64 r[2] = x^2 + y^2, r[3] = xy;
// float32 r[2] = x^2, r[3] = y^2 (xy: formed in the blur); once per sample, so that the blur
// below is one FMA per tap and quantity.
template <int K, typename A>
FASTIQA_INLINE void row_products(A* const* r, int64_t len) {
  const A* __restrict__ x = r[0];
  const A* __restrict__ y = r[1];
  if constexpr (K == 4) {
    A* __restrict__ ss = r[2];
    A* __restrict__ xy = r[3];
#pragma omp simd
    for (int64_t j = 0; j < len; ++j) {
      ss[j] = x[j] * x[j] + y[j] * y[j];
      xy[j] = x[j] * y[j];
    }
  } else {  // xy: hblur_stats_at multiplies the x and y it loads anyway
    A* __restrict__ xx = r[2];
    A* __restrict__ yy = r[3];
#pragma omp simd
    for (int64_t j = 0; j < len; ++j) {
      xx[j] = x[j] * x[j];
      yy[j] = y[j] * y[j];
    }
  }
}

// Horizontal blur of the NS = stats_of<A>() quantities: h[q * P + j] = sum_k g[k] r[q][j + k],
// j < LW. U vectors x NS quantities of accumulators stay in registers over the win taps.
template <int U, typename A, int kStats = stats_of<A>()>
FASTIQA_INLINE void hblur_stats_at(const A* const* r, const A* g, int win, int64_t j, int64_t P, A* h) {
  using V = Vec<A>;
  constexpr int NV = vec_lanes<A>();
  V a[kStats][U];
  for (int q = 0; q < kStats; ++q)
    for (int u = 0; u < U; ++u) a[q][u] = V{};
  // the window is symmetric (g[k] = g[win - 1 - k], win odd): taps k and win - 1 - k share one
  // FMA (an add on the adder pipes, and half the FMAs)
  const int half = win / 2;
  if constexpr (kStats == 5) {
    // xy from the x and y vectors loaded for mu_x and mu_y (row_products leaves r[4]): 8 loads
    // per tap pair instead of 10, for 2 more multiplies. The blur is bound by the loads (two
    // vectors a cycle on Zen 4, unaligned ones crossing lines cost more), not by the FMAs.
    for (int k = 0; k < half; ++k) {
      const V gk = vsplat(g[k]);
      for (int u = 0; u < U; ++u) {
        const int64_t o1 = j + k + u * NV, o2 = j + win - 1 - k + u * NV;
        V x1 = vload(r[0] + o1), x2 = vload(r[0] + o2), y1 = vload(r[1] + o1), y2 = vload(r[1] + o2);
        vkeep(x1), vkeep(x2), vkeep(y1), vkeep(y2);  // loaded once for their two uses each
        a[0][u] += gk * (x1 + x2);
        a[1][u] += gk * (y1 + y2);
        a[2][u] += gk * (vload(r[2] + o1) + vload(r[2] + o2));
        a[3][u] += gk * (vload(r[3] + o1) + vload(r[3] + o2));
        V p = x1 * y1;
        p += x2 * y2;
        a[4][u] += gk * p;
      }
    }
    const V gc = vsplat(g[half]);
    for (int u = 0; u < U; ++u) {
      const int64_t o = j + half + u * NV;
      const V xc = vload(r[0] + o), yc = vload(r[1] + o);
      a[0][u] += gc * xc;
      a[1][u] += gc * yc;
      a[2][u] += gc * vload(r[2] + o);
      a[3][u] += gc * vload(r[3] + o);
      a[4][u] += gc * (xc * yc);
    }
  } else {
    for (int k = 0; k < half; ++k) {
      const V gk = vsplat(g[k]);
      for (int q = 0; q < kStats; ++q)
        for (int u = 0; u < U; ++u)
          a[q][u] += gk * (vload(r[q] + j + k + u * NV) + vload(r[q] + j + win - 1 - k + u * NV));
    }
    const V gc = vsplat(g[half]);
    for (int q = 0; q < kStats; ++q)
      for (int u = 0; u < U; ++u) a[q][u] += gc * vload(r[q] + j + half + u * NV);
  }
  for (int q = 0; q < kStats; ++q)
    for (int u = 0; u < U; ++u) vstore(h + q * P + j + u * NV, a[q][u]);
}

#if FASTIQA_ISA_LEVEL == 1
// hblur_stats_at<1, float, 5> for an 11-tap window and a vector at mid-line (8 of its 11 loads per
// row would split across two lines, see hblur_adj11): the same sums in the same order, the split
// taps shifted from half-line loads. x, y and xy first, then x^2 and y^2 (16 registers).
template <int k = 0>
FASTIQA_INLINE void hblur_xy11(const float* rx, const float* ry, const float* g, __m256 X0, __m256 XM, __m256 X1,
                               __m256 Y0, __m256 YM, __m256 Y1, Vec<float>& a0, Vec<float>& a1, Vec<float>& a4) {
  using V = Vec<float>;
  if constexpr (k < 5) {
    const V gk = vsplat(g[k]);
    const V x1 = tap11<k>(rx, X0, XM, X1), x2 = tap11<10 - k>(rx, X0, XM, X1);
    const V y1 = tap11<k>(ry, Y0, YM, Y1), y2 = tap11<10 - k>(ry, Y0, YM, Y1);
    a0 += gk * (x1 + x2);
    a1 += gk * (y1 + y2);
    V p = x1 * y1;
    p += x2 * y2;
    a4 += gk * p;
    hblur_xy11<k + 1>(rx, ry, g, X0, XM, X1, Y0, YM, Y1, a0, a1, a4);
  } else {
    const V gc = vsplat(g[5]);
    const V xc = tap11<5>(rx, X0, XM, X1), yc = tap11<5>(ry, Y0, YM, Y1);
    a0 += gc * xc;
    a1 += gc * yc;
    a4 += gc * (xc * yc);
  }
}

FASTIQA_INLINE void hblur_stats11_mid(const float* const* r, const float* g, int64_t j, int64_t P, float* h) {
  using V = Vec<float>;
  V a0 = V{}, a1 = V{}, a2 = V{}, a3 = V{}, a4 = V{};
  {
    const __m256 X0 = _mm256_loadu_ps(r[0] + j), X1 = _mm256_loadu_ps(r[0] + j + 8);
    const __m256 Y0 = _mm256_loadu_ps(r[1] + j), Y1 = _mm256_loadu_ps(r[1] + j + 8);
    hblur_xy11(r[0] + j, r[1] + j, g, X0, _mm256_permute2f128_ps(X0, X1, 0x21), X1, Y0,
               _mm256_permute2f128_ps(Y0, Y1, 0x21), Y1, a0, a1, a4);
  }
  for (int q = 2; q < 4; ++q) {
    const __m256 A0 = _mm256_loadu_ps(r[q] + j), A1 = _mm256_loadu_ps(r[q] + j + 8);
    hblur_sym11(r[q] + j, g, A0, _mm256_permute2f128_ps(A0, A1, 0x21), A1, q == 2 ? a2 : a3);
  }
  vstore(h + j, a0);
  vstore(h + P + j, a1);
  vstore(h + 2 * P + j, a2);
  vstore(h + 3 * P + j, a3);
  vstore(h + 4 * P + j, a4);
}
#endif

template <int K, typename A>
FASTIQA_INLINE void hblur_stats(A* const* rows, const A* g, int win, int64_t LW, int64_t P, A* h) {
  constexpr int NV = vec_lanes<A>();
  const A* r[K];
  for (int q = 0; q < K; ++q) r[q] = rows[q];
#if FASTIQA_ISA_LEVEL == 1
  if constexpr (K == 5 && std::is_same_v<A, float>) {
    // the rows start on lines (Scratch::init): vectors alternate between on-line and mid-line
    if (win == 11) {
      for (int64_t j = 0; j < LW; j += NV) {
        bool mid = true;
        for (int q = 0; q < 4; ++q) mid = mid && (reinterpret_cast<uintptr_t>(r[q] + j) & 63) == 32;
        if (mid)
          hblur_stats11_mid(r, g, j, P, h);
        else
          hblur_stats_at<1, A, K>(r, g, win, j, P, h);
      }
      return;
    }
  }
#endif
  // two vectors per pass; one for the 5 statistics where 16 registers cannot hold 10
  // accumulators and the 4 loads + product of the on-the-fly xy (hblur_stats_at)
  constexpr int U = K == 5 && kVecBytes < 64 ? 1 : 2;
  int64_t j = 0;
  for (; j + U * NV <= LW; j += U * NV) hblur_stats_at<U, A, K>(r, g, win, j, P, h);
  for (; j < LW; j += NV) hblur_stats_at<1, A, K>(r, g, win, j, P, h);
}

// The statistics of output column j from the vertical blur's rows st (pitch P): mx, my,
// exx, eyy, exy for ssim_math.h; in float64 exx carries G*(x^2 + y^2) and eyy is 0 (the
// shared formulas subtract mx^2 and my^2 from their sum).
template <int K, typename A>
FASTIQA_INLINE void stats_at(const A* st, int64_t P, int64_t j, A& mx, A& my, A& exx, A& eyy, A& exy) {
  mx = st[j];
  my = st[P + j];
  exx = st[2 * P + j];
  if constexpr (K == 4) {
    eyy = A(0);
    exy = st[3 * P + j];
  } else {
    eyy = st[3 * P + j];
    exy = st[4 * P + j];
  }
}

// The scratch of one thread (one per at::parallel_for chunk). Buffers up to kKeepScratch bytes
// are kept per thread between calls: a fresh vector of the ~0.5 MiB a gradient band takes is
// mapped and faulted in page by page on every call. Larger ones are freed after the call.
constexpr int64_t kKeepScratch = 4 << 20;
template <typename A> struct Scratch {
  std::vector<A> own;
  A *rin[kMaxStats], *ring, *st, *srow, *csrow, *w, *mring, *junk, *t, *vacc, *xr, *yr;
  A *lrow, *krow, *trow, *wl, *wk, *wt;  // the components' rows: l, c, s and their weights
  template <typename T> void init(const Job<T, A>& J) {
    // the rows are column strips of J.SW output columns (values_band, grad_strips): pitch J.PS
    const int64_t P = J.PS, in_len = round_up(J.SW, kLanes) + J.ww;  // in_len: a strip's padded source row
    const int64_t row = std::max(J.LWp, P);  // >= W: combine_row's gradient row
    const int64_t vaccn = J.grad ? J.band * J.nq * J.VP : 0;
    constexpr int kStats = kMaxStats;  // float64 blurs 5 quantities with the components (stats_of)
    const int64_t need = kStats * in_len + (J.wh + 1) * kStats * P + 2 * kStats * P + 9 * row +
                         (J.grad ? (J.wh + 1) * J.nq * P + 5 * P + J.nq * J.LWp : 0) + vaccn + 2 * J.W + 64;
    // every row starts on a 64-byte line (the buffer itself is only 16-byte aligned, and the
    // row lengths are not all multiples of a line): a 32-byte load at 16 bytes into a line splits
    // across two lines every other vector, and a split load costs about two on Zen 4 (the blurs
    // are bound by their loads)
    constexpr int64_t line = 64 / static_cast<int64_t>(sizeof(A));
    const int64_t padded = need + 32 * line;  // < 32 rows below
    static thread_local std::vector<A> kept;
    std::vector<A>& buf = padded * static_cast<int64_t>(sizeof(A)) <= kKeepScratch ? kept : own;
    buf.assign(padded, A(0));
    A* p = buf.data();
    p += (line - (reinterpret_cast<uintptr_t>(p) / sizeof(A)) % line) % line;
    auto take = [&](int64_t n) { A* r = p; p += round_up(n, line); return r; };
    for (auto& r : rin) r = nullptr;
    for (int q = 0; q < kStats; ++q) rin[q] = take(in_len);  // x, y, products (row_products)
    ring = take((J.wh + 1) * kStats * P);  // horizontal blurs of the last wh + 1 padded rows
    st = take(2 * kStats * P);             // the statistics of one or two output rows (ring_stats)
    srow = take(row); csrow = take(row); w = take(row);
    lrow = take(row); krow = take(row); trow = take(row); wl = take(row); wk = take(row); wt = take(row);
    mring = J.grad ? take((J.wh + 1) * J.nq * P) : nullptr;  // coefficient rows of the strip's last wh + 1 outputs
    junk = J.grad ? take(5 * P) : nullptr;             // where the coefficients not needed go
    t = J.grad ? take(J.nq * J.LWp) : nullptr;         // a source row's horizontal adjoints
    vacc = J.grad ? take(vaccn) : nullptr;             // the band's vertical adjoints (run_band)
    xr = take(J.W); yr = take(J.W);
  }
};

// The vertical adjoint of padded row u of strip c0 (lw columns), once the output rows pa .. p_last
// (the last one that reads u) have their coefficient rows in the strip's ring: sum_k g[k]
// coefficients(u - k), added into the band's accumulator row of u's source row (the row fold:
// zero padding drops the row, reflect padding adds it onto the mirrored row). run_band then
// applies the horizontal adjoint once per source row, over the whole width.
template <int NQ, typename T, typename A>
FASTIQA_INLINE void vertical_adjoint(const Job<T, A>& J, Scratch<A>& S, int64_t u, int64_t pa, int64_t p_last,
                                     int64_t s_a, int64_t s_b, int64_t c0, int64_t lw) {
  const int64_t s = source_index(u, J.H, J.offh, J.padding);
  if (s < s_a || s >= s_b) return;
  const int win = J.wh;
  const int k_lo = static_cast<int>(std::max<int64_t>(0, u - p_last));
  const int k_hi = static_cast<int>(std::min<int64_t>(win - 1, u - pa));
  const A* rows[kMaxWin];
  // slot of row u - k: one division per row, then a wrap (an integer division per tap costs
  // as much as a vector of the blur)
  int64_t slot = (u - k_lo) % (win + 1);  // the ring holds win + 1 rows (vertical_adjoint2)
  for (int k = k_lo; k <= k_hi; ++k) {
    rows[k] = S.mring + slot * NQ * J.PS;
    slot = slot == 0 ? win : slot - 1;
  }
  // output column o of the strip is accumulator column ww - 1 + c0 + o (ww - 1 zeros in front)
  vblur<NQ, true>(rows, J.gh, win, k_lo, k_hi, lw, J.PS, S.vacc + (s - s_a) * NQ * J.VP + (J.ww - 1) + c0, J.VP);
}

// vertical_adjoint of padded rows u - 1 and u together when both take every tap (u - 1 - win + 1 >=
// pa, u <= p_last) and lie in the band: their win + 1 coefficient rows u - win .. u each loaded
// once (vblur2; the window is symmetric, so row u - win + m has weight g[m] for u - 1, g[m - 1] for u).
template <int NQ, typename T, typename A>
FASTIQA_INLINE void vertical_adjoint2(const Job<T, A>& J, Scratch<A>& S, int64_t u, int64_t pa, int64_t p_last,
                                      int64_t s_a, int64_t s_b, int64_t c0, int64_t lw) {
  const int win = J.wh;
  const int64_t s0 = source_index(u - 1, J.H, J.offh, J.padding), s1 = source_index(u, J.H, J.offh, J.padding);
  if (u - win < pa || u > p_last || s0 < s_a || s0 >= s_b || s1 < s_a || s1 >= s_b || s0 == s1) {
    vertical_adjoint<NQ>(J, S, u - 1, pa, p_last, s_a, s_b, c0, lw);
    vertical_adjoint<NQ>(J, S, u, pa, p_last, s_a, s_b, c0, lw);
    return;
  }
  const A* rows[kMaxWin + 1];
  int64_t slot = (u - win) % (win + 1);
  for (int m = 0; m <= win; ++m) {
    rows[m] = S.mring + slot * NQ * J.PS;
    slot = slot == win ? 0 : slot + 1;
  }
  A* v = S.vacc + (J.ww - 1) + c0;
  vblur2<NQ, true>(rows, J.gh, win, lw, J.PS, v + (s0 - s_a) * NQ * J.VP, v + (s1 - s_a) * NQ * J.VP, J.VP);
}

// rows[k] = the ring slot of ring row first + k (k < count): slots of `slot` elements, win + 1 of
// them (the ring of horizontal blurs holds the rows of two output rows, see ring_stats).
template <typename A>
FASTIQA_INLINE void ring_rows(const A* ring, int64_t first, int win, int count, int64_t slot, const A** rows) {
  const int n = win + 1;
  int64_t r = first % n;  // one division per row, then a wrap
  for (int k = 0; k < count; ++k) {
    rows[k] = ring + r * slot;
    r = r + 1 == n ? 0 : r + 1;
  }
}

// One output row of the statistics (K rows of pitch P in st0) from the ring's win rows starting
// at ring row `first`, or two (st0, st1: rows first and first + 1) from its win + 1 rows.
template <int K, typename A>
FASTIQA_INLINE void ring_stats(const A* ring, int64_t first, int win, bool two, int64_t slot, const A* g,
                               int64_t len, int64_t P, A* st0, A* st1) {
  const A* rows[kMaxWin + 1];
  ring_rows<A>(ring, first, win, two ? win + 1 : win, slot, rows);
  if (two)
    vblur2<K, false>(rows, g, win, len, P, st0, st1, P);
  else
    vblur<K>(rows, g, win, 0, win - 1, len, P, st0, P);
}



// sum += the first `cols` values of row, in kLanes partial sums (as add_row_sums).
template <typename A>
FASTIQA_INLINE void add_row_sum(const A* row, int64_t cols, double& sum) {
  A ls[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= cols; j += kLanes) {
#pragma omp simd
    for (int l = 0; l < kLanes; ++l) ls[l] += row[j + l];
  }
  for (int l = 0; j < cols; ++j, ++l) ls[l] += row[j];
  for (int l = 0; l < kLanes; ++l) sum += ls[l];
}

// Adds the first `cols` values of S.srow / S.csrow to the band's sums, in kLanes partial sums.
template <typename A>
FASTIQA_INLINE void add_row_sums(const Scratch<A>& S, int64_t cols, double& sum_s, double& sum_cs) {
  A ls[kLanes] = {}, lc[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= cols; j += kLanes) {
#pragma omp simd
    for (int l = 0; l < kLanes; ++l) {
      ls[l] += S.srow[j + l];
      lc[l] += S.csrow[j + l];
    }
  }
  for (int l = 0; j < cols; ++j, ++l) {
    ls[l] += S.srow[j];
    lc[l] += S.csrow[j];
  }
  // in locals: sum_s and sum_cs may alias for the compiler, which then chained every add
  // through memory (store-forwarding latency, ~8% of the gradient path's samples)
  double s = sum_s, cs = sum_cs;
  for (int l = 0; l < kLanes; ++l) {
    s += ls[l];
    cs += lc[l];
  }
  sum_s = s;
  sum_cs = cs;
}

// Forward without a gradient: output rows own_a .. own_b - 1 of plane (n, c) in column
// strips of J.SW output columns, so that a strip's ring of horizontal blurs (win x stats_of rows
// of J.PS) stays in L1: the vertical blur is bound by its loads, and the ring of a whole
// row is 176 KiB for a 504-pixel float64 row. A strip gathers its SW + win - 1 padded
// columns (the halo is gathered again, never blurred again). Sums in strip, then row order.
// K: the blurred quantities (stats_of, or 5 with the components); comp_sums: the sums of l, c, s
// (J.comp).
template <typename T, typename A, int K, bool LUMA = false>
void values_band(const Job<T, A>& J, int64_t n, int64_t c, int64_t own_a, int64_t own_b, Scratch<A>& S,
                 double& sum_s, double& sum_cs, double* comp_sums = nullptr) {
  if (own_b <= own_a) return;  // a band may own no output row (valid padding)
  const int win = J.wh, ww = J.ww;  // vertical taps (the ring), horizontal taps
  const int64_t PS = J.PS, slot = K * PS;
  for (int64_t c0 = 0; c0 < J.Wo; c0 += J.SW) {
    const int64_t cols = std::min(J.SW, J.Wo - c0);  // output columns of this strip
    const int64_t lw = round_up(cols, kLanes);
    for (int64_t u = own_a; u < own_b + win - 1; ++u) {
      const int64_t s = source_index(u, J.H, J.offh, J.padding);
      A* h = S.ring + ((u - own_a) % (win + 1)) * slot;
      if (!LUMA && u + kPrefetchRows < own_b + win - 1)
        prefetch_cols(J, n, c, source_index(u + kPrefetchRows, J.H, J.offh, J.padding), c0, cols + ww - 1);
      if (s < 0) {
        std::fill(h, h + slot, A(0));
      } else {
        if constexpr (LUMA) {  // valid padding: padded column c0 + t is source column c0 + t
          static_assert(std::is_same_v<A, double>, "the Y channel is computed in float64");
          luma_row_any<T>(J.x.row(n, 0, s) + c0 * J.x.sw, J.x.sc, J.x.sw, cols + ww - 1, J.ydiv_x, J.yoff,
                          S.rin[0]);
          luma_row_any<T>(J.y.row(n, 0, s) + c0 * J.y.sw, J.y.sc, J.y.sw, cols + ww - 1, J.ydiv_y, J.yoff,
                          S.rin[1]);
          std::fill(S.rin[0] + cols + ww - 1, S.rin[0] + lw + ww, A(0));
          std::fill(S.rin[1] + cols + ww - 1, S.rin[1] + lw + ww, A(0));
          // the MSE takes each pixel once: the strip's own columns (the last strip also the
          // ww - 1 after Wo), the band's own rows (the band ending at Ho also the rows after)
          if (u < own_b || own_b == J.Ho) {
            const int64_t n_own = c0 + cols == J.Wo ? cols + ww - 1 : cols;
            add_sq_diffs(S.rin[0], S.rin[1], n_own, J.sq_lanes + (n * J.H + s) * kLanes);
          }
        } else {
          gather_cols(J.x.row(n, c, s), J.x.sw, J, c0, cols + ww - 1, S.rin[0], lw + ww);
          gather_cols(J.y.row(n, c, s), J.y.sw, J, c0, cols + ww - 1, S.rin[1], lw + ww);
        }
        row_products<K>(S.rin, lw + ww);
        hblur_stats<K>(S.rin, J.gw, ww, lw, PS, h);
      }
      if (u < own_a + win - 1) continue;
      const int due = rows_due(u - win + 1, own_a, own_b);
      if (due == 0) continue;
      const int64_t p0 = u - win + 2 - due;
      ring_stats<K>(S.ring, p0 - own_a, win, due == 2, slot, J.gh, lw, PS, S.st, S.st + slot);
      for (int64_t p = p0; p <= u - win + 1; ++p) {
        const A* st = S.st + (p - p0) * slot;
        if (!LUMA && J.comp) {
#pragma omp simd
          for (int64_t j = 0; j < lw; ++j) {
            A mx, my, exx, eyy, exy, sv, cv, lv, kv, tv;
            stats_at<K>(st, PS, j, mx, my, exx, eyy, exy);
            ssim_components(mx, my, exx, eyy, exy, J.c1, J.c2, sv, cv, lv, kv, tv);
            S.srow[j] = sv;
            S.csrow[j] = cv;
            S.lrow[j] = lv;
            S.krow[j] = kv;
            S.trow[j] = tv;
          }
        } else {
#pragma omp simd
          for (int64_t j = 0; j < lw; ++j) {
            A mx, my, exx, eyy, exy, sv, cv;
            stats_at<K>(st, PS, j, mx, my, exx, eyy, exy);
            ssim_value(mx, my, exx, eyy, exy, J.c1, J.c2, sv, cv);
            S.srow[j] = sv;
            S.csrow[j] = cv;
          }
      }
      if (J.values) add_row_sums(S, cols, sum_s, sum_cs);
      if constexpr (!LUMA) {
        if (J.comp && J.values) {
          add_row_sum(S.lrow, cols, comp_sums[0]);
          add_row_sum(S.krow, cols, comp_sums[1]);
          add_row_sum(S.trow, cols, comp_sums[2]);
        }
        if (J.want_map && J.comp) {
          const A* rows[kNumComponentMaps] = {S.srow, S.lrow, S.krow, S.trow};
          for (int k = 0; k < kNumComponentMaps; ++k)
            store_row(J.mapk[k].row(n, c, p) + c0 * J.mapk[k].sw, J.mapk[k].sw, cols, rows[k]);
        } else if (J.want_map) {
          store_row(J.map.row(n, c, p) + c0 * J.map.sw, J.map.sw, cols, S.srow);
        }
      }
      }
    }
  }
}

// Output row p of strip c0 (cols columns, lw with the padding lanes) from its statistics st: the
// value (sums and map of the owned rows) and the coefficient rows, into the ring slot of p; the
// ones not needed go to S.junk (a row each).
template <int NQ, typename T, typename A, int K>
FASTIQA_INLINE void grad_row(const Job<T, A>& J, int64_t n, int64_t c, int64_t p, int64_t c0, int64_t cols,
                             int64_t lw, const A* st, int64_t own_a, int64_t own_b, A ws, A wc, const A* wcomp,
                             Scratch<A>& S, double& sum_s, double& sum_cs) {
  const int64_t PS = J.PS;
  // the map weights of this row's columns: dmap (backward of the map) plus the plane's mean weight
  if (J.dmap.p) {
    load_row(J.dmap.row(n, c, p) + c0 * J.dmap.sw, J.dmap.sw, cols, S.w);
    for (int64_t j = 0; j < cols; ++j) S.w[j] += ws;
  } else {
    std::fill(S.w, S.w + cols, ws);
  }
  std::fill(S.w + cols, S.w + lw, A(0));
  A* m = S.mring + (p % (J.wh + 1)) * NQ * PS;  // the ring holds wh + 1 rows (vertical_adjoint2)
  A* d[5];
  for (int k = 0; k < 5; ++k) d[k] = J.mrow[k] >= 0 ? m + J.mrow[k] * PS : S.junk + k * PS;
  A *__restrict__ d0 = d[0], *__restrict__ d1 = d[1], *__restrict__ d2 = d[2], *__restrict__ d3 = d[3],
    *__restrict__ d4 = d[4];
  if (J.comp) {  // the components' gradient (ssim_components_grad)
    A* wrow[3] = {S.wl, S.wk, S.wt};
    for (int k = 0; k < 3; ++k) {
      if (J.dmapk[k + 1].p) {
        load_row(J.dmapk[k + 1].row(n, c, p) + c0 * J.dmapk[k + 1].sw, J.dmapk[k + 1].sw, cols, wrow[k]);
        for (int64_t j = 0; j < cols; ++j) wrow[k][j] += wcomp[k];
      } else {
        std::fill(wrow[k], wrow[k] + cols, wcomp[k]);
      }
      std::fill(wrow[k] + cols, wrow[k] + lw, A(0));
    }
#pragma omp simd
    for (int64_t j = 0; j < lw; ++j) {
      A a0, a1, bx, by, cc;
      const A wcl = j < cols ? wc : A(0);
      A mx, my, exx, eyy, exy;
      stats_at<K>(st, PS, j, mx, my, exx, eyy, exy);
      ssim_components_grad(mx, my, exx, eyy, exy, J.c1, J.c2, S.w[j], wcl, S.wl[j], S.wk[j], S.wt[j], a0, a1, bx, by,
                           cc);
      const bool real = j < cols;
      d0[j] = real ? a0 : A(0);
      d1[j] = real ? a1 : A(0);
      d2[j] = real ? bx : A(0);
      d3[j] = real ? by : A(0);
      d4[j] = real ? cc : A(0);
    }
    return;
  }
#pragma omp simd
  for (int64_t j = 0; j < lw; ++j) {
    A sv, cv, a0, a1, b, cc;
    const A wcl = j < cols ? wc : A(0);
    A mx, my, exx, eyy, exy;
    stats_at<K>(st, PS, j, mx, my, exx, eyy, exy);
    ssim_value_grad(mx, my, exx, eyy, exy, J.c1, J.c2, S.w[j], wcl, sv, cv, a0, a1, b, cc);
    S.srow[j] = sv;
    S.csrow[j] = cv;
    // lanes past the strip's columns (j >= cols) may hold inf/NaN (k1 = 0: 0/0): they must
    // never reach the adjoint blur that spreads them onto real columns
    const bool real = j < cols;
    d0[j] = real ? a0 : A(0);
    d1[j] = real ? a1 : A(0);
    d2[j] = real ? b : A(0);
    d4[j] = real ? cc : A(0);
  }
  const bool owned = p >= own_a && p < own_b;
  if (owned && J.values) add_row_sums(S, cols, sum_s, sum_cs);
  if (owned && J.want_map) store_row(J.map.row(n, c, p) + c0 * J.map.sw, J.map.sw, cols, S.srow);
}

// Forward with gradient, and backward, of one band: output rows pa .. pb - 1 (the band's own rows
// and the rows of halo whose windows reach into them) of plane (n, c), in column strips of J.SW
// output columns, so that a strip's rings (horizontal blurs: win x K rows; coefficient rows:
// win x nq rows, of J.PS) stay in L1. Output rows in pairs where they can (rows_due): the
// statistics (ring_stats), then per row the value and the nq coefficient rows (grad_row); each
// padded row, once complete, adds its vertical adjoint into the band's accumulator rows
// (vertical_adjoint, vertical_adjoint2 for a pair). Sums of the owned rows in strip, then row order.
template <int NQ, typename T, typename A, int K>
void grad_strips(const Job<T, A>& J, int64_t n, int64_t c, int64_t pa, int64_t pb, int64_t own_a, int64_t own_b,
                 int64_t s_a, int64_t s_b, A ws, A wc, const A* wcomp, Scratch<A>& S, double& sum_s,
                 double& sum_cs) {
  const int win = J.wh, ww = J.ww;  // vertical taps (the rings), horizontal taps
  const int64_t PS = J.PS, slot = K * PS;
  for (int64_t c0 = 0; c0 < J.Wo; c0 += J.SW) {
    const int64_t cols = std::min(J.SW, J.Wo - c0);  // output columns of this strip
    const int64_t lw = round_up(cols, kLanes);
    for (int64_t u = pa; u < pb + win - 1; ++u) {
      const int64_t s = source_index(u, J.H, J.offh, J.padding);
      A* h = S.ring + ((u - pa) % (win + 1)) * slot;
      if (u + kPrefetchRows < pb + win - 1)
        prefetch_cols(J, n, c, source_index(u + kPrefetchRows, J.H, J.offh, J.padding), c0, cols + ww - 1);
      if (s < 0) {
        std::fill(h, h + slot, A(0));
      } else {
        gather_cols(J.x.row(n, c, s), J.x.sw, J, c0, cols + ww - 1, S.rin[0], lw + ww);
        gather_cols(J.y.row(n, c, s), J.y.sw, J, c0, cols + ww - 1, S.rin[1], lw + ww);
        row_products<K>(S.rin, lw + ww);
        hblur_stats<K>(S.rin, J.gw, ww, lw, PS, h);
      }
      if (u < pa + win - 1) continue;
      const int due = rows_due(u - win + 1, pa, pb);
      if (due == 0) continue;
      const int64_t p0 = u - win + 2 - due;
      ring_stats<K>(S.ring, p0 - pa, win, due == 2, slot, J.gh, lw, PS, S.st, S.st + slot);
      for (int64_t p = p0; p < p0 + due; ++p) grad_row<NQ, T, A, K>(J, n, c, p, c0, cols, lw, S.st + (p - p0) * slot,
                                                                     own_a, own_b, ws, wc, wcomp, S, sum_s, sum_cs);
      // padded rows p0 .. p0 + due - 1: no later output row reads them
      if (due == 2)
        vertical_adjoint2<NQ>(J, S, p0 + 1, pa, p0 + 1, s_a, s_b, c0, lw);
      else
        vertical_adjoint<NQ>(J, S, p0, pa, p0, s_a, s_b, c0, lw);
    }
    for (int64_t u = pb; u < pb + win - 1; ++u) vertical_adjoint<NQ>(J, S, u, pa, pb - 1, s_a, s_b, c0, lw);
  }
}

// The gradients of source row s of plane (n, c) from the band's accumulator rows v (nq rows of
// J.VP: the vertical adjoints): the horizontal adjoint, the column fold (zero padding drops,
// reflect padding adds onto the mirrored column), then dF/dx = a + 2 x b + y c (likewise y).
template <int NQ, typename T, typename A>
FASTIQA_INLINE void combine_row(const Job<T, A>& J, Scratch<A>& S, int64_t n, int64_t c, int64_t s, const A* v,
                                A wl) {
  const int64_t W = J.W, LWp = J.LWp;
  hblur_adj<NQ>(v, J.VP, J.gw, J.ww, LWp, S.t);
  if (J.padding == kSameReflect) {
    for (int q = 0; q < NQ; ++q) {
      A* tq = S.t + q * LWp;
      for (int64_t j = 0; j < J.offw; ++j) tq[J.offw + J.colsrc[j]] += tq[j];
      for (int64_t j = J.offw + W; j < J.Wp; ++j) tq[J.offw + J.colsrc[j]] += tq[j];
    }
  }
  const A* xr = S.xr;
  const A* yr = S.yr;
  for (int g = 0; g < 2; ++g) {
    const View<T>& out = g == 0 ? J.gx : J.gy;
    if (!out.p) continue;
    const int* r = g == 0 ? J.gxr : J.gyr;
    const A* ta = S.t + r[0] * LWp + J.offw;
    const A* tb = S.t + r[1] * LWp + J.offw;
    const A* tc = S.t + r[2] * LWp + J.offw;
    const A* own = g == 0 ? xr : yr;
    const A* other = g == 0 ? yr : xr;
    const A sgn = g == 0 ? wl : -wl;  // the L1 term's weight: d|x - y|/dx = sign(x - y) = -d/dy
    A* gr = S.srow;                   // row >= W (Scratch::init)
#pragma omp simd
    for (int64_t j = 0; j < W; ++j) {
      const A d = xr[j] - yr[j];
      const A sg = sgn * (static_cast<A>(d > A(0)) - static_cast<A>(d < A(0)));
      gr[j] = ta[j] + A(2) * own[j] * tb[j] + other[j] * tc[j] + sg;
    }
    store_row(out.row(n, c, s), out.sw, W, gr);
  }
}

// One band of one plane. sums: S, cs, |x-y| (and l, c, s with J.comp) sums of the band (owned
// rows only). K: the blurred quantities (stats_of, or 5 with the components); NQ: J.nq.
template <typename T, typename A, int K, int NQ>
void run_band(const Job<T, A>& J, int64_t plane, int64_t band, Scratch<A>& S, double* sums) {
  const int64_t n = plane / J.C, c = plane % J.C;
  const int64_t W = J.W;
  const int64_t s_a = band * J.band, s_b = std::min(J.H, s_a + J.band);
  const int64_t own_a = s_a, own_b = std::min(s_b, J.Ho);
  const A* wt = J.weights ? J.weights + plane * J.nw : nullptr;
  const A ws = wt ? wt[0] / static_cast<A>(J.Ho * J.Wo) : A(0);
  const A wc = wt ? wt[1] / static_cast<A>(J.Ho * J.Wo) : A(0);
  const A wl = wt ? wt[2] / static_cast<A>(J.H * J.W) : A(0);
  // the components' plane weights on l, c, s
  A wcomp[3] = {A(0), A(0), A(0)};
  if (wt && J.comp)
    for (int k = 0; k < 3; ++k) wcomp[k] = wt[3 + k] / static_cast<A>(J.Ho * J.Wo);
  double sum_s = 0, sum_cs = 0, sum_l1 = 0, comp_sums[3] = {0, 0, 0};

  if (!J.grad) {
    values_band<T, A, K>(J, n, c, own_a, own_b, S, sum_s, sum_cs, comp_sums);
  } else {
    // the output rows whose windows reach the band's source rows (a band may own no output row)
    const int64_t pa = std::max<int64_t>(0, s_a + J.offh - (J.wh - 1)), pb = std::min(J.Ho, s_b + J.offh);
    std::fill(S.vacc, S.vacc + (s_b - s_a) * NQ * J.VP, A(0));
    if (pb > pa) grad_strips<NQ, T, A, K>(J, n, c, pa, pb, own_a, own_b, s_a, s_b, ws, wc, wcomp, S, sum_s, sum_cs);
  }
  if (J.l1 || J.grad) {
    for (int64_t s = s_a; s < s_b; ++s) {
      load_row(J.x.row(n, c, s), J.x.sw, W, S.xr);
      load_row(J.y.row(n, c, s), J.y.sw, W, S.yr);
      if (J.l1 && J.values) {
        A l1[kLanes] = {};
        int64_t j = 0;
        for (; j + kLanes <= W; j += kLanes) {
#pragma omp simd
          for (int l = 0; l < kLanes; ++l) {
            const A d = S.xr[j + l] - S.yr[j + l];
            l1[l] += d < A(0) ? -d : d;
          }
        }
        for (int l = 0; j < W; ++j, ++l) {
          const A d = S.xr[j] - S.yr[j];
          l1[l] += d < A(0) ? -d : d;
        }
        for (int l = 0; l < kLanes; ++l) sum_l1 += l1[l];
      }
      if (J.grad) combine_row<NQ>(J, S, n, c, s, S.vacc + (s - s_a) * NQ * J.VP, wl);
    }
  }
  sums[0] = sum_s;
  sums[1] = sum_cs;
  sums[2] = sum_l1;
  for (int k = 0; k < 3; ++k) sums[3 + k] = comp_sums[k];
}

#include "ssim_volume.h"

struct Geometry {
  int64_t N, C, H, W, Ho, Wo, offh, offw;
};

// x and the window as checked by host::check_ssim_inputs
Geometry geometry(const at::Tensor& x, const host::SsimWindow& win, int64_t padding) {
  Geometry g{x.size(0), x.size(1), x.size(2), x.size(3), 0, 0, 0, 0};
  if (padding == kValid) {
    g.Ho = g.H - win.size[0] + 1;
    g.Wo = g.W - win.size[1] + 1;
  } else {
    g.Ho = g.H;
    g.Wo = g.W;
    g.offh = win.size[0] / 2;
    g.offw = win.size[1] / 2;
  }
  return g;
}

// geo: the caller's geometry(x, win, padding), computed once per call
template <typename T, typename A>
void setup_job(Job<T, A>& J, const at::Tensor& x, const at::Tensor& y, const Geometry& geo,
               const host::SsimWindow& win, double c1, double c2, int64_t padding) {
  J.x = View<const T>(x);
  J.y = View<const T>(y);
  J.C = geo.C; J.H = geo.H; J.W = geo.W; J.Ho = geo.Ho; J.Wo = geo.Wo; J.offh = geo.offh; J.offw = geo.offw;
  J.wh = static_cast<int>(win.size[0]);
  J.ww = static_cast<int>(win.size[1]);
  J.padding = static_cast<int>(padding);
  J.Wp = J.Wo + J.ww - 1;
  J.LW = round_up(std::max<int64_t>(J.Wo, 1), kLanes);
  J.LWp = round_up(J.Wp, kLanes);
  double g[kMaxWin];
  gaussian_window(J.wh, win.sigma[0], g);
  for (int k = 0; k < J.wh; ++k) J.gh[k] = static_cast<A>(g[k]);
  gaussian_window(J.ww, win.sigma[1], g);
  for (int k = 0; k < J.ww; ++k) J.gw[k] = static_cast<A>(g[k]);
  J.c1 = static_cast<A>(c1);
  J.c2 = static_cast<A>(c2);
  J.colsrc.resize(J.Wp);
  for (int64_t j = 0; j < J.Wp; ++j) J.colsrc[j] = source_index(j, J.W, J.offw, J.padding);
}

// Sets the band height (see kBand), the column strips and the gradient's coefficient maps once
// J.grad, J.comp, J.gx and J.gy are known.
template <typename T, typename A> void set_bands(Job<T, A>& J, int64_t planes) {
  int64_t band = kBand;
  if (!J.grad) {
    band = kBandValues;
    while (band > kBand && planes * ((J.H + band - 1) / band) < kMinTasks) band /= 2;
  }
  J.band = band;
  J.nbands = (J.H + band - 1) / band;
  // rows per strip column kept in L1: the ring of horizontal blurs (wh x the blurred quantities),
  // with a gradient also the ring of coefficient rows (wh x nq)
  const int K = J.comp ? kMaxStats : stats_of<A>();
  int64_t rows = static_cast<int64_t>(J.wh + 1) * K;
  if (J.grad) {
    // the coefficient maps dF/dx and dF/dy need (ssim_math.h): a0, bx, c and a1, by, c (bx = by
    // without the components)
    const bool gx = J.gx.p != nullptr, gy = J.gy.p != nullptr;
    for (int& r : J.mrow) r = -1;
    int q = 0;
    if (gx) J.mrow[0] = q++;
    if (gy) J.mrow[1] = q++;
    if (gx || !J.comp) J.mrow[2] = q++;
    if (gy && J.comp) J.mrow[3] = q++;
    J.mrow[4] = q++;
    J.nq = q;
    const int bx = J.mrow[2], by = J.comp ? J.mrow[3] : J.mrow[2];
    J.gxr[0] = J.mrow[0]; J.gxr[1] = bx; J.gxr[2] = J.mrow[4];
    J.gyr[0] = J.mrow[1]; J.gyr[1] = by; J.gyr[2] = J.mrow[4];
    rows += static_cast<int64_t>(J.wh + 1) * J.nq;
    J.VP = row_pitch<A>(J.LWp + J.ww);  // an output row with ww - 1 zeros on each side
    // a taller band recomputes fewer halo rows (win - 1 per band), while its accumulator rows stay
    // in L2 and the planes still give kMinTasks bands
    const int64_t tall = 2 * kBand;
    if (tall * J.nq * J.VP * static_cast<int64_t>(sizeof(A)) <= kBandGradBytes &&
        planes * ((J.H + tall - 1) / tall) >= kMinTasks) {
      J.band = tall;
      J.nbands = (J.H + tall - 1) / tall;
    }
  }
  // within 24 KiB of the (at least) 32 KiB L1
  const int64_t fit = 24576 / (rows * static_cast<int64_t>(sizeof(A)));
  J.SW = std::min(J.LW, std::max<int64_t>(2 * kLanes, fit / kLanes * kLanes));
  J.PS = row_pitch<A>(round_up(J.SW, kLanes));
}

// Runs every band of every plane; returns per-plane sums (planes, 6) in double: S, cs, |x-y|
// and (J.comp) l, c, s.
template <typename T, typename A>
std::vector<double> run_all(const Job<T, A>& J, int64_t planes) {
  constexpr int NS = kNumComponentStats;
  const int64_t tasks = planes * J.nbands;
  std::vector<double> band_sums(tasks * NS, 0.0);
  at::parallel_for(0, tasks, 1, [&](int64_t tb, int64_t te) {
    Scratch<A> S;
    S.init(J);
    for (int64_t t = tb; t < te; ++t) {
      const int64_t plane = t / J.nbands, band = t % J.nbands;
      double* sums = &band_sums[NS * t];
      // float64 blurs 5 quantities with the components (they need sigma_x^2 and sigma_y^2 apart)
      if (J.comp) {
        if (J.nq == 5)
          run_band<T, A, kMaxStats, 5>(J, plane, band, S, sums);
        else
          run_band<T, A, kMaxStats, 3>(J, plane, band, S, sums);
      } else if (J.nq == 4) {
        run_band<T, A, stats_of<A>(), 4>(J, plane, band, S, sums);
      } else {
        run_band<T, A, stats_of<A>(), 3>(J, plane, band, S, sums);  // also without a gradient (nq = 0)
      }
    }
  });
  std::vector<double> plane_sums(planes * NS, 0.0);
  for (int64_t t = 0; t < tasks; ++t)
    for (int q = 0; q < NS; ++q) plane_sums[NS * (t / J.nbands) + q] += band_sums[NS * t + q];
  return plane_sums;
}

// Volumes (N, C, D, H, W): the plane kernels of csrc/cpu/ssim_volume.h (maps contiguous; the
// components' (4 N, C, Do, Ho, Wo) viewed as (4, N, C, Do, Ho, Wo)).
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> volume_planes_fwd(
    const at::Tensor& x, const at::Tensor& y, const host::SsimWindow& win, double c1, double c2, int64_t padding,
    bool want_map, bool want_l1, bool components, const std::optional<at::Tensor>& weights, bool need_gx,
    bool need_gy) {
  const auto acc = host::acc_dtype(x);
  const bool grad = weights.has_value() && (need_gx || need_gy);
  TORCH_CHECK(!(grad && components), "fastiqa_C::ssim: the components have no forward gradient (ssim_bwd)");
  if (grad) TORCH_CHECK(!host::check_ssim_weights(*weights, x), "fastiqa_C::ssim: (N, C, 3) weights expected");
  const int64_t N = x.size(0), C = x.size(1);
  const int64_t nstats = components ? kNumComponentStats : kNumPlaneStats;
  const int64_t nmaps = components ? kNumComponentMaps : 1;
  at::Tensor planes = at::empty({N, C, nstats}, x.options().dtype(acc));
  at::Tensor map = at::empty({0}, x.options());
  at::Tensor gx = grad && need_gx ? pooled_empty_like(x) : at::empty({0}, x.options());
  at::Tensor gy = grad && need_gy ? pooled_empty_like(x) : at::empty({0}, x.options());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "ssim_fwd", [&] {
    using A = typename AccOf<scalar_t>::type;
    VolJob<scalar_t, A> J;
    setup_volume(J, x, y, win, c1, c2, padding);
    J.comp = components;
    if (want_map) {
      map = at::empty({nmaps * N, C, J.Do, J.Ho, J.Wo}, x.options());
      if (components)
        for (int k = 0; k < kNumComponentMaps; ++k) J.mapk[k] = View5<scalar_t>(map.narrow(0, k * N, N));
      else
        J.map = View5<scalar_t>(map);
    }
    J.l1 = want_l1;
    J.want_map = want_map;
    J.grad = grad;
    if (grad) {
      J.weights = weights->data_ptr<A>();
      if (need_gx) J.gx = View5<scalar_t>(gx);
      if (need_gy) J.gy = View5<scalar_t>(gy);
    }
    const std::vector<double> sums = run_volume(J, N * C);
    A* out = planes.data_ptr<A>();
    const double n_out = static_cast<double>(J.Do * J.Ho * J.Wo), n_in = static_cast<double>(J.D * J.H * J.W);
    constexpr int NS = kNumComponentStats;
    for (int64_t pl = 0; pl < N * C; ++pl)
      for (int q = 0; q < nstats; ++q)
        out[nstats * pl + q] = static_cast<A>(sums[NS * pl + q] / (q == 2 ? n_in : n_out));
  });
  if (want_map && components) map = map.view({kNumComponentMaps, N, C, map.size(2), map.size(3), map.size(4)});
  return {planes, map, gx, gy};
}

std::tuple<at::Tensor, at::Tensor> volume_planes_bwd(const at::Tensor& x, const at::Tensor& y,
                                                     const host::SsimWindow& win, double c1, double c2,
                                                     int64_t padding, const at::Tensor& weights,
                                                     const std::optional<at::Tensor>& dmap, bool need_gx,
                                                     bool need_gy) {
  const bool comp = host::check_ssim_weights(weights, x);
  at::Tensor gx = need_gx ? pooled_empty_like(x) : at::empty({0}, x.options());
  at::Tensor gy = need_gy ? pooled_empty_like(x) : at::empty({0}, x.options());
  if (!need_gx && !need_gy) return {gx, gy};
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "ssim_bwd", [&] {
    using A = typename AccOf<scalar_t>::type;
    VolJob<scalar_t, A> J;
    setup_volume(J, x, y, win, c1, c2, padding);
    host::check_ssim_dmap(dmap, x, {J.Do, J.Ho, J.Wo}, comp);
    J.grad = true;
    J.weights = weights.data_ptr<A>();
    if (comp) {  // 5 coefficient maps (csrc/cpu/ssim_volume.h), map weights on S, l, c, s
      J.comp = true;
      J.nw = kNumComponentStats;
      J.nq = 5;
      if (dmap.has_value())
        for (int k = 0; k < kNumComponentMaps; ++k) J.dmapk[k] = View5<const scalar_t>(dmap->select(0, k));
    } else if (dmap.has_value()) {
      J.dmap = View5<const scalar_t>(*dmap);
    }
    if (need_gx) J.gx = View5<scalar_t>(gx);
    if (need_gy) J.gy = View5<scalar_t>(gy);
    run_volume(J, x.size(0) * x.size(1));
  });
  return {gx, gy};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> ssim_planes_fwd(
    const at::Tensor& x, const at::Tensor& y, const host::SsimWindow& win, double c1, double c2,
    int64_t padding, bool want_map, bool want_l1, bool components, const std::optional<at::Tensor>& weights,
    bool need_gx, bool need_gy) {
  host::check_ssim_inputs(x, y, win, padding);
  if (x.dim() == 5)
    return volume_planes_fwd(x, y, win, c1, c2, padding, want_map, want_l1, components, weights, need_gx, need_gy);
  const Geometry geo = geometry(x, win, padding);
  const auto acc = host::acc_dtype(x);
  const bool grad = weights.has_value() && (need_gx || need_gy);
  TORCH_CHECK(!(grad && components), "fastiqa_C::ssim: the components have no forward gradient (ssim_bwd)");
  if (grad) TORCH_CHECK(!host::check_ssim_weights(*weights, x), "fastiqa_C::ssim: (N, C, 3) weights expected");
  at::Tensor w = grad ? *weights : at::Tensor();
  const int64_t nstats = components ? kNumComponentStats : kNumPlaneStats;
  at::Tensor planes = at::empty({geo.N, geo.C, nstats}, x.options().dtype(acc));
  // the components' maps S, l, c, s: (4 N, C, Ho, Wo) in x's memory format, viewed as (4, N, C, Ho, Wo)
  const int64_t nmaps = components ? kNumComponentMaps : 1;
  at::Tensor map = want_map ? at::empty({nmaps * geo.N, geo.C, geo.Ho, geo.Wo}, x.options(), x.suggest_memory_format())
                            : at::empty({0}, x.options());
  at::Tensor gx = grad && need_gx ? pooled_empty_like(x) : at::empty({0}, x.options());
  at::Tensor gy = grad && need_gy ? pooled_empty_like(x) : at::empty({0}, x.options());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "ssim_fwd", [&] {
    using A = typename AccOf<scalar_t>::type;
    Job<scalar_t, A> J;
    setup_job(J, x, y, geo, win, c1, c2, padding);
    J.values = true;
    J.l1 = want_l1;
    J.want_map = want_map;
    J.grad = grad;
    J.comp = components;
    if (want_map && components) {
      for (int k = 0; k < kNumComponentMaps; ++k) J.mapk[k] = View<scalar_t>(map.narrow(0, k * geo.N, geo.N));
    } else if (want_map) {
      J.map = View<scalar_t>(map);
    }
    if (grad) {
      J.weights = w.data_ptr<A>();
      if (need_gx) J.gx = View<scalar_t>(gx);
      if (need_gy) J.gy = View<scalar_t>(gy);
    }
    set_bands(J, geo.N * geo.C);
    const std::vector<double> sums = run_all(J, geo.N * geo.C);
    A* out = planes.data_ptr<A>();
    const double n_out = static_cast<double>(geo.Ho * geo.Wo), n_in = static_cast<double>(geo.H * geo.W);
    constexpr int NS = kNumComponentStats;
    for (int64_t pl = 0; pl < geo.N * geo.C; ++pl) {
      for (int q = 0; q < nstats; ++q)
        out[nstats * pl + q] = static_cast<A>(sums[NS * pl + q] / (q == 2 ? n_in : n_out));
    }
  });
  if (want_map && components) map = map.view({kNumComponentMaps, geo.N, geo.C, geo.Ho, geo.Wo});
  return {planes, map, gx, gy};
}

std::tuple<at::Tensor, at::Tensor> ssim_planes_bwd(const at::Tensor& x, const at::Tensor& y,
                                            const host::SsimWindow& win, double c1, double c2, int64_t padding,
                                            const at::Tensor& weights,
                                            const std::optional<at::Tensor>& dmap, bool need_gx,
                                            bool need_gy) {
  host::check_ssim_inputs(x, y, win, padding);
  if (x.dim() == 5) return volume_planes_bwd(x, y, win, c1, c2, padding, weights, dmap, need_gx, need_gy);
  const Geometry geo = geometry(x, win, padding);
  const bool comp = host::check_ssim_weights(weights, x);
  host::check_ssim_dmap(dmap, x, {geo.Ho, geo.Wo}, comp);
  const at::Tensor& w = weights;
  at::Tensor gx = need_gx ? pooled_empty_like(x) : at::empty({0}, x.options());
  at::Tensor gy = need_gy ? pooled_empty_like(x) : at::empty({0}, x.options());
  if (!need_gx && !need_gy) return {gx, gy};
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "ssim_bwd", [&] {
    using A = typename AccOf<scalar_t>::type;
    Job<scalar_t, A> J;
    setup_job(J, x, y, geo, win, c1, c2, padding);
    J.grad = true;
    J.weights = w.data_ptr<A>();
    if (need_gx) J.gx = View<scalar_t>(gx);
    if (need_gy) J.gy = View<scalar_t>(gy);
    if (!comp) {
      if (dmap.has_value()) J.dmap = View<const scalar_t>(*dmap);
    } else {
      // the components: dF/dx and dF/dy differ in their variance coefficient (dbx, dby): 5
      // coefficient maps for both (csrc/common/ssim_math.h)
      J.comp = true;
      J.nw = kNumComponentStats;
      if (dmap.has_value()) {
        J.dmap = View<const scalar_t>(dmap->select(0, 0));
        for (int k = 0; k < kNumComponentMaps; ++k) J.dmapk[k] = View<const scalar_t>(dmap->select(0, k));
      }
    }
    set_bands(J, geo.N * geo.C);
    run_all(J, geo.N * geo.C);
  });
  return {gx, gy};
}

// fastiqa_C::ssim_y: per-image mean SSIM (valid window) and MSE of the BT.601 Y channel of
// two decoded RGB images (samples / div_x, / div_y), cropped by `crop`, float64: the rows
// are gathered as Y (luma_row) straight from the samples, so no Y plane is ever written.
// Bands and strips as ssim_fwd without a gradient: the SSIM is bitwise ssim_fwd's on the
// Y planes (y_plane); the MSE is bitwise y_mse's (add_sq_diffs).
template <typename T>
void ssim_y_run(const at::Tensor& xc, const at::Tensor& yc, int64_t win, double sigma, double c1, double c2,
                double div_x, double div_y, double off, double* out, double* mse) {
  Job<T, double> J;
  const host::SsimWindow w = host::square_window(win, sigma);
  setup_job(J, xc, yc, geometry(xc, w, kValid), w, c1, c2, kValid);
  J.C = 1;  // one Y plane per image; J.x.sc steps between the R, G, B samples
  J.values = true;
  J.ydiv_x = div_x;
  J.ydiv_y = div_y;
  J.yoff = off;
  const int64_t N = xc.size(0);
  std::vector<double> sq_lanes(N * J.H * kLanes, 0.0);
  J.sq_lanes = sq_lanes.data();
  set_bands(J, N);
  const int64_t tasks = N * J.nbands;
  std::vector<double> band_sums(tasks, 0.0);
  at::parallel_for(0, tasks, 1, [&](int64_t tb, int64_t te) {
    Scratch<double> S;
    S.init(J);
    for (int64_t t = tb; t < te; ++t) {
      const int64_t own_a = (t % J.nbands) * J.band, own_b = std::min(J.Ho, own_a + J.band);
      double sum_cs = 0;
      values_band<T, double, stats_of<double>(), true>(J, t / J.nbands, 0, own_a, own_b, S, band_sums[t], sum_cs);
    }
  });
  for (int64_t n = 0; n < N; ++n) {
    double s = 0;
    for (int64_t b = 0; b < J.nbands; ++b) s += band_sums[n * J.nbands + b];
    out[n] = s / static_cast<double>(J.Ho * J.Wo);
    double q = 0;
    for (int64_t u = 0; u < J.H; ++u) q += sum_lanes(J.sq_lanes + (n * J.H + u) * kLanes);
    mse[n] = q / static_cast<double>(J.H * J.W);
  }
}

std::tuple<at::Tensor, at::Tensor> ssim_y(const at::Tensor& x, const at::Tensor& y, double div_x, double div_y, double data_range,
                  int64_t crop, int64_t win, double sigma, double c1, double c2) {
  host::check_y_pair(x, y, div_x, div_y, data_range, crop);
  host::check_ssim_window(win, sigma);
  const int64_t H = x.size(2) - 2 * crop, W = x.size(3) - 2 * crop;
  TORCH_CHECK(x.numel() == 0 || (H >= win && W >= win), "fastiqa_C::ssim_y: the cropped images (", W, "x", H,
              ") are smaller than the window (", win, ")");
  at::Tensor out = at::empty({x.size(0)}, x.options().dtype(at::kDouble));
  at::Tensor mse = at::empty({x.size(0)}, x.options().dtype(at::kDouble));
  if (x.numel() == 0) return {out, mse};
  const at::Tensor xc = x.narrow(2, crop, H).narrow(3, crop, W), yc = y.narrow(2, crop, H).narrow(3, crop, W);
  const double off = ::fastiqa::psnr::kYOffset * data_range / 255.0;
  double *o = out.data_ptr<double>(), *m = mse.data_ptr<double>();
  FASTIQA_DISPATCH_SAMPLES(x.scalar_type(), "fastiqa_C::ssim_y",
                           [&] { ssim_y_run<scalar_t>(xc, yc, win, sigma, c1, c2, div_x, div_y, off, o, m); });
  return {out, mse};
}

}  // namespace
}  // namespace ssim_impl

void ssim_kernels(SsimKernels* t) {
  using namespace ssim_impl;
  t->planes_fwd = &ssim_planes_fwd;
  t->planes_bwd = &ssim_planes_bwd;
  t->y_values = &ssim_y;
}

}  // namespace FASTIQA_ISA_NS
}  // namespace cpu
}  // namespace fastiqa
FASTIQA_ISA_END
