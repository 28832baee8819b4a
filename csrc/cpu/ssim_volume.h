// CPU plane kernels of the SSIM family on volumes, (N, C, D, H, W) with a separable 3-D
// window (wd, wh, ww taps): included by csrc/cpu/ssim_impl.h inside its per-ISA namespace
// (uses its row helpers and the formulas of csrc/common/ssim_math.h).
//
// Work unit: one block of J.block depth slices of one (n, c) plane (set_volume_blocks: as deep
// as keeps every thread busy, so that few slices are recomputed at block edges). For every padded
// depth slice the block needs, the 2-D blur of the five quantities x, y, x^2, y^2, xy over
// (H, W) goes into a ring of wd slices (slice_stats: horizontal blur of each padded row,
// then the vertical blur); each completed ring gives one output slice of the statistics by
// the depth blur, then its SSIM, cs (and the gradient's four coefficient maps, in a ring of
// wd output slices). Gradient: a padded slice is complete once the last output slice that
// reads it is in the coefficient ring; its depth adjoint is gathered from the ring, goes
// through the transposed vertical and horizontal blurs and the row / column folds (zero
// padding drops, reflect padding adds onto the mirrored pixel) into the block's source-slice
// accumulators, and the block's slices are combined with x and y and written once. A block
// recomputes the wd - 1 slices of 2-D statistics it shares with its neighbours.
// Every blur accumulates its taps in registers (blur_rows_sym; csrc/cpu/blur_rows.h's vblur for
// a window cut by an edge: one store per output) and folds the symmetric window's taps where the
// whole window is in range.
//
// Sums are kept per output slice (S, cs) and per source slice (|x - y|) and added in slice
// order; every slice's values and gradients are computed the same way in any block: results
// do not depend on the partition, hence not on the thread count.
// The components (J.comp, csrc/common/ssim_math.h ssim_components): the forward also sums l, c, s
// per output slice and writes the 4 maps S, l, c, s; the gradient (ssim_components_grad) keeps 5
// coefficient maps (dax, day, dbx, dc, dby: dF/dx and dF/dy differ in their variance
// coefficient) where the SSIM's has 4 (dby = dbx), through the same depth, vertical and
// horizontal adjoints.
#pragma once

// Depth slices per work unit at least: >= the largest offset (kMaxWin / 2), which the reflect
// folds of a block rely on (as kBand for the rows of images).
constexpr int64_t kMinDepthBlock = 16;
static_assert(kMinDepthBlock >= kMaxWin / 2, "a depth block must hold the largest padding offset");
// A block's gradient accumulators (4 maps of its source slices, 5 with the components) stay below this size.
constexpr int64_t kVolAccBytes = int64_t(64) << 20;

template <typename T> struct View5 {
  T* p = nullptr;
  int64_t s[5] = {};
  View5() = default;
  explicit View5(const at::Tensor& t) : p(static_cast<T*>(t.data_ptr())) {
    for (int i = 0; i < 5; ++i) s[i] = t.stride(i);
  }
  T* row(int64_t n, int64_t c, int64_t d, int64_t h) const { return p + n * s[0] + c * s[1] + d * s[2] + h * s[3]; }
};

template <typename T, typename A> struct VolJob {
  View5<const T> x, y, dmap;
  View5<T> map, gx, gy;
  View5<T> mapk[kNumComponentMaps];         // comp: the maps S, l, c, s
  View5<const T> dmapk[kNumComponentMaps];  // comp: their weights (or null)
  const A* weights = nullptr;  // (planes, nw) or null
  int64_t C = 0, D = 0, H = 0, W = 0, Do = 0, Ho = 0, Wo = 0, offd = 0, offh = 0, offw = 0;
  int64_t Wp = 0, Hp = 0, P = 0, AP = 0, block = kMinDepthBlock, nblocks = 0;
  int wd = 0, wh = 0, ww = 0, padding = 0;
  A gd[kMaxWin] = {}, gh[kMaxWin] = {}, gw[kMaxWin] = {};
  A c1 = 0, c2 = 0;
  bool l1 = false, want_map = false, grad = false, comp = false;
  int nw = kNumWeights;  // weights per plane (kNumComponentStats with comp)
  int nq = 4;            // the gradient's coefficient maps (5 with comp): dax, day, dbx, dc[, dby]
  std::vector<int64_t> colsrc;  // padded column -> source column or -1, size Wp
};

