// CPU plane kernels of the SSIM family on volumes, (N, C, D, H, W) with a separable 3-D
// window (wd, wh, ww taps): included by csrc/cpu/ssim_impl.h inside its per-ISA namespace
// (uses its row helpers and the formulas of csrc/common/ssim_math.h).
//
// Work unit: one block of kDepthBlock depth slices of one (n, c) plane. For every padded
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
//
// Per-block sums (S, cs, |x - y|) are summed in block order: results do not depend on the
// thread count.
#pragma once

// Depth slices per work unit: >= the largest offset (kMaxWin / 2), which the reflect
// folds of a block rely on (as kBand for the rows of images).
constexpr int64_t kDepthBlock = 16;
static_assert(kDepthBlock >= kMaxWin / 2, "a depth block must hold the largest padding offset");

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
  const A* weights = nullptr;  // (planes, 3) or null
  int64_t C = 0, D = 0, H = 0, W = 0, Do = 0, Ho = 0, Wo = 0, offd = 0, offh = 0, offw = 0;
  int64_t Wp = 0, Hp = 0, P = 0, AP = 0, nblocks = 0;
  int wd = 0, wh = 0, ww = 0, padding = 0;
  A gd[kMaxWin] = {}, gh[kMaxWin] = {}, gw[kMaxWin] = {};
  A c1 = 0, c2 = 0;
  bool l1 = false, want_map = false, grad = false;
  std::vector<int64_t> colsrc;  // padded column -> source column or -1, size Wp
};

constexpr int kVolStats = 5;  // x, y, x^2, y^2, xy (float64 too: one code path)

template <typename A> struct VolScratch {
  std::vector<A> buf;
  A *h, *ring, *st, *rx, *ry, *cring, *vt, *vr, *t, *acc, *xr, *yr;
  int64_t slice = 0;  // elements of one slice of the five statistics: 5 * Ho * P
  template <typename T> void init(const VolJob<T, A>& J) {
    slice = kVolStats * J.Ho * J.P;
    const int64_t plane4 = 4 * J.Ho * J.P;
    const int64_t row_in = J.P + J.ww + kLanes;  // a padded source row (Wp <= P + ww - 1)
    const int64_t acc_n = J.grad ? kDepthBlock * 4 * J.H * J.AP : 0;
    const int64_t need = kVolStats * J.Hp * J.P + J.wd * slice + kVolStats * J.P + 2 * row_in +
                         (J.grad ? J.wd * plane4 + plane4 + 4 * J.Hp * (J.P + 2 * J.ww) + 4 * (J.P + 2 * J.ww) : 0) +
                         acc_n + 2 * J.W + 64;
    buf.assign(need, A(0));
    A* p = buf.data();
    auto take = [&](int64_t n) { A* r = p; p += n; return r; };
    h = take(kVolStats * J.Hp * J.P);  // horizontal blurs of the slice's padded rows
    ring = take(J.wd * slice);          // 2-D statistics of the last wd padded slices
    st = take(kVolStats * J.P);         // one row of the depth-blurred statistics
    rx = take(row_in); ry = take(row_in);
    cring = J.grad ? take(J.wd * plane4) : nullptr;  // coefficient maps of the last wd output slices
    vt = J.grad ? take(plane4) : nullptr;            // a padded slice's depth adjoint
    vr = J.grad ? take(4 * J.Hp * (J.P + 2 * J.ww)) : nullptr;  // its vertical adjoint, zero column margins
    t = J.grad ? take(4 * (J.P + 2 * J.ww)) : nullptr;
    acc = J.grad ? take(acc_n) : nullptr;
    xr = take(J.W); yr = take(J.W);
  }
};

