// CUDA kernels of the masked SSIM (issue 19 item 3; torch-free, launched by
// csrc/cuda/ssim_masked_host.cpp; contract: fastiqa/backends/reference/_ssim_masked.py).
// Direct, not separable, no shared-memory tiles: correctness first (about k^2 taps per output
// pixel for a k x k window; the unmasked kernels of ssim.cu are the model for a tiled version).
//   forward (masked_fwd_kernel): one thread per output position sums the window's taps of the six
//     products m, m x, m y, m x^2, m y^2, m x y over the padded grid (zero padding: a 0 of weight 1;
//     reflect: the mirrored pixel with its weight), S = ssim_value of the normalised statistics
//     (csrc/common/ssim_math.h; 0 where W = G*m = 0); the same grid-stride loop sums m |x - y| and m
//     over the source pixels; block sums (block_sum, fixed order) go to partials per (plane, block),
//     which the host sums in block order: bitwise reproducible.
//   backward: masked_coef_kernel writes the four coefficient maps (d S / d mu_x, mu_y, E[x^2] (= E[y^2]'s),
//     E[xy]) times w_p / W, w_p = d_planes[0] m_c + d_map(p); masked_grad_kernel: one thread per
//     source pixel gathers them over the padded positions that copy it (up to 3 per axis with
//     reflect) and the taps: gx = m (K_mx + 2 x K_b + y K_c + d_planes[2] sign(x - y)), 0 where m = 0.
// Images are volumes of depth 1 (kd = 1). Index arithmetic in 32 bits (the launchers refuse
// planes of 2^31 pixels or more): no 64-bit division in the loops.
#include <cuda_runtime.h>

#include "../common/ssim_math.h"
#include "cuda_types.cuh"
#include "launch.cuh"
#include "ssim_masked_launch.h"