// Sums per output slice: S, cs (and with the components l, c, s).
template <typename T, typename A> int vol_slice_sums(const VolJob<T, A>& J) { return J.comp ? 5 : 2; }

constexpr int kVolStats = 5;  // x, y, x^2, y^2, xy (float64 too: one code path)

template <typename A> struct VolScratch {
  std::vector<A> buf;
  A *h, *ring, *st, *rx, *ry, *rxx, *ryy, *rxy, *cring, *vt, *vr, *t, *acc, *xr, *yr, *crow;
  int64_t slice = 0;  // elements of one slice of the five statistics: 5 * Ho * P
  template <typename T> void init(const VolJob<T, A>& J) {
    slice = kVolStats * J.Ho * J.P;
    const int64_t nq = J.nq, planeq = nq * J.Ho * J.P;
    const int64_t row_in = J.P + J.ww + kLanes;  // a padded source row (Wp <= P + ww - 1)
    const int64_t acc_n = J.grad ? J.block * nq * J.H * J.AP : 0;
    const int64_t crow_n = J.comp ? kNumComponentMaps * J.P : 0;
    const int64_t need = kVolStats * J.Hp * J.P + J.wd * slice + kVolStats * J.P + kVolStats * row_in +
                         (J.grad ? J.wd * planeq + planeq + nq * J.Hp * (J.P + 2 * J.ww) + nq * (J.P + 2 * J.ww) : 0) +
                         acc_n + crow_n + 2 * J.W + 64;
    buf.assign(need, A(0));
    A* p = buf.data();
    auto take = [&](int64_t n) { A* r = p; p += n; return r; };
    h = take(kVolStats * J.Hp * J.P);  // horizontal blurs of the slice's padded rows
    ring = take(J.wd * slice);          // 2-D statistics of the last wd padded slices
    st = take(kVolStats * J.P);         // one row of the depth-blurred statistics
    rx = take(row_in); ry = take(row_in);
    rxx = take(row_in); ryy = take(row_in); rxy = take(row_in);  // the products of a padded row
    cring = J.grad ? take(J.wd * planeq) : nullptr;  // coefficient maps of the last wd output slices
    vt = J.grad ? take(planeq) : nullptr;            // a padded slice's depth adjoint
    vr = J.grad ? take(nq * J.Hp * (J.P + 2 * J.ww)) : nullptr;  // its vertical adjoint, zero column margins
    t = J.grad ? take(nq * (J.P + 2 * J.ww)) : nullptr;
    acc = J.grad ? take(acc_n) : nullptr;
    crow = crow_n ? take(crow_n) : nullptr;  // comp: one row of S, l, c, s (forward) or of their weights
    xr = take(J.W); yr = take(J.W);
  }
};

