// Banded CPU kernels of the masked SSIM on images (4-D), the structure of the unmasked fused
// kernel (csrc/cpu/ssim_impl.h) applied to the normalised convolutions. Included by
// csrc/cpu/ssim_masked.h inside its namespace (View, to_acc, ssim_math.h); volumes (5-D) keep the
// plane-buffer path there.
//
// Blurred quantities per pixel (K, blurred_of): m, m x, m y and, in float64, m (x^2 + y^2), m x y
// (5: SSIM and its gradient need E[x^2] and E[y^2] only as their sum, as in ssim_impl.h); in
// float32 m x^2, m y^2, m x y apart (6; ssim_impl.h's stats_of says why float32 keeps them apart).
//
// Work unit: a band of source rows of one (n, c) plane (bands of a fixed height: never from the
// thread count), in column strips of SW output columns so that the rings of horizontal blurs
// (and, for the gradient, of coefficient rows) stay in L1:
//   forward (fwd_band): every padded row of the strip is gathered (m, x, y; zero padding is a 0
//     of weight 1, reflect copies the mirrored pixel with its weight), its K products blurred
//     horizontally (symmetric taps folded) into a ring of wh + 1 rows; output rows are computed
//     in pairs by the vertical blur (each loaded row feeds both), then S (0 where W = 0), m_c S
//     and m_c (m at the window centre) summed per row in kLanes lanes, then in float64;
//   gradient (grad_band): the same statistics for the output rows whose windows reach the band,
//     then per output row the coefficient rows K_x, K_y, K_b, K_c (ssim_value_grad's dax, day,
//     db, dc divided by W; only those the asked gradients need) into a ring; a padded row, once
//     no later output row reads it, adds its vertical adjoint into the band's accumulator row of
//     its source row (zero padding drops it, reflect adds it onto the mirrored row); after the
//     strips each source row gets the transposed horizontal blur, the column fold, and
//       gx = m (K_x + 2 x K_b + y K_c + w_l sign(x - y))   (gy likewise)
//     written once.
// Sums are per band and added in band order: results do not depend on the thread count.
//
// The vertical blurs, the transposed horizontal blur, row_pitch and rows_due are csrc/cpu/blur_rows.h's,
// shared with csrc/cpu/ssim_impl.h; the horizontal blur of the masked products (mblur_h) and the
// vertical adjoints (vadjoint, vadjoint2) are this file's own.
#pragma once

