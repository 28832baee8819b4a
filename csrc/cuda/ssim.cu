// CUDA kernels of the SSIM family (torch-free; launched by ssim_host.cpp).
//
// The window has its own taps per axis (winh rows, winw columns; Params::gh, gw).
// Forward: one block per 32x32 output tile of one plane. The block loads the
// (32 + winh - 1) x (32 + winw - 1) source tile of x and y into shared memory once (any strides,
// zero or reflect padding resolved by index; 128-bit loads when rows are contiguous and
// 16-byte aligned, Params::vec), blurs it horizontally into the five
// quantities (shared memory), then vertically per output pixel, and writes the SSIM
// map if asked plus one (S, cs, |x-y|) partial triple; the host sums the partials
// in tile order (no atomics, bitwise reproducible).
// Gradient: one block per G x G source tile recomputes the statistics on the
// (G + winh - 1) x (G + winw - 1) output region that reads the tile (from a
// (G + 2 winh - 2) x (G + 2 winw - 2) source tile), forms the four coefficient maps (csrc/common/ssim_math.h) in shared memory,
// and applies the adjoint blur (vertical then horizontal, reflect padding folded
// back onto the mirrored pixel). Nothing is saved between forward and backward.
// Bytes: forward reads x and y once (plus halo re-reads from L2); the gradient reads
// them once more and writes each gradient once.
// COMP (the components l, c, s, csrc/common/ssim_math.h; separate instantiations, so the
// SSIM's kernels are unchanged): the forward adds their sums (partials of 6) and 4 maps
// S, l, c, s (P.smk apart); the gradient is one launch per input (P.comp_y: dF/dy's, with
// the variance coefficient dby in place of dbx), each with the SSIM's 4 coefficient maps.
#include <cuda_runtime.h>

#include "../common/ssim_math.h"
#include "cuda_types.cuh"
#include "launch.cuh"
#include "ssim_launch.h"
#include "ssim_tile.cuh"
#include "vec.cuh"