// out[j] = sum_k g[k] src[k][j + off], k < win, for a symmetric window (g[k] = g[win - 1 - k],
// win odd): the mirrored taps share one multiply. Whole vectors (Vec<A>, two at a time so two
// accumulator chains are in flight): n is rounded up to the vector width, every row must hold
// round_up(n, lanes) + off elements and out round_up(n, lanes).
template <typename A>
FASTIQA_INLINE void blur_rows_sym(const A* const* src, const A* g, int win, int64_t n, A* __restrict__ out,
                                  int64_t off = 0) {
  constexpr int L = vec_lanes<A>();
  const int half = win / 2;
  const Vec<A> gm = vsplat(g[half]);
  const A* mid = src[half] + off;
  const int64_t nr = round_up(n, L);
  int64_t j = 0;
  for (; j + 2 * L <= nr; j += 2 * L) {
    Vec<A> a0 = gm * vload(mid + j), a1 = gm * vload(mid + j + L);
    for (int k = 0; k < half; ++k) {
      const Vec<A> gk = vsplat(g[k]);
      const A* lo = src[k] + off + j;
      const A* hi = src[win - 1 - k] + off + j;
      a0 += gk * (vload(lo) + vload(hi));
      a1 += gk * (vload(lo + L) + vload(hi + L));
    }
    vstore(out + j, a0);
    vstore(out + j + L, a1);
  }
  if (j < nr) {
    Vec<A> a0 = gm * vload(mid + j);
    for (int k = 0; k < half; ++k) a0 += vsplat(g[k]) * (vload(src[k] + off + j) + vload(src[win - 1 - k] + off + j));
    vstore(out + j, a0);
  }
}

// The 2-D statistics of padded depth slice u (source slice s, or zeros for s < 0):
// out[(q * Ho + i) * P + j], q = x, y, x^2, y^2, xy blurred by (gh, gw).
template <typename T, typename A>
void slice_stats(const VolJob<T, A>& J, VolScratch<A>& S, int64_t n, int64_t c, int64_t s, A* out) {
  if (s < 0) {
    std::fill(out, out + S.slice, A(0));
    return;
  }
  const int64_t P = J.P, Wo = J.Wo;
  for (int64_t r = 0; r < J.Hp; ++r) {  // padded rows
    const int64_t sr = source_index(r, J.H, J.offh, J.padding);
    A* hr = S.h + r * kVolStats * P;
    if (sr < 0) {
      std::fill(hr, hr + kVolStats * P, A(0));
      continue;
    }
    const int64_t len = P + J.ww;
    gather_padded(J.x.row(n, c, s, sr), J.x.s[4], J, S.rx, len);
    gather_padded(J.y.row(n, c, s, sr), J.y.s[4], J, S.ry, len);
    const A* __restrict__ xv = S.rx;
    const A* __restrict__ yv = S.ry;
    A* __restrict__ xx = S.rxx;
    A* __restrict__ yy = S.ryy;
    A* __restrict__ xy = S.rxy;
#pragma omp simd
    for (int64_t j = 0; j < len; ++j) {
      xx[j] = xv[j] * xv[j];
      yy[j] = yv[j] * yv[j];
      xy[j] = xv[j] * yv[j];
    }
    const A* const rows[kVolStats] = {xv, yv, xx, yy, xy};
    for (int q = 0; q < kVolStats; ++q) {  // h[q][j] = sum_k gw[k] row_q[j + k]
      const A* taps[kMaxWin];
      for (int k = 0; k < J.ww; ++k) taps[k] = rows[q] + k;
      blur_rows_sym(taps, J.gw, J.ww, Wo, hr + q * P);
    }
  }
  const A* src[kMaxWin];
  for (int64_t i = 0; i < J.Ho; ++i)
    for (int q = 0; q < kVolStats; ++q) {
      for (int k = 0; k < J.wh; ++k) src[k] = S.h + (i + k) * kVolStats * P + q * P;
      blur_rows_sym(src, J.gh, J.wh, Wo, out + (q * J.Ho + i) * P);
    }
}