namespace band {

// Band heights (source rows): see ssim_impl.h's kBand / kBandValues / kMinTasks / kBandGradBytes.
constexpr int64_t kBandGrad = 64;
constexpr int64_t kBandValues = 256;
constexpr int64_t kMinTasks = 4;
constexpr int64_t kBandGradBytes = 512 * 1024;
constexpr int kMaxK = 6;
constexpr int kNumCoefs = 4;  // K_x, K_y, K_b, K_c
// L1 bytes the strips' rings may fill (of at least 32 KiB)
constexpr int64_t kStripBytes = 24576;

template <typename A> constexpr int blurred_of() { return std::is_same_v<A, double> ? 5 : 6; }

FASTIQA_INLINE int64_t up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

template <typename T, typename A> struct Job2 {
  View<const T> x, y, dmap;
  View<const A> m;
  View<T> map, gx, gy;
  View<T> cmap[4];  // the components' maps S, l, c, s (comp_band)
  int64_t C = 0, H = 0, W = 0, Ho = 0, Wo = 0, offh = 0, offw = 0, Wp = 0, LW = 0, LWp = 0;
  int64_t ch = 0, cw = 0;  // output (p, j) has its window centre at source (p + ch, j + cw)
  int64_t band = 0, nbands = 0, SW = 0, PS = 0, VP = 0;
  int wh = 1, ww = 1, padding = 0, nq = 0;
  int K = 5;  // blurred quantities: blurred_of<A>(), kMaxK with the components (sigma_x^2, sigma_y^2 apart)
  int crow[kNumCoefs] = {-1, -1, -1, -1};  // row of K_x, K_y, K_b, K_c in a coefficient slot, -1: junk
  A gh[kMaxWin] = {}, gw[kMaxWin] = {};
  A c1 = 0, c2 = 0;
  bool want_map = false, grad = false, comp = false;
  std::vector<int64_t> colsrc;  // padded column -> source column or -1 (zero padding)
};

// ---------------------------------------------------------------------------------------------
// Row loops (Vec<A>: csrc/cpu/simd.h; every lane one output column, nothing reassociated)
// ---------------------------------------------------------------------------------------------

// h[q * P + j] = sum_k g[k] r[q][j + k] for j < len (multiple of the vector), symmetric taps folded.
template <int K, int U, typename A>
FASTIQA_INLINE void mblur_h_at(const A* const* r, const A* g, int win, int64_t j, int64_t P, A* h) {
  using V = Vec<A>;
  constexpr int NV = vec_lanes<A>();
  V a[K][U];
  const int half = win / 2;
  const V gc = vsplat(g[half]);
  for (int q = 0; q < K; ++q)
    for (int u = 0; u < U; ++u) a[q][u] = gc * vload(r[q] + j + half + u * NV);
  for (int k = 0; k < half; ++k) {
    const V gk = vsplat(g[k]);
    for (int q = 0; q < K; ++q)
      for (int u = 0; u < U; ++u)
        a[q][u] += gk * (vload(r[q] + j + k + u * NV) + vload(r[q] + j + win - 1 - k + u * NV));
  }
  for (int q = 0; q < K; ++q)
    for (int u = 0; u < U; ++u) vstore(h + q * P + j + u * NV, a[q][u]);
}

template <int K, typename A>
FASTIQA_INLINE void mblur_h(const A* const* r, const A* g, int win, int64_t len, int64_t P, A* h) {
  constexpr int NV = vec_lanes<A>();
  constexpr int U = kVecBytes == 64 || K <= 5 ? 2 : 1;  // 2 K accumulators within the registers
  int64_t j = 0;
  for (; j + U * NV <= len; j += U * NV) mblur_h_at<K, U>(r, g, win, j, P, h);
  for (; j < len; j += NV) mblur_h_at<K, 1>(r, g, win, j, P, h);
}

// out[t] = in[t * stride] for t < n, converted to A.
template <typename T, typename A> FASTIQA_INLINE void load_n(const T* in, int64_t stride, int64_t n, A* out) {
  if (stride == 1) {
#pragma omp simd
    for (int64_t t = 0; t < n; ++t) out[t] = to_acc<A>(in[t]);
  } else {
    for (int64_t t = 0; t < n; ++t) out[t] = to_acc<A>(in[t * stride]);
  }
}

template <typename T, typename A> FASTIQA_INLINE void store_n(T* out, int64_t stride, int64_t n, const A* in) {
  if (stride == 1) {
#pragma omp simd
    for (int64_t t = 0; t < n; ++t) out[t] = from_acc<T, A>(in[t]);
  } else {
    for (int64_t t = 0; t < n; ++t) out[t * stride] = from_acc<T, A>(in[t]);
  }
}

// Padded columns c0 .. c0 + n_in - 1 of padded row u's source row s (-1: a row of zero padding)
// of plane (n, c): m, x, y into rm, rx, ry; zero padding is x = y = 0 of weight m = 1; zeros
// (m = 0) from n_in up to len.
template <typename T, typename A>
FASTIQA_INLINE void gather_mxy(const Job2<T, A>& J, int64_t n, int64_t c, int64_t s, int64_t c0, int64_t n_in,
                               int64_t len, A* rm, A* rx, A* ry) {
  if (s < 0) {
    std::fill(rm, rm + n_in, A(1));
    std::fill(rx, rx + n_in, A(0));
    std::fill(ry, ry + n_in, A(0));
  } else {
    const A* mr = J.m.at(n, c, 0, s, 0);
    const T* xr = J.x.at(n, c, 0, s, 0);
    const T* yr = J.y.at(n, c, 0, s, 0);
    const int64_t ms = J.m.s[4], xs = J.x.s[4], ys = J.y.s[4];
    auto edge = [&](int64_t t) {
      const int64_t sw = J.colsrc[c0 + t];
      rm[t] = sw < 0 ? A(1) : mr[sw * ms];
      rx[t] = sw < 0 ? A(0) : to_acc<A>(xr[sw * xs]);
      ry[t] = sw < 0 ? A(0) : to_acc<A>(yr[sw * ys]);
    };
    // padded column pc is source column pc - offw for offw <= pc < offw + W
    const int64_t t_a = std::min(n_in, std::max<int64_t>(0, J.offw - c0));
    const int64_t t_b = std::max(t_a, std::min(n_in, J.offw + J.W - c0));
    for (int64_t t = 0; t < t_a; ++t) edge(t);
    const int64_t b = c0 + t_a - J.offw;
    load_n(mr + b * ms, ms, t_b - t_a, rm + t_a);
    load_n(xr + b * xs, xs, t_b - t_a, rx + t_a);
    load_n(yr + b * ys, ys, t_b - t_a, ry + t_a);
    for (int64_t t = t_b; t < n_in; ++t) edge(t);
  }
  std::fill(rm + n_in, rm + len, A(0));
  std::fill(rx + n_in, rx + len, A(0));
  std::fill(ry + n_in, ry + len, A(0));
}

// The K products of a gathered row, in place: r[0] = m stays, r[1] = x -> m x, r[2] = y -> m y,
// then m (x^2 + y^2), m x y (K = 5) or m x^2, m y^2, m x y (K = 6).
template <int K, typename A> FASTIQA_INLINE void mproducts(A* const* r, int64_t len) {
  const A* __restrict__ pm = r[0];
  A* __restrict__ px = r[1];
  A* __restrict__ py = r[2];
  A* __restrict__ p3 = r[3];
  A* __restrict__ p4 = r[4];
  if constexpr (K == 5) {
#pragma omp simd
    for (int64_t j = 0; j < len; ++j) {
      const A xv = px[j], yv = py[j], mx = pm[j] * xv, my = pm[j] * yv;
      px[j] = mx;
      py[j] = my;
      p3[j] = mx * xv + my * yv;
      p4[j] = mx * yv;
    }
  } else {
    A* __restrict__ p5 = r[5];
#pragma omp simd
    for (int64_t j = 0; j < len; ++j) {
      const A xv = px[j], yv = py[j], mx = pm[j] * xv, my = pm[j] * yv;
      px[j] = mx;
      py[j] = my;
      p3[j] = mx * xv;
      p4[j] = my * yv;
      p5[j] = mx * yv;
    }
  }
}

// The normalised statistics of column j from the K blurred rows st (pitch P); ok = W > 0 (else
// the statistics of W = 1, never used).
template <int K, typename A>
FASTIQA_INLINE void mstats(const A* st, int64_t P, int64_t j, bool& ok, A& iw, A& mx, A& my, A& exx, A& eyy,
                           A& exy) {
  const A w = st[j];
  ok = w > A(0);
  iw = A(1) / (ok ? w : A(1));
  mx = st[P + j] * iw;
  my = st[2 * P + j] * iw;
  exx = st[3 * P + j] * iw;
  if constexpr (K == 5) {
    eyy = A(0);
    exy = st[4 * P + j] * iw;
  } else {
    eyy = st[4 * P + j] * iw;
    exy = st[5 * P + j] * iw;
  }
}

// sab += sum a[j] b[j], sb += sum b[j] over j < n, in kLanes partial sums.
template <typename A> FASTIQA_INLINE void lane_sums(const A* a, const A* b, int64_t n, double& sab, double& sb) {
  A la[kLanes] = {}, lb[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes) {
#pragma omp simd
    for (int l = 0; l < kLanes; ++l) {
      la[l] += a[j + l] * b[j + l];
      lb[l] += b[j + l];
    }
  }
  for (int l = 0; j < n; ++j, ++l) {
    la[l] += a[j] * b[j];
    lb[l] += b[j];
  }
  for (int l = 0; l < kLanes; ++l) {
    sab += la[l];
    sb += lb[l];
  }
}

// The scratch of one thread, kept between calls (thread_local) up to kKeep bytes.
constexpr int64_t kKeep = 8 << 20;
template <typename A> struct Scr {
  std::vector<A> own;
  A *rin[kMaxK], *ring, *st, *srow, *w, *mc, *mring, *junk, *t, *vacc, *mr, *xr, *yr, *gr;
  A* crow[3];  // the components' rows l, c, s (comp_band)
  template <typename T> void init(const Job2<T, A>& J) {
    const int K = J.K;
    const int64_t P = J.PS, in_len = up(J.SW, kLanes) + J.ww + kLanes;
    const int64_t vaccn = J.grad ? J.band * J.nq * J.VP : 0;
    const int64_t row = std::max(J.LWp, P);
    const int64_t need = K * in_len + (J.wh + 1) * K * P + 2 * K * P + 6 * P +
                         (J.grad ? (J.wh + 1) * J.nq * P + kNumCoefs * P + J.nq * J.LWp + vaccn : 0) + 4 * row + 64;
    static thread_local std::vector<A> kept;
    std::vector<A>& buf = need * static_cast<int64_t>(sizeof(A)) <= kKeep ? kept : own;
    buf.assign(need, A(0));
    A* p = buf.data();
    auto take = [&](int64_t k) {
      A* r = p;
      p += k;
      return r;
    };
    for (auto& r : rin) r = nullptr;
    for (int q = 0; q < K; ++q) rin[q] = take(in_len);
    ring = take((J.wh + 1) * K * P);
    st = take(2 * K * P);
    srow = take(P);
    w = take(P);
    mc = take(P);
    for (auto& r : crow) r = take(P);
    mring = J.grad ? take((J.wh + 1) * J.nq * P) : nullptr;
    junk = J.grad ? take(kNumCoefs * P) : nullptr;
    t = J.grad ? take(J.nq * J.LWp) : nullptr;
    vacc = J.grad ? take(vaccn) : nullptr;
    mr = take(row);
    xr = take(row);
    yr = take(row);
    gr = take(row);
  }
};

// The horizontal blurs of padded row u of strip c0 (cols output columns, lw with the padding lanes)
// into ring slot h.
template <int K, typename T, typename A>
FASTIQA_INLINE void strip_row(const Job2<T, A>& J, Scr<A>& S, int64_t n, int64_t c, int64_t u, int64_t c0,
                              int64_t cols, int64_t lw, A* h) {
  const int64_t s = source_index(u, J.H, J.offh, J.padding);
  gather_mxy(J, n, c, s, c0, cols + J.ww - 1, lw + J.ww, S.rin[0], S.rin[1], S.rin[2]);
  mproducts<K>(S.rin, lw + J.ww);
  mblur_h<K>(S.rin, J.gw, J.ww, lw, J.PS, h);
}

// The statistics of output rows p0 (and p0 + 1 when two) from the ring (row u0 of the ring is
// padded row u0 of the band) into S.st (K rows of PS each per output row).
template <int K, typename T, typename A>
FASTIQA_INLINE void ring_stats2(const Job2<T, A>& J, Scr<A>& S, int64_t p0, int64_t u0, bool two, int64_t lw) {
  const int win = J.wh, nr = win + 1;
  const int64_t slot = K * J.PS;
  const A* rows[kMaxWin + 1];
  int64_t r = (p0 - u0) % nr;
  for (int k = 0; k < (two ? win + 1 : win); ++k) {
    rows[k] = S.ring + r * slot;
    r = r + 1 == nr ? 0 : r + 1;
  }
  if (two)
    vblur2<K, false>(rows, J.gh, win, lw, J.PS, S.st, S.st + slot, J.PS);
  else
    vblur<K, false>(rows, J.gh, win, 0, win - 1, lw, J.PS, S.st, J.PS);
}

// m at the window centres of output row p, columns c0 .. c0 + cols - 1, into S.mc (zeros up to lw).
template <typename T, typename A>
FASTIQA_INLINE void centre_row(const Job2<T, A>& J, Scr<A>& S, int64_t n, int64_t c, int64_t p, int64_t c0,
                               int64_t cols, int64_t lw) {
  load_n(J.m.at(n, c, 0, p + J.ch, c0 + J.cw), J.m.s[4], cols, S.mc);
  std::fill(S.mc + cols, S.mc + lw, A(0));
}

// Output rows pa .. pb - 1 of plane (n, c), strip by strip: every padded row's horizontal blurs go
// into the ring; the due output rows' statistics (in pairs, rows_due) into S.st, then
// rows(c0, cols, lw, p0, due) uses them; end(c0, lw) after each strip.
template <int K, typename T, typename A, typename Rows, typename End>
FASTIQA_INLINE void strips(const Job2<T, A>& J, Scr<A>& S, int64_t n, int64_t c, int64_t pa, int64_t pb, Rows&& rows,
                           End&& end) {
  const int win = J.wh;
  const int64_t slot = K * J.PS;
  for (int64_t c0 = 0; c0 < J.Wo; c0 += J.SW) {
    const int64_t cols = std::min(J.SW, J.Wo - c0), lw = up(cols, kLanes);
    for (int64_t u = pa; u < pb + win - 1; ++u) {
      strip_row<K>(J, S, n, c, u, c0, cols, lw, S.ring + ((u - pa) % (win + 1)) * slot);
      if (u < pa + win - 1) continue;
      const int due = rows_due(u - win + 1, pa, pb);
      if (due == 0) continue;
      const int64_t p0 = u - win + 2 - due;
      ring_stats2<K>(J, S, p0, pa, due == 2, lw);
      rows(c0, cols, lw, p0, due);
    }
    end(c0, lw);
  }
}

// Forward of output rows own_a .. own_b - 1 of plane (n, c): sums[0] += m_c S, sums[1] += m_c.
template <typename T, typename A>
void fwd_band(const Job2<T, A>& J, Scr<A>& S, int64_t n, int64_t c, int64_t own_a, int64_t own_b, double* sums) {
  constexpr int K = blurred_of<A>();
  if (own_b <= own_a) return;
  const int64_t PS = J.PS;
  auto rows = [&](int64_t c0, int64_t cols, int64_t lw, int64_t p0, int due) {
    for (int64_t p = p0; p < p0 + due; ++p) {
      const A* st = S.st + (p - p0) * K * PS;
      A* __restrict__ sr = S.srow;
#pragma omp simd
      for (int64_t j = 0; j < lw; ++j) {
        bool ok;
        A iw, mx, my, exx, eyy, exy, sv, cv;
        mstats<K>(st, PS, j, ok, iw, mx, my, exx, eyy, exy);
        ssim_value<A>(mx, my, exx, eyy, exy, J.c1, J.c2, sv, cv);
        sr[j] = ok ? sv : A(0);
      }
      centre_row(J, S, n, c, p, c0, cols, lw);
      lane_sums(S.srow, S.mc, cols, sums[0], sums[1]);
      if (J.want_map) store_n(J.map.at(n, c, 0, p, c0), J.map.s[4], cols, S.srow);
    }
  };
  strips<K>(J, S, n, c, own_a, own_b, rows, [](int64_t, int64_t) {});
}

// The components of output rows own_a .. own_b - 1 of plane (n, c) (K = kMaxK: sigma_x^2 and sigma_y^2
// apart): sums[0 .. 3] += m_c S, m_c l, m_c c, m_c s; sums[4] += m_c; the 4 maps when asked.
template <typename T, typename A>
void comp_band(const Job2<T, A>& J, Scr<A>& S, int64_t n, int64_t c, int64_t own_a, int64_t own_b, double* sums) {
  constexpr int K = kMaxK;
  if (own_b <= own_a) return;
  const int64_t PS = J.PS;
  auto rows = [&](int64_t c0, int64_t cols, int64_t lw, int64_t p0, int due) {
    for (int64_t p = p0; p < p0 + due; ++p) {
      const A* st = S.st + (p - p0) * K * PS;
      A *__restrict__ sr = S.srow, *__restrict__ lr = S.crow[0], *__restrict__ kr = S.crow[1],
                    *__restrict__ tr = S.crow[2];
#pragma omp simd
      for (int64_t j = 0; j < lw; ++j) {
        bool ok;
        A iw, mx, my, exx, eyy, exy, sv, cv, lv, kv, tv;
        mstats<K>(st, PS, j, ok, iw, mx, my, exx, eyy, exy);
        ssim_components<A>(mx, my, exx, eyy, exy, J.c1, J.c2, sv, cv, lv, kv, tv);
        sr[j] = ok ? sv : A(0);
        lr[j] = ok ? lv : A(0);
        kr[j] = ok ? kv : A(0);
        tr[j] = ok ? tv : A(0);
      }
      centre_row(J, S, n, c, p, c0, cols, lw);
      const A* maps[4] = {S.srow, S.crow[0], S.crow[1], S.crow[2]};
      double unused = 0;
      for (int k = 0; k < 4; ++k) {
        lane_sums(maps[k], S.mc, cols, sums[k], k == 0 ? sums[4] : unused);
        if (J.want_map) store_n(J.cmap[k].at(n, c, 0, p, c0), J.cmap[k].s[4], cols, maps[k]);
      }
    }
  };
  strips<K>(J, S, n, c, own_a, own_b, rows, [](int64_t, int64_t) {});
}

// Sums of m |x - y| and m over source rows s_a .. s_b - 1 of plane (n, c): sums[2], sums[3].
template <typename T, typename A>
void l1_band(const Job2<T, A>& J, Scr<A>& S, int64_t n, int64_t c, int64_t s_a, int64_t s_b, double* sums) {
  for (int64_t s = s_a; s < s_b; ++s) {
    load_n(J.m.at(n, c, 0, s, 0), J.m.s[4], J.W, S.mr);
    load_n(J.x.at(n, c, 0, s, 0), J.x.s[4], J.W, S.xr);
    load_n(J.y.at(n, c, 0, s, 0), J.y.s[4], J.W, S.yr);
    A* __restrict__ d = S.xr;
#pragma omp simd
    for (int64_t j = 0; j < J.W; ++j) {
      const A v = d[j] - S.yr[j];
      d[j] = v < A(0) ? -v : v;
    }
    lane_sums(S.xr, S.mr, J.W, sums[2], sums[3]);
  }
}

// Coefficient rows of output row p (statistics st) into its slot of the coefficient ring:
// w_p = ws0 m_c + dmap, K_* = (dax, day, db, dc) w_p-weighted / W, 0 where W = 0 and past cols.
template <int K, int NQ, typename T, typename A>
FASTIQA_INLINE void coef_row(const Job2<T, A>& J, Scr<A>& S, int64_t n, int64_t c, int64_t p, int64_t c0,
                             int64_t cols, int64_t lw, const A* st, A ws0) {
  const int64_t PS = J.PS;
  centre_row(J, S, n, c, p, c0, cols, lw);
  A* __restrict__ w = S.w;
  if (J.dmap.p) {
    load_n(J.dmap.at(n, c, 0, p, c0), J.dmap.s[4], cols, w);
#pragma omp simd
    for (int64_t j = 0; j < cols; ++j) w[j] += ws0 * S.mc[j];
  } else {
#pragma omp simd
    for (int64_t j = 0; j < cols; ++j) w[j] = ws0 * S.mc[j];
  }
  std::fill(w + cols, w + lw, A(0));
  A* slotp = S.mring + (p % (J.wh + 1)) * NQ * PS;
  A* d[kNumCoefs];
  for (int k = 0; k < kNumCoefs; ++k) d[k] = J.crow[k] >= 0 ? slotp + J.crow[k] * PS : S.junk + k * PS;
  A *__restrict__ d0 = d[0], *__restrict__ d1 = d[1], *__restrict__ d2 = d[2], *__restrict__ d3 = d[3];
#pragma omp simd
  for (int64_t j = 0; j < lw; ++j) {
    bool ok;
    A iw, mx, my, exx, eyy, exy, sv, cv, dax, day, db, dc;
    mstats<K>(st, PS, j, ok, iw, mx, my, exx, eyy, exy);
    ssim_value_grad<A>(mx, my, exx, eyy, exy, J.c1, J.c2, w[j], A(0), sv, cv, dax, day, db, dc);
    // lanes past the strip (j >= cols) may hold inf / NaN: never into the adjoint blurs
    const bool real = ok && j < cols;
    d0[j] = real ? dax * iw : A(0);
    d1[j] = real ? day * iw : A(0);
    d2[j] = real ? db * iw : A(0);
    d3[j] = real ? dc * iw : A(0);
  }
}

// The vertical adjoint of padded row u of strip c0, once output rows pa .. p_last (the last one
// reading u) have their coefficient rows in the ring, added into the band's accumulator row of
// u's source row if it lies in the band (s_a .. s_b - 1).
template <int NQ, typename T, typename A>
FASTIQA_INLINE void vadjoint(const Job2<T, A>& J, Scr<A>& S, int64_t u, int64_t pa, int64_t p_last, int64_t s_a,
                             int64_t s_b, int64_t c0, int64_t lw) {
  const int64_t s = source_index(u, J.H, J.offh, J.padding);
  if (s < s_a || s >= s_b) return;
  const int win = J.wh;
  const int k_lo = static_cast<int>(std::max<int64_t>(0, u - p_last));
  const int k_hi = static_cast<int>(std::min<int64_t>(win - 1, u - pa));
  if (k_hi < k_lo) return;
  const A* rows[kMaxWin];
  int64_t slot = (u - k_lo) % (win + 1);
  for (int k = k_lo; k <= k_hi; ++k) {
    rows[k] = S.mring + slot * NQ * J.PS;
    slot = slot == 0 ? win : slot - 1;
  }
  // output column o of the strip is accumulator column ww - 1 + c0 + o (ww - 1 zeros in front)
  vblur<NQ, true>(rows, J.gh, J.wh, k_lo, k_hi, lw, J.PS, S.vacc + (s - s_a) * NQ * J.VP + (J.ww - 1) + c0, J.VP);
}

// vadjoint of padded rows u - 1 and u together when both take every tap (u - win >= pa, u <= p_last)
// and lie in the band: their win + 1 coefficient rows u - win .. u each loaded once (mblur_v2; the
// window is symmetric, so row u - win + m weighs g[m] for u - 1 and g[m - 1] for u).
template <int NQ, typename T, typename A>
FASTIQA_INLINE void vadjoint2(const Job2<T, A>& J, Scr<A>& S, int64_t u, int64_t pa, int64_t p_last, int64_t s_a,
                              int64_t s_b, int64_t c0, int64_t lw) {
  const int win = J.wh;
  const int64_t s0 = source_index(u - 1, J.H, J.offh, J.padding), s1 = source_index(u, J.H, J.offh, J.padding);
  if (u - win < pa || u > p_last || s0 < s_a || s0 >= s_b || s1 < s_a || s1 >= s_b || s0 == s1) {
    vadjoint<NQ>(J, S, u - 1, pa, p_last, s_a, s_b, c0, lw);
    vadjoint<NQ>(J, S, u, pa, p_last, s_a, s_b, c0, lw);
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

// Source row s of plane (n, c) from its accumulator rows v: transposed horizontal blur, column fold,
// then the combination with m, x, y; writes the gradients asked for.
template <int NQ, typename T, typename A>
FASTIQA_INLINE void combine(const Job2<T, A>& J, Scr<A>& S, int64_t n, int64_t c, int64_t s, const A* v, A wl) {
  const int64_t W = J.W, LWp = J.LWp;
  hblur_adj<NQ>(v, J.VP, J.gw, J.ww, LWp, S.t);
  if (J.padding == kSameReflect) {
    for (int q = 0; q < NQ; ++q) {
      A* tq = S.t + q * LWp;
      for (int64_t j = 0; j < J.offw; ++j) tq[J.offw + J.colsrc[j]] += tq[j];
      for (int64_t j = J.offw + W; j < J.Wp; ++j) tq[J.offw + J.colsrc[j]] += tq[j];
    }
  }
  load_n(J.m.at(n, c, 0, s, 0), J.m.s[4], W, S.mr);
  load_n(J.x.at(n, c, 0, s, 0), J.x.s[4], W, S.xr);
  load_n(J.y.at(n, c, 0, s, 0), J.y.s[4], W, S.yr);
  const A* tb = S.t + J.crow[2] * LWp + J.offw;
  const A* tc = S.t + J.crow[3] * LWp + J.offw;
  for (int g = 0; g < 2; ++g) {
    const View<T>& out = g == 0 ? J.gx : J.gy;
    if (!out.p) continue;
    const A* ta = S.t + J.crow[g] * LWp + J.offw;
    const A* own = g == 0 ? S.xr : S.yr;
    const A* other = g == 0 ? S.yr : S.xr;
    const A* mr = S.mr;
    const A sgn = g == 0 ? wl : -wl;  // d|x - y|/dx = sign(x - y) = -d/dy
    A* __restrict__ outr = S.gr;
#pragma omp simd
    for (int64_t j = 0; j < W; ++j) {
      const A d = S.xr[j] - S.yr[j];
      const A sg = sgn * (static_cast<A>(d > A(0)) - static_cast<A>(d < A(0)));
      outr[j] = mr[j] * (ta[j] + A(2) * own[j] * tb[j] + other[j] * tc[j] + sg);
    }
    store_n(out.at(n, c, 0, s, 0), out.s[4], W, outr);
  }
}

// Gradient of source rows s_a .. s_b - 1 of plane (n, c).
template <int NQ, typename T, typename A>
void grad_band(const Job2<T, A>& J, Scr<A>& S, int64_t n, int64_t c, int64_t s_a, int64_t s_b, A ws0, A wl) {
  constexpr int K = blurred_of<A>();
  const int win = J.wh;
  // the output rows whose windows reach the band's source rows
  const int64_t pa = std::max<int64_t>(0, s_a + J.offh - (win - 1)), pb = std::min(J.Ho, s_b + J.offh);
  std::fill(S.vacc, S.vacc + (s_b - s_a) * NQ * J.VP, A(0));
  auto rows = [&](int64_t c0, int64_t cols, int64_t lw, int64_t p0, int due) {
    for (int64_t p = p0; p < p0 + due; ++p)
      coef_row<K, NQ>(J, S, n, c, p, c0, cols, lw, S.st + (p - p0) * K * J.PS, ws0);
    // padded rows p0 .. p0 + due - 1: no later output row reads them
    if (due == 2)
      vadjoint2<NQ>(J, S, p0 + 1, pa, p0 + 1, s_a, s_b, c0, lw);
    else
      vadjoint<NQ>(J, S, p0, pa, p0, s_a, s_b, c0, lw);
  };
  auto end = [&](int64_t c0, int64_t lw) {
    for (int64_t u = pb; u < pb + win - 1; ++u) vadjoint<NQ>(J, S, u, pa, pb - 1, s_a, s_b, c0, lw);
  };
  if (pb > pa) strips<K>(J, S, n, c, pa, pb, rows, end);
  for (int64_t s = s_a; s < s_b; ++s) combine<NQ>(J, S, n, c, s, S.vacc + (s - s_a) * NQ * J.VP, wl);
}

template <typename T, typename A>
void setup2(Job2<T, A>& J, const at::Tensor& x, const at::Tensor& y, const at::Tensor& mask,
            const host::SsimWindow& win, double c1, double c2, int64_t padding, bool need_gx, bool need_gy,
            bool comp = false) {
  J.x = View<const T>(x);
  J.y = View<const T>(y);
  J.m = View<const A>(mask);
  J.C = x.size(1);
  J.H = x.size(2);
  J.W = x.size(3);
  J.wh = static_cast<int>(win.size[0]);
  J.ww = static_cast<int>(win.size[1]);
  J.padding = static_cast<int>(padding);
  const bool same = padding != kValid;
  J.offh = same ? J.wh / 2 : 0;
  J.offw = same ? J.ww / 2 : 0;
  J.Ho = same ? J.H : J.H - J.wh + 1;
  J.Wo = same ? J.W : J.W - J.ww + 1;
  J.ch = J.wh / 2 - J.offh;
  J.cw = J.ww / 2 - J.offw;
  J.Wp = J.Wo + J.ww - 1;
  J.LW = up(std::max<int64_t>(J.Wo, 1), kLanes);
  J.LWp = up(J.Wp, kLanes);
  double g[kMaxWin];
  gaussian_window(J.wh, win.sigma[0], g);
  for (int k = 0; k < J.wh; ++k) J.gh[k] = static_cast<A>(g[k]);
  gaussian_window(J.ww, win.sigma[1], g);
  for (int k = 0; k < J.ww; ++k) J.gw[k] = static_cast<A>(g[k]);
  J.c1 = static_cast<A>(c1);
  J.c2 = static_cast<A>(c2);
  J.colsrc.resize(J.Wp);
  for (int64_t j = 0; j < J.Wp; ++j) J.colsrc[j] = source_index(j, J.W, J.offw, J.padding);
  // coefficient rows: K_x for gx, K_y for gy, K_b and K_c for both
  const bool grad = need_gx || need_gy;
  J.grad = grad;
  int q = 0;
  for (int& r : J.crow) r = -1;
  if (need_gx) J.crow[0] = q++;
  if (need_gy) J.crow[1] = q++;
  if (grad) {
    J.crow[2] = q++;
    J.crow[3] = q++;
  }
  J.nq = q;
  const int64_t planes = x.size(0) * J.C;
  J.comp = comp;
  J.K = comp ? kMaxK : blurred_of<A>();
  int64_t rows = static_cast<int64_t>(J.wh + 1) * J.K;
  if (!grad) {
    int64_t b = kBandValues;
    while (b > kBandGrad && planes * ((J.H + b - 1) / b) < kMinTasks) b /= 2;
    J.band = b;
  } else {
    rows += static_cast<int64_t>(J.wh + 1) * J.nq;
    J.VP = row_pitch<A>(J.LWp + J.ww);
    const int64_t tall = 2 * kBandGrad;
    J.band = tall * J.nq * J.VP * static_cast<int64_t>(sizeof(A)) <= kBandGradBytes &&
                     planes * ((J.H + tall - 1) / tall) >= kMinTasks
                 ? tall
                 : kBandGrad;
  }
  J.nbands = (J.H + J.band - 1) / J.band;
  const int64_t fit = kStripBytes / (rows * static_cast<int64_t>(sizeof(A)));
  J.SW = std::min(J.LW, std::max<int64_t>(2 * kLanes, fit / kLanes * kLanes));
  J.PS = row_pitch<A>(up(J.SW, kLanes));
}

// Per-plane sums (planes, NS) in A from band(S, n, c, s_a, s_b, sums) over every band of every plane
// (float64 per band, added in band order).
template <int NS, typename T, typename A, typename Band>
void sums_all(const Job2<T, A>& J, int64_t planes, A* out, Band&& band) {
  const int64_t tasks = planes * J.nbands;
  std::vector<double> bs(static_cast<size_t>(tasks * NS), 0.0);
  at::parallel_for(0, tasks, 1, [&](int64_t tb, int64_t te) {
    Scr<A> S;
    S.init(J);
    for (int64_t t = tb; t < te; ++t) {
      const int64_t plane = t / J.nbands, b = t % J.nbands;
      const int64_t s_a = b * J.band, s_b = std::min(J.H, s_a + J.band);
      band(S, plane / J.C, plane % J.C, s_a, s_b, &bs[NS * t]);
    }
  });
  for (int64_t pl = 0; pl < planes; ++pl) {
    double acc[NS] = {};
    for (int64_t b = 0; b < J.nbands; ++b)
      for (int q = 0; q < NS; ++q) acc[q] += bs[NS * (pl * J.nbands + b) + q];
    for (int q = 0; q < NS; ++q) out[pl * NS + q] = static_cast<A>(acc[q]);
  }
}

// Forward: per-plane sums (planes, 4): m_c S, m_c, m |x - y|, m.
template <typename T, typename A> void fwd_all(const Job2<T, A>& J, int64_t planes, A* out) {
  sums_all<host::kMaskedPlaneSums>(J, planes, out, [&](Scr<A>& S, int64_t n, int64_t c, int64_t s_a, int64_t s_b,
                                                        double* sums) {
    fwd_band(J, S, n, c, s_a, std::min(s_b, J.Ho), sums);
    l1_band(J, S, n, c, s_a, s_b, sums);
  });
}

// The components: per-plane sums (planes, 5): m_c S, m_c l, m_c c, m_c s, m_c.
template <typename T, typename A> void comp_all(const Job2<T, A>& J, int64_t planes, A* out) {
  sums_all<5>(J, planes, out, [&](Scr<A>& S, int64_t n, int64_t c, int64_t s_a, int64_t s_b, double* sums) {
    comp_band(J, S, n, c, s_a, std::min(s_b, J.Ho), sums);
  });
}

template <typename T, typename A> void bwd_all(const Job2<T, A>& J, int64_t planes, const A* d_planes) {
  constexpr int NS = host::kMaskedPlaneSums;
  const int64_t tasks = planes * J.nbands;
  at::parallel_for(0, tasks, 1, [&](int64_t tb, int64_t te) {
    Scr<A> S;
    S.init(J);
    for (int64_t t = tb; t < te; ++t) {
      const int64_t plane = t / J.nbands, b = t % J.nbands, n = plane / J.C, c = plane % J.C;
      const int64_t s_a = b * J.band, s_b = std::min(J.H, s_a + J.band);
      const A ws0 = d_planes[plane * NS + 0], wl = d_planes[plane * NS + 2];
      if (J.nq == 4)
        grad_band<4>(J, S, n, c, s_a, s_b, ws0, wl);
      else
        grad_band<3>(J, S, n, c, s_a, s_b, ws0, wl);
    }
  });
}

}  // namespace band