namespace fastiqa {
namespace cuda {
namespace {

using namespace fastiqa::ssim;

constexpr int kThreads = 256;

template <typename A> struct Params {
  int64_t C, H, W, Ho, Wo;
  int winh, winw, offh, offw, padding;
  int64_t sx[4], sy[4], sm[4], sd[4], sg[4];
  int64_t smk, sdk;  // COMP: stride between the 4 maps (map weights) S, l, c, s
  bool comp_y;       // COMP gradient: this launch writes dF/dy
  A gh[kMaxWin], gw[kMaxWin];  // vertical, horizontal taps
  A c1, c2, inv_out, inv_in;
  // rows of x and y in 16-byte chunks (unit column stride, every row start 16-byte aligned):
  // the source tiles load as 128-bit vectors (csrc/cuda/vec.cuh)
  bool vec;
};

template <typename A>
Params<A> make_params(const SsimGeometry& geo, const double* window, const double* c, const void* x,
                      const void* y, size_t elem) {
  Params<A> p{};
  p.C = geo.C; p.H = geo.H; p.W = geo.W; p.Ho = geo.Ho; p.Wo = geo.Wo;
  p.winh = geo.winh; p.winw = geo.winw; p.offh = geo.offh; p.offw = geo.offw; p.padding = geo.padding;
  for (int i = 0; i < 4; ++i) {
    p.sx[i] = geo.sx[i];
    p.sy[i] = geo.sy[i];
  }
  for (int k = 0; k < geo.winh; ++k) p.gh[k] = static_cast<A>(window[k]);
  for (int k = 0; k < geo.winw; ++k) p.gw[k] = static_cast<A>(window[geo.winh + k]);
  p.c1 = static_cast<A>(c[0]);
  p.c2 = static_cast<A>(c[1]);
  p.inv_out = static_cast<A>(1.0 / static_cast<double>(geo.Ho * geo.Wo));
  p.inv_in = static_cast<A>(1.0 / static_cast<double>(geo.H * geo.W));
  // the strides of N, C and H that move a row start (a dimension of size 1 moves none)
  const int64_t sizes[3] = {geo.N, geo.C, geo.H};
  p.vec = elem < 8 && geo.sx[3] == 1 && geo.sy[3] == 1 && vec_ptr_ok(x) && vec_ptr_ok(y);
  for (int i = 0; i < 3; ++i)
    p.vec = p.vec && (sizes[i] == 1 || (vec_stride_ok(geo.sx[i], elem) && vec_stride_ok(geo.sy[i], elem)));
  return p;
}

// Loads the SR x S source tile at (s0r, s0c) of plane (n, c) into sx, sy (zeros outside; row pitch S).
// P.vec (float32 / float16 / bfloat16): each row in the 16-byte chunks that cover columns s0c .. s0c + S - 1 (the first
// starts at s0c rounded down to a chunk), 128-bit loads for chunks inside the image.
template <typename T, typename A>
__device__ void load_source(const T* x, const T* y, const Params<A>& P, int64_t n, int64_t c,
                            int64_t s0r, int64_t s0c, int SR, int S, A* sx, A* sy) {
  const T* xb = x + n * P.sx[0] + c * P.sx[1];
  const T* yb = y + n * P.sy[0] + c * P.sy[1];
  if constexpr (sizeof(T) < 8) {  // float64: element loads (the vector path spilled registers)
  if (P.vec) {
    constexpr int V = Vec<T>::kN;
    const int lead = static_cast<int>(s0c % V);
    const int per_row = (lead + S + V - 1) / V;
    for (int idx = threadIdx.x; idx < SR * per_row; idx += blockDim.x) {
      const int i = idx / per_row, j0 = (idx % per_row) * V - lead;  // tile column of the chunk's first element
      const int64_t r = s0r + i, c0 = s0c + j0;
      A* ox = sx + i * S + j0;  // the chunk's element k goes to ox[k] when 0 <= j0 + k < S
      A* oy = sy + i * S + j0;
      if (r < P.H && c0 + V <= P.W) {
        T tx[V], ty[V];
        load16(xb + r * P.sx[2] + c0, tx);
        load16(yb + r * P.sy[2] + c0, ty);
#pragma unroll
        for (int k = 0; k < V; ++k)
          if (j0 + k >= 0 && j0 + k < S) {
            ox[k] = load_as<A>(&tx[k]);
            oy[k] = load_as<A>(&ty[k]);
          }
      } else {
#pragma unroll
        for (int k = 0; k < V; ++k)
          if (j0 + k >= 0 && j0 + k < S) {
            const bool in = r < P.H && c0 + k < P.W;
            ox[k] = in ? load_as<A>(xb + r * P.sx[2] + c0 + k) : A(0);
            oy[k] = in ? load_as<A>(yb + r * P.sy[2] + c0 + k) : A(0);
          }
      }
    }
    return;
  }
  }
  for (int idx = threadIdx.x; idx < SR * S; idx += blockDim.x) {
    const int i = idx / S, j = idx % S;
    const int64_t r = s0r + i, cc = s0c + j;
    const bool in = r < P.H && cc < P.W;
    sx[idx] = in ? load_as<A>(xb + r * P.sx[2] + cc * P.sx[3]) : A(0);
    sy[idx] = in ? load_as<A>(yb + r * P.sy[2] + cc * P.sy[3]) : A(0);
  }
}

// COMP gradient: the weights on l, c, s at output pixel (pr, pc) of plane pl = (n, c)
// (csrc/cuda/ssim_tile.cuh).
template <typename T, typename A>
__device__ __forceinline__ void component_weights(const Params<A>& P, const A* weights, const T* dmap, int64_t pl,
                                                  int64_t n, int64_t c, int64_t pr, int64_t pc, A wq[3]) {
  const T* d = dmap ? dmap + n * P.sd[0] + c * P.sd[1] + pr * P.sd[2] + pc * P.sd[3] : nullptr;
  component_weights_at(weights + pl * kNumComponentStats, P.inv_out, d, P.sdk, wq);
}

// Per 32x32 output tile (the partials' unit), in sub-tiles of M x M (M = 32, 16 or 8:
// the largest whose working set fits the device's shared memory, chosen at launch).
// GRAD = false: S, cs, |x-y| sums (and the map); GRAD = true: the four coefficient maps
// of the gradient (ssim_math.h) into gmaps[(plane * 4 + q) * Ho * Wo + pixel], the
// first pass of the gradient when its fused kernel does not fit.
// At least 3 resident blocks (at most 80 registers): without a bound ptxas spilled 8-16
// bytes on some archs; with 2 it took 88-104 registers (2 blocks an SM on sm_90, where the
// shared memory of the 32x32 tile allows 5).
// COMP: at least 2 resident blocks (at most 128 registers): the components' float64 math spilled
// at 80 on sm_100 / sm_120.
template <typename T, typename A, bool GRAD, bool COMP>
__global__ void __launch_bounds__(kThreads, COMP ? 2 : 3)
    ssim_fwd_kernel(const T* __restrict__ x, const T* __restrict__ y, T* __restrict__ map,
                    A* __restrict__ partials, const Params<A> P, bool want_l1, int M,
                    const A* __restrict__ weights, const T* __restrict__ dmap, A* __restrict__ gmaps) {
  FASTIQA_DYNAMIC_SHARED(unsigned char, smem_raw);
  constexpr int NW = COMP ? kNumComponentStats : kNumWeights;  // weights per plane
  A* smem = reinterpret_cast<A*>(smem_raw);
  __shared__ A red[kThreads / 32];
  const int SR = M + P.winh - 1, S = M + P.winw - 1;  // source rows, columns
  A* sx = smem;
  A* sy = sx + SR * S;
  A* h = sy + SR * S;
  const int64_t pl = blockIdx.z, n = pl / P.C, c = pl % P.C;
  const int per_side = kSsimFwdTile / M;
  A sum_s = 0, sum_cs = 0, sum_l1 = 0;
  A sum_lum = 0, sum_con = 0, sum_str = 0;  // COMP
  A ws = 0, wc = 0;
  if (GRAD) {
    ws = weights[pl * NW] * P.inv_out;
    wc = weights[pl * NW + 1] * P.inv_out;
  }
  for (int sub = 0; sub < per_side * per_side; ++sub) {
    const int64_t p0r = static_cast<int64_t>(blockIdx.y) * kSsimFwdTile + (sub / per_side) * M;
    const int64_t p0c = static_cast<int64_t>(blockIdx.x) * kSsimFwdTile + (sub % per_side) * M;
    if (p0r >= P.H || p0c >= P.W) continue;  // uniform over the block
    const int64_t s0r = p0r - P.offh > 0 ? p0r - P.offh : 0;
    const int64_t s0c = p0c - P.offw > 0 ? p0c - P.offw : 0;
    if (sub > 0) __syncthreads();  // the previous sub-tile is done with sx, sy, h
    load_source(x, y, P, n, c, s0r, s0c, SR, S, sx, sy);
    __syncthreads();
    horizontal(P, sx, sy, SR, S, M, p0c, s0c, h);
    __syncthreads();
    for (int idx = threadIdx.x; idx < M * M; idx += blockDim.x) {
      const int p = idx / M, col = idx % M;
      const int64_t pr = p0r + p, pc = p0c + col;
      if (pr < P.Ho && pc < P.Wo) {
        A st[5];
        vertical(P, h, SR, M, pr, col, s0r, st);
        A sv, cv;
        if (GRAD) {
          A w = ws, dax, day, db, dc;
          if (dmap) w += load_as<A>(dmap + n * P.sd[0] + c * P.sd[1] + pr * P.sd[2] + pc * P.sd[3]);
          if constexpr (COMP) {
            A wq[3];
            component_weights(P, weights, dmap, pl, n, c, pr, pc, wq);
            A bx, by;
            ssim_components_grad(st[0], st[1], st[2], st[3], st[4], P.c1, P.c2, w, wc, wq[0], wq[1], wq[2], dax,
                                 day, bx, by, dc);
            db = P.comp_y ? by : bx;
          } else {
            ssim_value_grad(st[0], st[1], st[2], st[3], st[4], P.c1, P.c2, w, wc, sv, cv, dax, day, db, dc);
          }
          const int64_t plane = P.Ho * P.Wo, o = pl * 4 * plane + pr * P.Wo + pc;
          gmaps[o] = dax;
          gmaps[o + plane] = day;
          gmaps[o + 2 * plane] = db;
          gmaps[o + 3 * plane] = dc;
        } else if constexpr (COMP) {
          components_at(st, P.c1, P.c2, sum_s, sum_cs, sum_lum, sum_con, sum_str,
                        map ? map + n * P.sm[0] + c * P.sm[1] + pr * P.sm[2] + pc * P.sm[3] : nullptr, P.smk);
        } else {
          ssim_value(st[0], st[1], st[2], st[3], st[4], P.c1, P.c2, sv, cv);
          sum_s += sv;
          sum_cs += cv;
          if (map) store_as(map + n * P.sm[0] + c * P.sm[1] + pr * P.sm[2] + pc * P.sm[3], sv);
        }
      }
      if (!GRAD && want_l1 && pr < P.H && pc < P.W) {
        const int at = static_cast<int>((pr - s0r) * S + (pc - s0c));
        const A d = sx[at] - sy[at];
        sum_l1 += d < A(0) ? -d : d;
      }
    }
  }
  if (GRAD) return;  // uniform over the block
  constexpr int NP = COMP ? kNumComponentStats : kNumPlaneStats;
  const int64_t tile = static_cast<int64_t>(blockIdx.y) * gridDim.x + blockIdx.x;
  write_partials<kThreads, COMP>(partials + (pl * gridDim.x * gridDim.y + tile) * NP, sum_s, sum_cs, sum_l1, sum_lum,
                                 sum_con, sum_str, red);
}

// Vertical adjoint: t1[(q * G + i) * M + col] for source rows t0r + i, from the
// coefficient maps of the MR x M output region at (m0r, m0c): map_at(q, p, col).
template <typename A, typename MapAt>
__device__ void vertical_adjoint(const Params<A>& P, int G, int MR, int M, int64_t t0r, int64_t m0r, MapAt map_at,
                                 A* t1) {
  for (int idx = threadIdx.x; idx < G * M; idx += blockDim.x) {
    const int i = idx / M, col = idx % M;
    const int64_t s = t0r + i;
    A a[4] = {0, 0, 0, 0};
    if (s < P.H)
      adjoint_taps<true>(P, s, P.H, m0r, MR, [&](A gk, int p) {
        for (int q = 0; q < 4; ++q) a[q] += gk * map_at(q, p, col);
      });
    for (int q = 0; q < 4; ++q) t1[(q * G + i) * M + col] = a[q];
  }
}

// Horizontal adjoint of t1 and the gradient of the G x G source tile at (t0r, t0c).
template <typename T, typename A>
__device__ void horizontal_adjoint_store(const T* x, const T* y, T* gx, T* gy, const Params<A>& P, int64_t n,
                                         int64_t c, int G, int M, int64_t t0r, int64_t t0c, int64_t m0c,
                                         const A* t1, A wl) {
  const T* xb = x + n * P.sx[0] + c * P.sx[1];
  const T* yb = y + n * P.sy[0] + c * P.sy[1];
  for (int idx = threadIdx.x; idx < G * G; idx += blockDim.x) {
    const int i = idx / G, j = idx % G;
    const int64_t s = t0r + i, sc = t0c + j;
    if (s >= P.H || sc >= P.W) continue;
    A a[4] = {0, 0, 0, 0};
    adjoint_taps<false>(P, sc, P.W, m0c, M, [&](A gk, int col) {
      for (int q = 0; q < 4; ++q) a[q] += gk * t1[(q * G + i) * M + col];
    });
    const A vx = load_as<A>(xb + s * P.sx[2] + sc * P.sx[3]);
    const A vy = load_as<A>(yb + s * P.sy[2] + sc * P.sy[3]);
    const A d = vx - vy;
    const A sg = wl * (static_cast<A>(d > A(0)) - static_cast<A>(d < A(0)));
    const int64_t o = n * P.sg[0] + c * P.sg[1] + s * P.sg[2] + sc * P.sg[3];
    if (gx) store_as(gx + o, a[0] + A(2) * vx * a[2] + vy * a[3] + sg);
    if (gy) store_as(gy + o, a[1] + A(2) * vy * a[2] + vx * a[3] - sg);
  }
}

// The share of a gradient block (ssim_grad_kernel, ssim_adjoint_kernel): the G x G source
// tile at (t0r, t0c) of plane pl = (n, c) and the MR x M output region at (m0r, m0c) that
// reads it (MR = G + winh - 1, M = G + winw - 1); wl: the plane's L1 weight over the input pixels.
template <typename A, int NW> struct GradTile {
  int MR, M;
  int64_t pl, n, c, t0r, t0c, m0r, m0c;
  A wl;
  __device__ __forceinline__ GradTile(const Params<A>& P, const A* weights, int G)
      : MR(G + P.winh - 1), M(G + P.winw - 1), pl(blockIdx.z), n(pl / P.C), c(pl % P.C),
        t0r(static_cast<int64_t>(blockIdx.y) * G), t0c(static_cast<int64_t>(blockIdx.x) * G),
        m0r(t0r + P.offh - (P.winh - 1)), m0c(t0c + P.offw - (P.winw - 1)), wl(weights[pl * NW + 2] * P.inv_in) {}
};

// Fused gradient: one block per G x G source tile recomputes the statistics of the
// (G + winh - 1) x (G + winw - 1) output region that reads it and applies the adjoint blur.
template <typename T, typename A, bool COMP>
__global__ void __launch_bounds__(kThreads, COMP ? 1 : 0)
    ssim_grad_kernel(const T* __restrict__ x, const T* __restrict__ y, const A* __restrict__ weights,
                     const T* __restrict__ dmap, T* __restrict__ gx, T* __restrict__ gy, const Params<A> P,
                     int G) {
  FASTIQA_DYNAMIC_SHARED(unsigned char, smem_raw);
  constexpr int NW = COMP ? kNumComponentStats : kNumWeights;  // weights per plane
  A* smem = reinterpret_cast<A*>(smem_raw);
  const GradTile<A, NW> b(P, weights, G);
  const int MR = b.MR, M = b.M, SR = MR + P.winh - 1, S = M + P.winw - 1;
  A* sx = smem;
  A* sy = sx + SR * S;
  A* h = sy + SR * S;     // 5 * SR * M, later the vertical adjoint 4 * G * M
  A* maps = h + 5 * SR * M;  // 4 * MR * M
  const int64_t pl = b.pl, n = b.n, c = b.c, t0r = b.t0r, t0c = b.t0c, m0r = b.m0r, m0c = b.m0c;
  const int64_t s0r = m0r - P.offh > 0 ? m0r - P.offh : 0;
  const int64_t s0c = m0c - P.offw > 0 ? m0c - P.offw : 0;
  const A ws = weights[pl * NW] * P.inv_out, wc = weights[pl * NW + 1] * P.inv_out;
  load_source(x, y, P, n, c, s0r, s0c, SR, S, sx, sy);
  __syncthreads();
  horizontal(P, sx, sy, SR, S, M, m0c, s0c, h);
  __syncthreads();
  const int64_t MM = static_cast<int64_t>(MR) * M;
  for (int idx = threadIdx.x; idx < MR * M; idx += blockDim.x) {
    const int p = idx / M, col = idx % M;
    const int64_t pr = m0r + p, pc = m0c + col;
    A dax = 0, day = 0, db = 0, dc = 0;
    if (pr >= 0 && pr < P.Ho && pc >= 0 && pc < P.Wo) {
      A st[5];
      vertical(P, h, SR, M, pr, col, s0r, st);
      A w = ws;
      if (dmap) w += load_as<A>(dmap + n * P.sd[0] + c * P.sd[1] + pr * P.sd[2] + pc * P.sd[3]);
      if constexpr (COMP) {
        A wq[3], bx, by;
        component_weights(P, weights, dmap, pl, n, c, pr, pc, wq);
        ssim_components_grad(st[0], st[1], st[2], st[3], st[4], P.c1, P.c2, w, wc, wq[0], wq[1], wq[2], dax, day, bx,
                             by, dc);
        db = P.comp_y ? by : bx;
      } else {
        A sv, cv;
        ssim_value_grad(st[0], st[1], st[2], st[3], st[4], P.c1, P.c2, w, wc, sv, cv, dax, day, db, dc);
      }
    }
    maps[idx] = dax;
    maps[MM + idx] = day;
    maps[2 * MM + idx] = db;
    maps[3 * MM + idx] = dc;
  }
  __syncthreads();
  A* t1 = h;
  vertical_adjoint(P, G, MR, M, t0r, m0r, [&](int q, int p, int col) { return maps[q * MM + p * M + col]; }, t1);
  __syncthreads();
  horizontal_adjoint_store(x, y, gx, gy, P, n, c, G, M, t0r, t0c, m0c, t1, b.wl);
}

// Second pass of the two-pass gradient: the adjoint blur of the coefficient maps that
// ssim_fwd_kernel<GRAD = true> wrote to global memory (working set 4 G (G + winw - 1)).
template <typename T, typename A, bool COMP>
__global__ void __launch_bounds__(kThreads)
    ssim_adjoint_kernel(const T* __restrict__ x, const T* __restrict__ y, const A* __restrict__ weights,
                        const A* __restrict__ gmaps, T* __restrict__ gx, T* __restrict__ gy, const Params<A> P,
                        int G) {
  FASTIQA_DYNAMIC_SHARED(unsigned char, smem_raw);
  constexpr int NW = COMP ? kNumComponentStats : kNumWeights;  // weights per plane
  A* t1 = reinterpret_cast<A*>(smem_raw);
  const GradTile<A, NW> b(P, weights, G);
  const int64_t plane = P.Ho * P.Wo;
  // region origin relative to the plane origin, 32-bit (rows and columns are < 2^31)
  const int r0 = static_cast<int>(b.m0r), c0 = static_cast<int>(b.m0c), ho = static_cast<int>(P.Ho),
            wo = static_cast<int>(P.Wo);
  const A* mp = gmaps + b.pl * 4 * plane;
  vertical_adjoint(P, G, b.MR, b.M, b.t0r, b.m0r, [=](int q, int p, int col) {  // by value: no locals in local memory
    const int pr = r0 + p, pc = c0 + col;
    return (pr >= 0 && pr < ho && pc >= 0 && pc < wo) ? mp[q * plane + static_cast<int64_t>(pr) * wo + pc] : A(0);
  }, t1);
  __syncthreads();
  horizontal_adjoint_store(x, y, gx, gy, P, b.n, b.c, G, b.M, b.t0r, b.t0c, b.m0c, t1, b.wl);
}

// Dynamic shared memory a block may use on this device: the opt-in limit minus the
// kernel's static shared memory.
int dynamic_shared_limit(const void* kernel) {
  int dev = 0, optin = 0;
  cudaGetDevice(&dev);
  cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev);
  cudaFuncAttributes attr{};
  if (cudaFuncGetAttributes(&attr, kernel) != cudaSuccess) attr.sharedSizeBytes = 0;
  return optin - static_cast<int>(attr.sharedSizeBytes);
}

// Working sets in accumulator elements: forward tile M; fused gradient tile G; the
// adjoint pass of the two-pass gradient, tile G.
// winh, winw: the window's taps per axis.
int64_t fwd_elems(int M, int winh, int winw) {
  const int64_t SR = M + winh - 1, S = M + winw - 1;
  return 2 * SR * S + 5 * SR * M;
}
int64_t fused_grad_elems(int G, int winh, int winw) {
  const int64_t MR = G + winh - 1, M = G + winw - 1, SR = MR + winh - 1, S = M + winw - 1;
  return 2 * SR * S + 5 * SR * M + 4 * MR * M;
}
int64_t adjoint_elems(int G, int, int winw) { return 4 * int64_t(G) * (G + winw - 1); }

// The largest tile of {32, 16, 8} whose working set fits `limit` bytes, or 0.
template <typename Elems>
int pick_tile(Elems elems, const SsimGeometry& geo, size_t acc_bytes, int limit, size_t& bytes) {
  for (int t : {32, 16, 8}) {
    bytes = acc_bytes * static_cast<size_t>(elems(t, geo.winh, geo.winw));
    if (bytes <= static_cast<size_t>(limit)) return t;
  }
  return 0;
}

template <typename K> void allow_shared(K kernel, size_t bytes) {
  cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes));
}