// Finalises padded depth slice u of the gradient once the output slices pa .. p_last (the
// last one that reads u) have their coefficient maps in the ring: depth adjoint, vertical and
// horizontal adjoints with their folds, into the block's accumulators of source slice s.
template <typename T, typename A>
void finalize_slice(const VolJob<T, A>& J, VolScratch<A>& S, int64_t u, int64_t pa, int64_t p_last, int64_t s_a,
                    int64_t s_b) {
  const int64_t s = source_index(u, J.D, J.offd, J.padding);
  if (s < s_a || s >= s_b) return;
  const int64_t P = J.P, Ho = J.Ho, Wo = J.Wo, planeq = J.nq * Ho * P;
  const int k_lo = static_cast<int>(std::max<int64_t>(0, u - p_last));
  const int k_hi = static_cast<int>(std::min<int64_t>(J.wd - 1, u - pa));
  const A* src[kMaxWin];
  for (int k = k_lo; k <= k_hi; ++k) src[k] = S.cring + ((u - k) % J.wd) * planeq;
  vblur<1>(src, J.gd, J.wd, k_lo, k_hi, planeq, 0, S.vt, 0);
  // vertical adjoint onto the padded rows r = 0 .. Hp - 1: vr[(q * Hp + r) * RP + ww - 1 + j]
  // (ww - 1 zeros before output column 0, zeros after Wo - 1: the horizontal adjoint's margins)
  const int64_t RP = P + 2 * J.ww;
  for (int q = 0; q < J.nq; ++q)
    for (int64_t r = 0; r < J.Hp; ++r) {
      A* __restrict__ o = S.vr + (q * J.Hp + r) * RP;
      std::fill(o, o + J.ww - 1, A(0));
      const int klo = static_cast<int>(std::max<int64_t>(0, r - (Ho - 1)));
      const int khi = static_cast<int>(std::min<int64_t>(J.wh - 1, r));
      for (int k = klo; k <= khi; ++k) src[k] = S.vt + (q * Ho + (r - k)) * P;
      if (khi - klo + 1 == J.wh)
        blur_rows_sym(src, J.gh, J.wh, Wo, o + J.ww - 1);  // the whole window: rows r - wh + 1 .. r
      else
        vblur<1>(src, J.gh, J.wh, klo, khi, Wo, 0, o + J.ww - 1, 0);
      std::fill(o + J.ww - 1 + Wo, o + RP, A(0));  // after the blur: its last vector may pass Wo
    }
  // horizontal adjoint and folds onto the source rows and columns
  A* a = S.acc + (s - s_a) * J.nq * J.H * J.AP;
  for (int64_t r = 0; r < J.Hp; ++r) {
    const int64_t sr = source_index(r, J.H, J.offh, J.padding);
    if (sr < 0) continue;
    for (int q = 0; q < J.nq; ++q) {
      const A* __restrict__ in = S.vr + (q * J.Hp + r) * RP;  // output column j at in[ww - 1 + j]
      A* __restrict__ t = S.t;
      // padded column pc receives sum_k gw[k] coef(pc - k), coef(j) = in[ww - 1 + j]; the
      // window is symmetric: = sum_k gw[k] in[pc + k], mirrored taps folded
      const A* taps[kMaxWin];
      for (int k = 0; k < J.ww; ++k) taps[k] = in + k;
      blur_rows_sym(taps, J.gw, J.ww, J.Wp, t);
      A* dst = a + (q * J.H + sr) * J.AP;
      for (int64_t pc = 0; pc < J.Wp; ++pc)
        if (J.colsrc[pc] >= 0) dst[J.colsrc[pc]] += t[pc];
    }
  }
}

// One output row of the components (J.comp): S, l, c, s into S.crow, the row sums of S, cs, l,
// c, s added to sums[0..4] when owned, the 4 maps written when asked.
template <typename T, typename A>
void components_row(const VolJob<T, A>& J, VolScratch<A>& S, int64_t n, int64_t c, int64_t p, int64_t i, bool owned,
                    double* sums) {
  const int64_t P = J.P, Wo = J.Wo;
  const A *mx = S.st, *my = S.st + P, *exx = S.st + 2 * P, *eyy = S.st + 3 * P, *exy = S.st + 4 * P;
  A* __restrict__ sr = S.crow;
  A* __restrict__ lr = S.crow + P;
  A* __restrict__ kr = S.crow + 2 * P;
  A* __restrict__ tr = S.crow + 3 * P;
  A ls = 0, lc = 0, ll = 0, lk = 0, lt = 0;
#pragma omp simd reduction(+ : ls, lc, ll, lk, lt)
  for (int64_t j = 0; j < Wo; ++j) {
    A sv, cv, lv, kv, tv;
    ssim_components(mx[j], my[j], exx[j], eyy[j], exy[j], J.c1, J.c2, sv, cv, lv, kv, tv);
    sr[j] = sv;
    lr[j] = lv;
    kr[j] = kv;
    tr[j] = tv;
    ls += sv;
    lc += cv;
    ll += lv;
    lk += kv;
    lt += tv;
  }
  if (!owned) return;
  sums[0] += ls; sums[1] += lc; sums[2] += ll; sums[3] += lk; sums[4] += lt;
  if (J.want_map)
    for (int k = 0; k < kNumComponentMaps; ++k)
      store_row(J.mapk[k].row(n, c, p, i), J.mapk[k].s[4], Wo, S.crow + k * P);
}