// out[j'] = x(row, colsrc[j']) for j' < Wp, zero up to len.
template <typename T, typename A>
FASTIQA_INLINE void vol_gather(const T* row, int64_t sw, const VolJob<T, A>& J, A* out, int64_t len) {
  for (int64_t j = 0; j < J.Wp; ++j) out[j] = J.colsrc[j] < 0 ? A(0) : to_acc<A>(row[J.colsrc[j] * sw]);
  for (int64_t j = J.Wp; j < len; ++j) out[j] = A(0);
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
    vol_gather(J.x.row(n, c, s, sr), J.x.s[4], J, S.rx, P + J.ww);
    vol_gather(J.y.row(n, c, s, sr), J.y.s[4], J, S.ry, P + J.ww);
    const A* __restrict__ xv = S.rx;
    const A* __restrict__ yv = S.ry;
    A* __restrict__ h0 = hr;
    A* __restrict__ h1 = hr + P;
    A* __restrict__ h2 = hr + 2 * P;
    A* __restrict__ h3 = hr + 3 * P;
    A* __restrict__ h4 = hr + 4 * P;
#pragma omp simd
    for (int64_t j = 0; j < Wo; ++j) {
      A a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0;
      for (int k = 0; k < J.ww; ++k) {
        const A g = J.gw[k], vx = xv[j + k], vy = yv[j + k];
        a0 += g * vx;
        a1 += g * vy;
        a2 += g * (vx * vx);
        a3 += g * (vy * vy);
        a4 += g * (vx * vy);
      }
      h0[j] = a0; h1[j] = a1; h2[j] = a2; h3[j] = a3; h4[j] = a4;
    }
  }
  for (int64_t i = 0; i < J.Ho; ++i) {
    for (int q = 0; q < kVolStats; ++q) {
      A* __restrict__ o = out + (q * J.Ho + i) * P;
#pragma omp simd
      for (int64_t j = 0; j < Wo; ++j) o[j] = A(0);
      for (int k = 0; k < J.wh; ++k) {
        const A g = J.gh[k];
        const A* __restrict__ hv = S.h + (i + k) * kVolStats * P + q * P;
#pragma omp simd
        for (int64_t j = 0; j < Wo; ++j) o[j] += g * hv[j];
      }
    }
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
  const int64_t P = J.P, Ho = J.Ho, Wo = J.Wo, plane4 = 4 * Ho * P;
  const int k_lo = static_cast<int>(std::max<int64_t>(0, u - p_last));
  const int k_hi = static_cast<int>(std::min<int64_t>(J.wd - 1, u - pa));
  std::fill(S.vt, S.vt + plane4, A(0));
  for (int k = k_lo; k <= k_hi; ++k) {
    const A g = J.gd[k];
    const A* __restrict__ cm = S.cring + ((u - k) % J.wd) * plane4;
    A* __restrict__ v = S.vt;
#pragma omp simd
    for (int64_t e = 0; e < plane4; ++e) v[e] += g * cm[e];
  }
  // vertical adjoint onto the padded rows r = 0 .. Hp - 1: vr[(q * Hp + r) * RP + ww - 1 + j]
  // (ww - 1 zeros before output column 0, zeros after Wo - 1: the horizontal adjoint's margins)
  const int64_t RP = P + 2 * J.ww;
  for (int q = 0; q < 4; ++q)
    for (int64_t r = 0; r < J.Hp; ++r) {
      A* __restrict__ o = S.vr + (q * J.Hp + r) * RP;
      std::fill(o, o + RP, A(0));
      const int klo = static_cast<int>(std::max<int64_t>(0, r - (Ho - 1)));
      const int khi = static_cast<int>(std::min<int64_t>(J.wh - 1, r));
      for (int k = klo; k <= khi; ++k) {
        const A g = J.gh[k];
        const A* __restrict__ v = S.vt + (q * Ho + (r - k)) * P;
#pragma omp simd
        for (int64_t j = 0; j < Wo; ++j) o[J.ww - 1 + j] += g * v[j];
      }
    }
  // horizontal adjoint and folds onto the source rows and columns
  A* a = S.acc + (s - s_a) * 4 * J.H * J.AP;
  for (int64_t r = 0; r < J.Hp; ++r) {
    const int64_t sr = source_index(r, J.H, J.offh, J.padding);
    if (sr < 0) continue;
    for (int q = 0; q < 4; ++q) {
      const A* __restrict__ in = S.vr + (q * J.Hp + r) * RP;  // output column j at in[ww - 1 + j]
      A* __restrict__ t = S.t;
      // padded column pc receives sum_k gw[k] coef(pc - k), coef(j) = in[ww - 1 + j]
#pragma omp simd
      for (int64_t pc = 0; pc < J.Wp; ++pc) {
        A acc = 0;
        for (int k = 0; k < J.ww; ++k) acc += J.gw[k] * in[pc + J.ww - 1 - k];
        t[pc] = acc;
      }
      A* dst = a + (q * J.H + sr) * J.AP;
      for (int64_t pc = 0; pc < J.Wp; ++pc)
        if (J.colsrc[pc] >= 0) dst[J.colsrc[pc]] += t[pc];
    }
  }
}