namespace fastiqa {
namespace cuda {
namespace {

using namespace fastiqa::ssim;

constexpr int kThreads = 256;
constexpr int kItems = 4;               // forward positions per thread, about
constexpr int64_t kMaxFwdBlocks = 1024;  // per plane

struct Plane {
  int64_t n, c;
};

__device__ __forceinline__ Plane plane_of(const MaskedGeometry& g) {
  const uint32_t p = blockIdx.y, C = static_cast<uint32_t>(g.C);
  return {static_cast<int64_t>(p / C), static_cast<int64_t>(p % C)};
}

__device__ __forceinline__ int64_t offset(const int64_t* s, Plane p, int64_t d, int64_t h, int64_t w) {
  return p.n * s[0] + p.c * s[1] + d * s[2] + h * s[3] + w * s[4];
}

__device__ __forceinline__ int pad_off(const MaskedGeometry& g, int k) { return g.padding == kValid ? 0 : k / 2; }

// Source index of padded index u along an axis of length L and k taps (k = 1: the depth of an image).
__device__ __forceinline__ int64_t src_of(int64_t u, int64_t L, int k, const MaskedGeometry& g) {
  return k == 1 ? u : source_index(u, L, pad_off(g, k), g.padding);
}

// The window's taps as A in shared memory (gd, then gh, then gw: kMaxWin each): indexed by the tap
// loops, which would otherwise index the kernel parameters dynamically (a local copy, and spills).
constexpr int kTaps = 3 * kMaxWin;
template <typename A> __device__ __forceinline__ void load_taps(const MaskedGeometry& g, A* taps) {
  for (int i = threadIdx.x; i < kTaps; i += blockDim.x) {
    const int a = i / kMaxWin, k = i - a * kMaxWin;
    taps[i] = static_cast<A>(a == 0 ? g.gd[k] : a == 1 ? g.gh[k] : g.gw[k]);
  }
  __syncthreads();
}

// Output position t -> (o, i, j).
__device__ __forceinline__ void out_pos(const MaskedGeometry& g, uint32_t t, int64_t& o, int64_t& i, int64_t& j) {
  const uint32_t Wo = static_cast<uint32_t>(g.Wo), Ho = static_cast<uint32_t>(g.Ho);
  const uint32_t r = t / Wo;
  j = t - r * Wo;
  o = r / Ho;
  i = r - static_cast<uint32_t>(o) * Ho;
}

// The six window sums of output position (o, i, j): s[0] = W, then m x, m y, m x^2, m y^2, m x y.
template <typename T, typename A>
__device__ __forceinline__ void window_sums(const T* __restrict__ x, const T* __restrict__ y, const A* __restrict__ m,
                                            const MaskedGeometry& g, const A* taps, Plane p, int64_t o, int64_t i,
                                            int64_t j, A* s) {
#pragma unroll
  for (int q = 0; q < 6; ++q) s[q] = A(0);
  for (int a = 0; a < g.kd; ++a) {
    const int64_t sd = src_of(o + a, g.D, g.kd, g);
    for (int b = 0; b < g.kh; ++b) {
      const int64_t sh = src_of(i + b, g.H, g.kh, g);
      const A gab = taps[a] * taps[kMaxWin + b];
      for (int c = 0; c < g.kw; ++c) {
        const int64_t sw = src_of(j + c, g.W, g.kw, g);
        const A gg = gab * taps[2 * kMaxWin + c];
        if (sd < 0 || sh < 0 || sw < 0) {  // zero padding: a 0 of weight 1
          s[0] += gg;
          continue;
        }
        const A mv = m[offset(g.sm, p, sd, sh, sw)];
        const A xv = load_as<A>(x + offset(g.sx, p, sd, sh, sw)), yv = load_as<A>(y + offset(g.sy, p, sd, sh, sw));
        const A mx = mv * xv, my = mv * yv;
        s[0] += gg * mv;
        s[1] += gg * mx;
        s[2] += gg * my;
        s[3] += gg * (mx * xv);
        s[4] += gg * (my * yv);
        s[5] += gg * (mx * yv);
      }
    }
  }
}

// m at the window centre of output position (o, i, j).
template <typename A>
__device__ __forceinline__ A centre(const A* __restrict__ m, const MaskedGeometry& g, Plane p, int64_t o, int64_t i,
                                    int64_t j) {
  const bool valid = g.padding == kValid;
  return m[offset(g.sm, p, o + (valid ? g.kd / 2 : 0), i + (valid ? g.kh / 2 : 0), j + (valid ? g.kw / 2 : 0))];
}

template <typename T, typename A>
__global__ void __launch_bounds__(kThreads, 1)
    masked_fwd_kernel(const T* __restrict__ x, const T* __restrict__ y, const A* __restrict__ m, MaskedGeometry g,
                      T* __restrict__ map, A* __restrict__ partials, uint32_t nout, uint32_t nsrc) {
  __shared__ A shared[kThreads / 32];
  __shared__ A taps[kTaps];
  load_taps(g, taps);
  const Plane p = plane_of(g);
  const A c1 = static_cast<A>(g.c1), c2 = static_cast<A>(g.c2);
  A ss = 0, sw = 0, l1 = 0, msum = 0;
  const uint32_t total = nout > nsrc ? nout : nsrc, stride = gridDim.x * kThreads;
  for (uint32_t t = blockIdx.x * kThreads + threadIdx.x; t < total; t += stride) {
    if (t < nout) {
      int64_t o, i, j;
      out_pos(g, t, o, i, j);
      A s[6];
      window_sums(x, y, m, g, taps, p, o, i, j, s);
      A v = 0, cs = 0;
      if (s[0] > A(0)) ssim_value<A>(s[1] / s[0], s[2] / s[0], s[3] / s[0], s[4] / s[0], s[5] / s[0], c1, c2, v, cs);
      const A mc = centre(m, g, p, o, i, j);
      ss += mc * v;
      sw += mc;
      if (map) store_as(map + offset(g.smap, p, o, i, j), v);
    }
    if (t < nsrc) {
      const uint32_t W = static_cast<uint32_t>(g.W), H = static_cast<uint32_t>(g.H);
      const uint32_t r = t / W, w = t - r * W, d = r / H, h = r - d * H;
      const A mv = m[offset(g.sm, p, d, h, w)];
      const A dv = load_as<A>(x + offset(g.sx, p, d, h, w)) - load_as<A>(y + offset(g.sy, p, d, h, w));
      l1 += mv * (dv < A(0) ? -dv : dv);
      msum += mv;
    }
  }
  const A sums[4] = {ss, sw, l1, msum};
  A* out = partials + (static_cast<int64_t>(blockIdx.y) * gridDim.x + blockIdx.x) * 4;
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    const A v = block_sum<kThreads>(sums[k], shared);
    if (threadIdx.x == 0) out[k] = v;
  }
}

template <typename T, typename A>
__global__ void __launch_bounds__(kThreads, 1)
    masked_coef_kernel(const T* __restrict__ x, const T* __restrict__ y, const A* __restrict__ m, MaskedGeometry g,
                       const A* __restrict__ d_planes, const T* __restrict__ d_map, A* __restrict__ coef,
                       uint32_t nout) {
  __shared__ A taps[kTaps];
  load_taps(g, taps);
  const uint32_t t = blockIdx.x * kThreads + threadIdx.x;
  if (t >= nout) return;
  const Plane p = plane_of(g);
  int64_t o, i, j;
  out_pos(g, t, o, i, j);
  A* k = coef + static_cast<int64_t>(blockIdx.y) * 4 * nout + t;
  A w = d_planes[static_cast<int64_t>(blockIdx.y) * 4] * centre(m, g, p, o, i, j);
  if (d_map) w += load_as<A>(d_map + offset(g.sdm, p, o, i, j));
  A s[6];
  window_sums(x, y, m, g, taps, p, o, i, j, s);
  A dax = 0, day = 0, db = 0, dc = 0;
  if (s[0] > A(0) && w != A(0)) {
    A v, cs;
    ssim_value_grad<A>(s[1] / s[0], s[2] / s[0], s[3] / s[0], s[4] / s[0], s[5] / s[0], static_cast<A>(g.c1),
                       static_cast<A>(g.c2), w, A(0), v, cs, dax, day, db, dc);
    dax /= s[0];
    day /= s[0];
    db /= s[0];
    dc /= s[0];
  }
  k[0] = dax;
  k[nout] = day;
  k[2 * static_cast<int64_t>(nout)] = db;
  k[3 * static_cast<int64_t>(nout)] = dc;
}

// The padded indices of one axis that copy source index q (the main one, and with reflect
// padding its mirror images); returns their count (1..3).
__device__ __forceinline__ int copies(int64_t q, int64_t L, int k, const MaskedGeometry& g, int64_t* u) {
  if (k == 1) {
    u[0] = q;
    return 1;
  }
  const int64_t off = pad_off(g, k), Lp = (g.padding == kValid ? L - k + 1 : L) + k - 1;
  const int64_t cand[3] = {q + off, off - q, off + 2 * (L - 1) - q};
  int n = 0;
#pragma unroll
  for (int c = 0; c < 3; ++c) {
    const int64_t v = cand[c];
    if (v < 0 || v >= Lp || source_index(v, L, off, g.padding) != q) continue;
    bool seen = false;
    for (int e = 0; e < n; ++e) seen = seen || u[e] == v;
    if (!seen) u[n++] = v;
  }
  return n;
}

template <typename T, typename A>
__global__ void __launch_bounds__(kThreads, 1)
    masked_grad_kernel(const T* __restrict__ x, const T* __restrict__ y, const A* __restrict__ m, MaskedGeometry g,
                       const A* __restrict__ d_planes, const A* __restrict__ coef, T* __restrict__ gx,
                       T* __restrict__ gy, uint32_t nout, uint32_t nsrc) {
  __shared__ A taps[kTaps];
  load_taps(g, taps);
  const uint32_t t = blockIdx.x * kThreads + threadIdx.x;
  if (t >= nsrc) return;
  const Plane p = plane_of(g);
  const uint32_t W = static_cast<uint32_t>(g.W), H = static_cast<uint32_t>(g.H);
  const uint32_t r = t / W, w = t - r * W, d = r / H, h = r - d * H;
  const A* k0 = coef + static_cast<int64_t>(blockIdx.y) * 4 * nout;
  int64_t ud[3], uh[3], uw[3];
  const int nd = copies(d, g.D, g.kd, g, ud), nh = copies(h, g.H, g.kh, g, uh), nw = copies(w, g.W, g.kw, g, uw);
  A kx = 0, ky = 0, kb = 0, kc = 0;
  for (int ed = 0; ed < nd; ++ed)
    for (int a = 0; a < g.kd; ++a) {
      const int64_t od = ud[ed] - a;
      if (od < 0 || od >= g.Do) continue;
      for (int eh = 0; eh < nh; ++eh)
        for (int b = 0; b < g.kh; ++b) {
          const int64_t oi = uh[eh] - b;
          if (oi < 0 || oi >= g.Ho) continue;
          const A gab = taps[a] * taps[kMaxWin + b];
          const int64_t row = (od * g.Ho + oi) * g.Wo;
          for (int ew = 0; ew < nw; ++ew)
            for (int c = 0; c < g.kw; ++c) {
              const int64_t oj = uw[ew] - c;
              if (oj < 0 || oj >= g.Wo) continue;
              const A gg = gab * taps[2 * kMaxWin + c];
              const A* kp = k0 + row + oj;
              kx += gg * kp[0];
              ky += gg * kp[nout];
              kb += gg * kp[2 * static_cast<int64_t>(nout)];
              kc += gg * kp[3 * static_cast<int64_t>(nout)];
            }
        }
    }
  const A mv = m[offset(g.sm, p, d, h, w)];
  const A xv = load_as<A>(x + offset(g.sx, p, d, h, w)), yv = load_as<A>(y + offset(g.sy, p, d, h, w));
  const A diff = xv - yv, wl = d_planes[static_cast<int64_t>(blockIdx.y) * 4 + 2];
  const A sg = diff > A(0) ? A(1) : diff < A(0) ? A(-1) : A(0);
  const int64_t go = offset(g.sg, p, d, h, w);
  if (gx) store_as(gx + go, mv * (kx + A(2) * xv * kb + yv * kc + wl * sg));
  if (gy) store_as(gy + go, mv * (ky + A(2) * yv * kb + xv * kc - wl * sg));
}

// The storage and accumulator types of a for_dtype tag (unevaluated: decltype only).
template <typename T, typename A> T storage_of(Typed<T, A>);
template <typename T, typename A> A acc_of(Typed<T, A>);

const char* check_sizes(const MaskedGeometry& g) {
  if (g.N * g.C > 65535) return "fastiqa ssim_masked: more than 65535 planes (N * C) in one call";
  if (g.D * g.H * g.W >= (int64_t(1) << 31)) return "fastiqa ssim_masked: planes of 2^31 pixels or more";
  return nullptr;
}

}  // namespace

int64_t ssim_masked_fwd_blocks(const MaskedGeometry& g) {
  const int64_t nout = g.Do * g.Ho * g.Wo, nsrc = g.D * g.H * g.W, total = nout > nsrc ? nout : nsrc;
  const int64_t b = (total + kThreads * kItems - 1) / (kThreads * kItems);
  return b < 1 ? 1 : b < kMaxFwdBlocks ? b : kMaxFwdBlocks;
}

const char* ssim_masked_fwd_launch(int dtype, const void* x, const void* y, const void* mask,
                                   const MaskedGeometry& geo, void* map, void* partials, void* stream) {
  if (const char* err = check_sizes(geo)) return err;
  if (geo.N * geo.C == 0) return nullptr;
  return for_dtype(dtype, "fastiqa ssim_masked_fwd_launch: unsupported dtype", [&](auto t) {
    using T = decltype(storage_of(t));
    using A = decltype(acc_of(t));
    const dim3 grid(static_cast<unsigned>(ssim_masked_fwd_blocks(geo)), static_cast<unsigned>(geo.N * geo.C));
    launch_kernel(masked_fwd_kernel<T, A>, grid, kThreads, 0, static_cast<cudaStream_t>(stream),
                  static_cast<const T*>(x), static_cast<const T*>(y), static_cast<const A*>(mask), geo,
                  static_cast<T*>(map), static_cast<A*>(partials), static_cast<uint32_t>(geo.Do * geo.Ho * geo.Wo),
                  static_cast<uint32_t>(geo.D * geo.H * geo.W));
  });
}

const char* ssim_masked_bwd_launch(int dtype, const void* x, const void* y, const void* mask,
                                   const MaskedGeometry& geo, const void* d_planes, const void* d_map, void* coef,
                                   void* gx, void* gy, void* stream) {
  if (const char* err = check_sizes(geo)) return err;
  if (geo.N * geo.C == 0 || (!gx && !gy)) return nullptr;
  return for_dtype(dtype, "fastiqa ssim_masked_bwd_launch: unsupported dtype", [&](auto t) {
    using T = decltype(storage_of(t));
    using A = decltype(acc_of(t));
    const uint32_t nout = static_cast<uint32_t>(geo.Do * geo.Ho * geo.Wo), nsrc = static_cast<uint32_t>(geo.D * geo.H * geo.W);
    const unsigned planes = static_cast<unsigned>(geo.N * geo.C);
    auto st = static_cast<cudaStream_t>(stream);
    launch_kernel(masked_coef_kernel<T, A>, dim3((nout + kThreads - 1) / kThreads, planes), kThreads, 0, st,
                  static_cast<const T*>(x), static_cast<const T*>(y), static_cast<const A*>(mask), geo,
                  static_cast<const A*>(d_planes), static_cast<const T*>(d_map), static_cast<A*>(coef), nout);
    launch_kernel(masked_grad_kernel<T, A>, dim3((nsrc + kThreads - 1) / kThreads, planes), kThreads, 0, st,
                  static_cast<const T*>(x), static_cast<const T*>(y), static_cast<const A*>(mask), geo,
                  static_cast<const A*>(d_planes), static_cast<const A*>(coef), static_cast<T*>(gx),
                  static_cast<T*>(gy), nout, nsrc);
  });
}

}  // namespace cuda
}  // namespace fastiqa