// One output row of the components' gradient coefficients (ssim_components_grad) into the
// coefficient rows dax, day, dbx, dc, dby (cm + q * Ho * P); w: the plane weights on S, cs, l, c, s
// per output voxel, plus the map weights of S, l, c, s when given (their rows in S.crow).
template <typename T, typename A>
void components_grad_row(const VolJob<T, A>& J, VolScratch<A>& S, int64_t n, int64_t c, int64_t p, int64_t i,
                         const A w[5], A* cm) {
  const int64_t P = J.P, Ho = J.Ho, Wo = J.Wo;
  const A *mx = S.st, *my = S.st + P, *exx = S.st + 2 * P, *eyy = S.st + 3 * P, *exy = S.st + 4 * P;
  const A plane_w[kNumComponentMaps] = {w[0], w[2], w[3], w[4]};  // S, l, c, s
  for (int k = 0; k < kNumComponentMaps; ++k) {
    A* __restrict__ row = S.crow + k * P;
    if (J.dmapk[k].p) {
      load_row(J.dmapk[k].row(n, c, p, i), J.dmapk[k].s[4], Wo, row);
      const A b = plane_w[k];
#pragma omp simd
      for (int64_t j = 0; j < Wo; ++j) row[j] += b;
    } else {
      std::fill(row, row + Wo, plane_w[k]);
    }
  }
  const A *ws = S.crow, *wl = S.crow + P, *wk = S.crow + 2 * P, *wt = S.crow + 3 * P;
  A* __restrict__ q0 = cm + i * P;
  A* __restrict__ q1 = cm + (Ho + i) * P;
  A* __restrict__ q2 = cm + (2 * Ho + i) * P;
  A* __restrict__ q3 = cm + (3 * Ho + i) * P;
  A* __restrict__ q4 = cm + (4 * Ho + i) * P;
  const A wc = w[1];
#pragma omp simd
  for (int64_t j = 0; j < Wo; ++j) {
    A a0, a1, bx, by, cc;
    ssim_components_grad(mx[j], my[j], exx[j], eyy[j], exy[j], J.c1, J.c2, ws[j], wc, wl[j], wk[j], wt[j], a0, a1, bx,
                         by, cc);
    q0[j] = a0;
    q1[j] = a1;
    q2[j] = bx;
    q3[j] = cc;
    q4[j] = by;
  }
}