template <typename T, typename A>
dim3 fwd_grid(const SsimGeometry& geo) {
  return dim3(static_cast<unsigned>((geo.W + kSsimFwdTile - 1) / kSsimFwdTile),
              static_cast<unsigned>((geo.H + kSsimFwdTile - 1) / kSsimFwdTile), static_cast<unsigned>(geo.N * geo.C));
}

template <typename T, typename A>
const char* fwd_typed(Typed<T, A>, const void* x, const void* y, const SsimGeometry& geo, const double* window,
                      const double* c, void* map, const int64_t* smap, bool want_l1, bool comp, int64_t smk,
                      void* partials, cudaStream_t st) {
  Params<A> P = make_params<A>(geo, window, c, x, y, sizeof(T));
  if (map)
    for (int i = 0; i < 4; ++i) P.sm[i] = smap[i];
  P.smk = smk;
  auto kernel = comp ? ssim_fwd_kernel<T, A, false, true> : ssim_fwd_kernel<T, A, false, false>;
  size_t bytes = 0;
  const int M = pick_tile(fwd_elems, geo, sizeof(A), dynamic_shared_limit(reinterpret_cast<const void*>(kernel)), bytes);
  if (M == 0) return "fastiqa ssim: window too large for this GPU's shared memory";
  allow_shared(kernel, bytes);
  launch_kernel(kernel, fwd_grid<T, A>(geo), kThreads, bytes, st, static_cast<const T*>(x), static_cast<const T*>(y),
                static_cast<T*>(map), static_cast<A*>(partials), P, want_l1, M, nullptr, nullptr, nullptr);
  return last_error();
}