// One block of one plane. sums: S, cs, |x-y| sums of the block's own slices.
template <typename T, typename A>
void run_volume_block(const VolJob<T, A>& J, int64_t plane, int64_t block, VolScratch<A>& S, double* sums) {
  const int64_t n = plane / J.C, c = plane % J.C;
  const int wd = J.wd;
  const int64_t P = J.P, Ho = J.Ho, Wo = J.Wo, plane4 = 4 * Ho * P;
  const int64_t s_a = block * kDepthBlock, s_b = std::min(J.D, s_a + kDepthBlock);
  const int64_t own_a = s_a, own_b = std::min(s_b, J.Do);
  int64_t pa = own_a, pb = own_b;
  if (J.grad) {
    pa = std::max<int64_t>(0, s_a + J.offd - (wd - 1));
    pb = std::min(J.Do, s_b + J.offd);
  }
  const A* wt = J.weights ? J.weights + plane * kNumWeights : nullptr;
  const A count = static_cast<A>(J.Do * Ho * Wo);
  const A ws = wt ? wt[0] / count : A(0);
  const A wc = wt ? wt[1] / count : A(0);
  const A wl = wt ? wt[2] / static_cast<A>(J.D * J.H * J.W) : A(0);
  double sum_s = 0, sum_cs = 0, sum_l1 = 0;
  if (J.grad) std::fill(S.acc, S.acc + (s_b - s_a) * 4 * J.H * J.AP, A(0));
  const int64_t u_end = pb > pa ? pb + wd - 1 : pa;  // a block may own no output slice (valid)
  for (int64_t u = pa; u < u_end; ++u) {
    slice_stats(J, S, n, c, source_index(u, J.D, J.offd, J.padding), S.ring + ((u - pa) % wd) * S.slice);
    if (u < pa + wd - 1) continue;
    const int64_t p = u - wd + 1;
    const bool owned = p >= own_a && p < own_b;
    A* cm = J.grad ? S.cring + (p % wd) * plane4 : nullptr;
    for (int64_t i = 0; i < Ho; ++i) {
      for (int q = 0; q < kVolStats; ++q) {  // depth blur of row i
        A* __restrict__ o = S.st + q * P;
#pragma omp simd
        for (int64_t j = 0; j < Wo; ++j) o[j] = A(0);
        for (int k = 0; k < wd; ++k) {
          const A g = J.gd[k];
          const A* __restrict__ v = S.ring + ((p - pa + k) % wd) * S.slice + (q * Ho + i) * P;
#pragma omp simd
          for (int64_t j = 0; j < Wo; ++j) o[j] += g * v[j];
        }
      }
      const A *mx = S.st, *my = S.st + P, *exx = S.st + 2 * P, *eyy = S.st + 3 * P, *exy = S.st + 4 * P;
      A* srow = S.rx;  // free here: the row of S values
      A ls = 0, lc = 0;
      if (J.grad) {
        const T* drow = J.dmap.p ? J.dmap.row(n, c, p, i) : nullptr;
        A *dax = cm + i * P, *day = cm + (Ho + i) * P, *db = cm + (2 * Ho + i) * P, *dc = cm + (3 * Ho + i) * P;
        for (int64_t j = 0; j < Wo; ++j) {
          const A w = drow ? ws + to_acc<A>(drow[j * J.dmap.s[4]]) : ws;
          A sv, cv;
          ssim_value_grad(mx[j], my[j], exx[j], eyy[j], exy[j], J.c1, J.c2, w, wc, sv, cv, dax[j], day[j], db[j],
                          dc[j]);
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
          T* mrow = J.map.row(n, c, p, i);
          for (int64_t j = 0; j < Wo; ++j) mrow[j * J.map.s[4]] = from_acc<T>(srow[j]);
        }
      }
    }
    if (J.grad) finalize_slice(J, S, p, pa, p, s_a, s_b);  // padded slice p: no later output reads it
  }
  if (J.grad)
    for (int64_t u = pb; u < pb + wd - 1; ++u) finalize_slice(J, S, u, pa, pb - 1, s_a, s_b);
  if (J.l1 || J.grad) {
    for (int64_t s = s_a; s < s_b; ++s)
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
        const A* a = S.acc + (s - s_a) * 4 * J.H * J.AP;
        const A *ax = a + r * J.AP, *ay = a + (J.H + r) * J.AP, *ab = a + (2 * J.H + r) * J.AP,
                *ac = a + (3 * J.H + r) * J.AP;
        for (int64_t j = 0; j < J.W; ++j) {
          const A vx = S.xr[j], vy = S.yr[j], d = vx - vy;
          const A sg = wl * (static_cast<A>(d > A(0)) - static_cast<A>(d < A(0)));
          const A gxv = ax[j] + A(2) * vx * ab[j] + vy * ac[j] + sg;
          const A gyv = ay[j] + A(2) * vy * ab[j] + vx * ac[j] - sg;
          if (J.gx.p) J.gx.row(n, c, s, r)[j * J.gx.s[4]] = from_acc<T>(gxv);
          if (J.gy.p) J.gy.row(n, c, s, r)[j * J.gy.s[4]] = from_acc<T>(gyv);
        }
      }
  }
  sums[0] = sum_s;
  sums[1] = sum_cs;
  sums[2] = sum_l1;
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
  J.nblocks = (J.D + kDepthBlock - 1) / kDepthBlock;
}

// Runs every block of every plane; returns per-plane sums (planes, 3) in double.
template <typename T, typename A>
std::vector<double> run_volume(const VolJob<T, A>& J, int64_t planes) {
  const int64_t tasks = planes * J.nblocks;
  std::vector<double> block_sums(tasks * 3, 0.0);
  at::parallel_for(0, tasks, 1, [&](int64_t tb, int64_t te) {
    VolScratch<A> S;
    S.init(J);
    for (int64_t t = tb; t < te; ++t)
      run_volume_block<T, A>(J, t / J.nblocks, t % J.nblocks, S, &block_sums[3 * t]);
  });
  std::vector<double> plane_sums(planes * 3, 0.0);
  for (int64_t t = 0; t < tasks; ++t)
    for (int q = 0; q < 3; ++q) plane_sums[3 * (t / J.nblocks) + q] += block_sums[3 * t + q];
  return plane_sums;
}