// One block of one plane. out_sums: (Do, vol_slice_sums) S and cs (and l, c, s) sums of the plane's
// output slices; l1_sums: (D,) |x - y| sums of its source slices; the block writes those of its own slices.
template <typename T, typename A>
void run_volume_block(const VolJob<T, A>& J, int64_t plane, int64_t block, VolScratch<A>& S, double* out_sums,
                      double* l1_sums) {
  const int64_t n = plane / J.C, c = plane % J.C;
  const int wd = J.wd, no = vol_slice_sums(J);
  const int64_t P = J.P, Ho = J.Ho, Wo = J.Wo, planeq = J.nq * Ho * P;
  const int64_t s_a = block * J.block, s_b = std::min(J.D, s_a + J.block);
  const int64_t own_a = s_a, own_b = std::min(s_b, J.Do);
  int64_t pa = own_a, pb = own_b;
  if (J.grad) {
    pa = std::max<int64_t>(0, s_a + J.offd - (wd - 1));
    pb = std::min(J.Do, s_b + J.offd);
  }
  const A* wt = J.weights ? J.weights + plane * J.nw : nullptr;
  const A count = static_cast<A>(J.Do * Ho * Wo);
  const A ws = wt ? wt[0] / count : A(0);
  const A wc = wt ? wt[1] / count : A(0);
  const A wl = wt ? wt[2] / static_cast<A>(J.D * J.H * J.W) : A(0);
  // the components' plane weights per output voxel on S, cs, l, c, s
  A wcomp[5] = {ws, wc, A(0), A(0), A(0)};
  if (wt && J.comp)
    for (int k = 0; k < 3; ++k) wcomp[2 + k] = wt[3 + k] / count;
  if (J.grad) std::fill(S.acc, S.acc + (s_b - s_a) * J.nq * J.H * J.AP, A(0));
  const int64_t u_end = pb > pa ? pb + wd - 1 : pa;  // a block may own no output slice (valid)
  for (int64_t u = pa; u < u_end; ++u) {
    slice_stats(J, S, n, c, source_index(u, J.D, J.offd, J.padding), S.ring + ((u - pa) % wd) * S.slice);
    if (u < pa + wd - 1) continue;
    const int64_t p = u - wd + 1;
    const bool owned = p >= own_a && p < own_b;
    A* cm = J.grad ? S.cring + (p % wd) * planeq : nullptr;
    double sum_s = 0, sum_cs = 0;
    double comp_sums[5] = {0, 0, 0, 0, 0};  // J.comp: S, cs, l, c, s
    const A* ring[kMaxWin];
    for (int k = 0; k < wd; ++k) ring[k] = S.ring + ((p - pa + k) % wd) * S.slice;
    for (int64_t i = 0; i < Ho; ++i) {
      for (int q = 0; q < kVolStats; ++q) {  // depth blur of row i
        const A* src[kMaxWin];
        for (int k = 0; k < wd; ++k) src[k] = ring[k] + (q * Ho + i) * P;
        blur_rows_sym(src, J.gd, wd, Wo, S.st + q * P);
      }
      if (J.comp) {
        if (J.grad)
          components_grad_row(J, S, n, c, p, i, wcomp, cm);
        else
          components_row(J, S, n, c, p, i, owned, comp_sums);
        continue;
      }
      const A *mx = S.st, *my = S.st + P, *exx = S.st + 2 * P, *eyy = S.st + 3 * P, *exy = S.st + 4 * P;
      A* srow = S.rx;  // free here: the row of S values
      A ls = 0, lc = 0;
      if (J.grad) {
        A* w = S.ry;  // free here: the weight of each column's S (ws + the incoming map gradient)
        if (J.dmap.p) {
          load_row(J.dmap.row(n, c, p, i), J.dmap.s[4], Wo, w);
#pragma omp simd
          for (int64_t j = 0; j < Wo; ++j) w[j] += ws;
        } else {
          std::fill(w, w + Wo, ws);
        }
        A *dax = cm + i * P, *day = cm + (Ho + i) * P, *db = cm + (2 * Ho + i) * P, *dc = cm + (3 * Ho + i) * P;
#pragma omp simd reduction(+ : ls, lc)
        for (int64_t j = 0; j < Wo; ++j) {
          A sv, cv, a0, a1, b, cc;
          ssim_value_grad(mx[j], my[j], exx[j], eyy[j], exy[j], J.c1, J.c2, w[j], wc, sv, cv, a0, a1, b, cc);
          dax[j] = a0;
          day[j] = a1;
          db[j] = b;
          dc[j] = cc;
          srow[j] = sv;
          ls += sv;
          lc += cv;
        }
      } else {
#pragma omp simd reduction(+ : ls, lc)
        for (int64_t j = 0; j < Wo; ++j) {
          A sv, cv;
          ssim_value(mx[j], my[j], exx[j], eyy[j], exy[j], J.c1, J.c2, sv, cv);
          srow[j] = sv;
          ls += sv;
          lc += cv;
        }
      }
      if (owned) {
        sum_s += ls;
        sum_cs += lc;
        if (J.want_map) {
          store_row(J.map.row(n, c, p, i), J.map.s[4], Wo, srow);
        }
      }
    }
    if (owned) {
      if (J.comp) {
        for (int q = 0; q < no; ++q) out_sums[no * p + q] = comp_sums[q];
      } else {
        out_sums[2 * p] = sum_s;
        out_sums[2 * p + 1] = sum_cs;
      }
    }
    if (J.grad) finalize_slice(J, S, p, pa, p, s_a, s_b);  // padded slice p: no later output reads it
  }
  if (J.grad)
    for (int64_t u = pb; u < pb + wd - 1; ++u) finalize_slice(J, S, u, pa, pb - 1, s_a, s_b);
  if (J.l1 || J.grad) {
    for (int64_t s = s_a; s < s_b; ++s) {
      double sum_l1 = 0;
      for (int64_t r = 0; r < J.H; ++r) {
        load_row(J.x.row(n, c, s, r), J.x.s[4], J.W, S.xr);
        load_row(J.y.row(n, c, s, r), J.y.s[4], J.W, S.yr);
        if (J.l1) {
          A l1 = 0;
#pragma omp simd reduction(+ : l1)
          for (int64_t j = 0; j < J.W; ++j) {
            const A d = S.xr[j] - S.yr[j];
            l1 += d < A(0) ? -d : d;
          }
          sum_l1 += l1;
        }
        if (!J.grad) continue;
        const A* a = S.acc + (s - s_a) * J.nq * J.H * J.AP;
        const A *ax = a + r * J.AP, *ay = a + (J.H + r) * J.AP, *ab = a + (2 * J.H + r) * J.AP,
                *ac = a + (3 * J.H + r) * J.AP;
        const A* aby = J.comp ? a + (4 * J.H + r) * J.AP : ab;  // dF/dy's variance coefficient
        const A *xr = S.xr, *yr = S.yr;
        A *gxr = S.rxx, *gyr = S.ryy;  // free here, >= W long
#pragma omp simd
        for (int64_t j = 0; j < J.W; ++j) {
          const A vx = xr[j], vy = yr[j], d = vx - vy;
          const A sg = wl * (static_cast<A>(d > A(0)) - static_cast<A>(d < A(0)));
          gxr[j] = ax[j] + A(2) * vx * ab[j] + vy * ac[j] + sg;
          gyr[j] = ay[j] + A(2) * vy * aby[j] + vx * ac[j] - sg;
        }
        if (J.gx.p) store_row(J.gx.row(n, c, s, r), J.gx.s[4], J.W, gxr);
        if (J.gy.p) store_row(J.gy.row(n, c, s, r), J.gy.s[4], J.W, gyr);
      }
      l1_sums[s] = sum_l1;
    }
  }
}