template <typename T, typename A>
const char* grad_typed(Typed<T, A>, const void* x, const void* y, const SsimGeometry& geo, const double* window,
                       const double* c, const void* weights, const void* dmap, const int64_t* sd, void* gx,
                       void* gy, const int64_t* sg, bool comp, bool comp_y, int64_t sdk, cudaStream_t st) {
  Params<A> P = make_params<A>(geo, window, c, x, y, sizeof(T));
  for (int i = 0; i < 4; ++i) {
    if (dmap) P.sd[i] = sd[i];
    P.sg[i] = sg[i];
  }
  P.comp_y = comp_y;
  P.sdk = sdk;
  const auto* px = static_cast<const T*>(x);
  const auto* py = static_cast<const T*>(y);
  const auto* pw = static_cast<const A*>(weights);
  auto fused = comp ? ssim_grad_kernel<T, A, true> : ssim_grad_kernel<T, A, false>;
  size_t bytes = 0;
  int G = pick_tile(fused_grad_elems, geo, sizeof(A), dynamic_shared_limit(reinterpret_cast<const void*>(fused)), bytes);
  if (G > 0) {
    allow_shared(fused, bytes);
    dim3 grid(static_cast<unsigned>((geo.W + G - 1) / G), static_cast<unsigned>((geo.H + G - 1) / G),
              static_cast<unsigned>(geo.N * geo.C));
    launch_kernel(fused, grid, kThreads, bytes, st, px, py, pw, static_cast<const T*>(dmap), static_cast<T*>(gx),
                  static_cast<T*>(gy), P, G);
    return last_error();
  }
  // Large windows on GPUs with less shared memory: the coefficient maps go through global
  // memory (4 accumulators per output pixel, stream-ordered scratch).
  auto maps_kernel = comp ? ssim_fwd_kernel<T, A, true, true> : ssim_fwd_kernel<T, A, true, false>;
  auto adjoint = comp ? ssim_adjoint_kernel<T, A, true> : ssim_adjoint_kernel<T, A, false>;
  size_t maps_bytes = 0, adj_bytes = 0;
  const int M = pick_tile(fwd_elems, geo, sizeof(A), dynamic_shared_limit(reinterpret_cast<const void*>(maps_kernel)), maps_bytes);
  G = pick_tile(adjoint_elems, geo, sizeof(A), dynamic_shared_limit(reinterpret_cast<const void*>(adjoint)), adj_bytes);
  if (M == 0 || G == 0) return "fastiqa ssim: window too large for this GPU's shared memory";
  void* scratch = nullptr;
  const size_t scratch_bytes = sizeof(A) * 4 * static_cast<size_t>(geo.N * geo.C * geo.Ho * geo.Wo);
  if (cudaMallocAsync(&scratch, scratch_bytes, st) != cudaSuccess) return last_error();
  auto* gm = static_cast<A*>(scratch);
  allow_shared(maps_kernel, maps_bytes);
  launch_kernel(maps_kernel, fwd_grid<T, A>(geo), kThreads, maps_bytes, st, px, py, nullptr, nullptr, P, false, M, pw,
                static_cast<const T*>(dmap), gm);
  allow_shared(adjoint, adj_bytes);
  dim3 grid(static_cast<unsigned>((geo.W + G - 1) / G), static_cast<unsigned>((geo.H + G - 1) / G),
            static_cast<unsigned>(geo.N * geo.C));
  launch_kernel(adjoint, grid, kThreads, adj_bytes, st, px, py, pw, static_cast<const A*>(gm), static_cast<T*>(gx),
                static_cast<T*>(gy), P, G);
  cudaFreeAsync(scratch, st);
  return last_error();
}

}  // namespace

const char* ssim_fwd_launch(int dtype, const void* x, const void* y, const SsimGeometry& geo,
                            const double* window, const double* c, void* map, const int64_t* smap,
                            bool want_l1, bool components, int64_t smk, void* partials, void* stream) {
  auto st = static_cast<cudaStream_t>(stream);
  return for_dtype(dtype, "fastiqa ssim_fwd_launch: unsupported dtype", [&](auto t) {
    return fwd_typed(t, x, y, geo, window, c, map, smap, want_l1, components, smk, partials, st);
  });
}

const char* ssim_grad_launch(int dtype, const void* x, const void* y, const SsimGeometry& geo,
                             const double* window, const double* c, const void* weights,
                             const void* dmap, const int64_t* sd, void* gx, void* gy,
                             const int64_t* sg, bool components, bool comp_y, int64_t sdk, void* stream) {
  auto st = static_cast<cudaStream_t>(stream);
  return for_dtype(dtype, "fastiqa ssim_grad_launch: unsupported dtype", [&](auto t) {
    return grad_typed(t, x, y, geo, window, c, weights, dmap, sd, gx, gy, sg, components, comp_y, sdk, st);
  });
}

}  // namespace cuda
}  // namespace fastiqa