// x and the window as checked by host::check_ssim_inputs (5-D, three axes)
template <typename T, typename A>
void setup_volume(VolJob<T, A>& J, const at::Tensor& x, const at::Tensor& y, const host::SsimWindow& win, double c1,
                  double c2, int64_t padding) {
  J.x = View5<const T>(x);
  J.y = View5<const T>(y);
  J.C = x.size(1); J.D = x.size(2); J.H = x.size(3); J.W = x.size(4);
  J.wd = static_cast<int>(win.size[0]);
  J.wh = static_cast<int>(win.size[1]);
  J.ww = static_cast<int>(win.size[2]);
  J.padding = static_cast<int>(padding);
  const bool valid = padding == kValid;
  J.Do = valid ? J.D - J.wd + 1 : J.D;
  J.Ho = valid ? J.H - J.wh + 1 : J.H;
  J.Wo = valid ? J.W - J.ww + 1 : J.W;
  J.offd = valid ? 0 : J.wd / 2;
  J.offh = valid ? 0 : J.wh / 2;
  J.offw = valid ? 0 : J.ww / 2;
  J.Wp = J.Wo + J.ww - 1;
  J.Hp = J.Ho + J.wh - 1;
  J.P = row_pitch<A>(round_up(std::max<int64_t>(J.Wo, 1), kLanes));
  J.AP = row_pitch<A>(round_up(J.W, kLanes));
  double g[kMaxWin];
  gaussian_window(J.wd, win.sigma[0], g);
  for (int k = 0; k < J.wd; ++k) J.gd[k] = static_cast<A>(g[k]);
  gaussian_window(J.wh, win.sigma[1], g);
  for (int k = 0; k < J.wh; ++k) J.gh[k] = static_cast<A>(g[k]);
  gaussian_window(J.ww, win.sigma[2], g);
  for (int k = 0; k < J.ww; ++k) J.gw[k] = static_cast<A>(g[k]);
  J.c1 = static_cast<A>(c1);
  J.c2 = static_cast<A>(c2);
  J.colsrc.resize(J.Wp);
  for (int64_t j = 0; j < J.Wp; ++j) J.colsrc[j] = source_index(j, J.W, J.offw, J.padding);
}

// Depth blocks: as few as keep every thread busy (planes x blocks >= threads), at least
// kMinDepthBlock slices, a block's gradient accumulators within kVolAccBytes. Call after
// J.grad is set. (The partition changes no result: see the head of this file.)
template <typename T, typename A>
void set_volume_blocks(VolJob<T, A>& J, int64_t planes) {
  const int64_t threads = std::max<int64_t>(1, at::get_num_threads());
  const int64_t per_plane = std::max<int64_t>(1, (threads + planes - 1) / planes);
  int64_t block = (J.D + per_plane - 1) / per_plane;
  if (J.grad)
    block = std::min(block, kVolAccBytes / static_cast<int64_t>(J.nq * J.H * J.AP * sizeof(A)));
  J.block = std::max(block, kMinDepthBlock);
  J.nblocks = (J.D + J.block - 1) / J.block;
}

// Runs every block of every plane; returns per-plane sums (planes, 6) in double: S and cs
// over the output slices, |x - y| over the source slices, (J.comp) l, c, s over the output
// slices, each added in slice order.
template <typename T, typename A>
std::vector<double> run_volume(VolJob<T, A>& J, int64_t planes) {
  constexpr int NS = kNumComponentStats;
  set_volume_blocks(J, planes);
  const int64_t tasks = planes * J.nblocks, no = vol_slice_sums(J);
  std::vector<double> out_sums(planes * J.Do * no, 0.0), l1_sums(planes * J.D, 0.0);
  at::parallel_for(0, tasks, 1, [&](int64_t tb, int64_t te) {
    VolScratch<A> S;
    S.init(J);
    for (int64_t t = tb; t < te; ++t) {
      const int64_t plane = t / J.nblocks;
      run_volume_block<T, A>(J, plane, t % J.nblocks, S, &out_sums[plane * J.Do * no], &l1_sums[plane * J.D]);
    }
  });
  constexpr int kCol[5] = {0, 1, 3, 4, 5};  // the output slices' sums S, cs, l, c, s in the plane's
  std::vector<double> plane_sums(planes * NS, 0.0);
  for (int64_t pl = 0; pl < planes; ++pl) {
    for (int64_t p = 0; p < J.Do; ++p)
      for (int q = 0; q < no; ++q) plane_sums[NS * pl + kCol[q]] += out_sums[(pl * J.Do + p) * no + q];
    for (int64_t s = 0; s < J.D; ++s) plane_sums[NS * pl + 2] += l1_sums[pl * J.D + s];
  }
  return plane_sums;
}
