// CUDA kernels of the SSIM family on volumes (N, C, D, H, W), a separable 3-D window of
// wd x wh x ww taps (torch-free; launched by ssim_volume_host.cpp; the 2-D kernels: ssim.cu).
//
// Forward (ssim_volume_fwd_kernel): one block per partial unit, a 16 x 16 (H, W) tile x 16
// depth slices of one plane, in (H, W) sub-tiles of M x M outputs (M = 16, 8 or 4: the
// largest whose working set fits the device's shared memory, chosen at launch). A sub-tile
// marches along depth over the padded slices its outputs read: each slice's
// (M + wh - 1) x (M + ww - 1) source tile is loaded into shared memory (any strides, zero or
// reflect padding resolved by index), blurred horizontally then vertically into one slot of a
// ring of wd slices of the five statistics (x, y, x^2, y^2, xy; shared memory); once the ring
// holds wd slices, the depth blur gives the statistics of one output slice. A thread owns the
// same output pixels in every slice, so the ring needs no barrier. The block writes the SSIM
// map if asked plus one (S, cs, |x-y|) partial triple; the host sums the partials in unit
// order (no atomics, bitwise reproducible).
// Gradient (two passes, nothing saved between forward and backward): the forward kernel with
// GRAD = true writes the four coefficient maps (csrc/common/ssim_math.h) of every output voxel
// to a global scratch; ssim_volume_adjoint_kernel then gives each block a G x G (H, W) source
// tile x 16 source slices, marches along depth over the output slices that read them, applies
// the vertical and horizontal adjoint blurs (reflect padding folded back onto the mirrored
// pixel) into a ring of wd slices of the four adjoint maps, and the depth adjoint of the ring
// completes one source slice, combined with x and y into gx and gy.
// COMP (the components l, c, s, csrc/common/ssim_math.h; separate instantiations of the forward
// kernel, so the SSIM's are unchanged; ssim.cu's scheme): the forward adds their sums (partials of
// 6) and the 4 maps S, l, c, s (P.smk apart); the gradient is one launch of both passes per input
// (P.comp_y: dF/dy's, with the variance coefficient dby in place of dbx), each with the SSIM's 4
// coefficient maps, so the adjoint kernel is the SSIM's.
#include <cuda_runtime.h>

#include "../common/ssim_math.h"
#include "cuda_types.cuh"
#include "launch.cuh"
#include "ssim_tile.cuh"
#include "ssim_volume_launch.h"

namespace fastiqa {
namespace cuda {
namespace {

using namespace fastiqa::ssim;

constexpr int kThreads = 256;

template <typename A> struct VolParams {
  int64_t C, D, H, W, Do, Ho, Wo;
  int wd, winh, winw, offd, offh, offw, padding;
  int64_t sx[5], sy[5], sm[5], sd[5], sg[5];
  int64_t smk, sdk;  // COMP: stride between the 4 maps (map weights) S, l, c, s
  bool comp_y;       // COMP gradient: this launch writes dF/dy
  int nw;            // weights per plane: kNumWeights, or kNumComponentStats (COMP)
  A gd[kMaxWin], gh[kMaxWin], gw[kMaxWin];  // depth, vertical, horizontal taps
  A c1, c2, inv_out, inv_in;
};

template <typename A>
VolParams<A> make_params(const SsimVolGeometry& geo, const double* window, const double* c) {
  VolParams<A> p{};
  p.C = geo.C; p.D = geo.D; p.H = geo.H; p.W = geo.W; p.Do = geo.Do; p.Ho = geo.Ho; p.Wo = geo.Wo;
  p.wd = geo.wd; p.winh = geo.wh; p.winw = geo.ww;
  p.offd = geo.offd; p.offh = geo.offh; p.offw = geo.offw; p.padding = geo.padding;
  for (int i = 0; i < 5; ++i) {
    p.sx[i] = geo.sx[i];
    p.sy[i] = geo.sy[i];
  }
  for (int k = 0; k < geo.wd; ++k) p.gd[k] = static_cast<A>(window[k]);
  for (int k = 0; k < geo.wh; ++k) p.gh[k] = static_cast<A>(window[geo.wd + k]);
  for (int k = 0; k < geo.ww; ++k) p.gw[k] = static_cast<A>(window[geo.wd + geo.wh + k]);
  p.c1 = static_cast<A>(c[0]);
  p.c2 = static_cast<A>(c[1]);
  p.inv_out = static_cast<A>(1.0 / static_cast<double>(geo.Do * geo.Ho * geo.Wo));
  p.inv_in = static_cast<A>(1.0 / static_cast<double>(geo.D * geo.H * geo.W));
  p.nw = kNumWeights;
  return p;
}

// (unit across W, unit across H, unit across D) of a grid over the W x H x D extent in units of
// tw x tw x kSsimVolDepth.
__device__ __forceinline__ void unit_of(int64_t unit, int64_t H, int64_t W, int tw, int64_t& uw, int64_t& uh,
                                        int64_t& ud) {
  const int64_t nw = (W + tw - 1) / tw, nh = (H + tw - 1) / tw;
  uw = unit % nw;
  uh = (unit / nw) % nh;
  ud = unit / (nw * nh);
}

// Loads the SR x S source tile at (s0r, s0c) of slice s of plane (n, c) into sx, sy (zeros
// outside; row pitch S).
template <typename T, typename A>
__device__ void load_slice(const T* x, const T* y, const VolParams<A>& P, int64_t n, int64_t c, int64_t s,
                           int64_t s0r, int64_t s0c, int SR, int S, A* sx, A* sy) {
  const T* xb = x + n * P.sx[0] + c * P.sx[1] + s * P.sx[2];
  const T* yb = y + n * P.sy[0] + c * P.sy[1] + s * P.sy[2];
  for (int idx = threadIdx.x; idx < SR * S; idx += blockDim.x) {
    const int i = idx / S, j = idx % S;
    const int64_t r = s0r + i, cc = s0c + j;
    const bool in = r < P.H && cc < P.W;
    sx[idx] = in ? load_as<A>(xb + r * P.sx[3] + cc * P.sx[4]) : A(0);
    sy[idx] = in ? load_as<A>(yb + r * P.sy[3] + cc * P.sy[4]) : A(0);
  }
}

// Per partial unit (kSsimVolTile^2 x kSsimVolDepth source voxels), in (H, W) sub-tiles of M x M.
// GRAD = false: S, cs, |x-y| sums (and the map); GRAD = true: the four coefficient maps of the
// gradient into gmaps[(plane * 4 + q) * Do * Ho * Wo + voxel], the gradient's first pass.
// COMP: also the sums of l, c, s and their maps; the components' coefficients (dbx or dby).
// At least 2 resident blocks (at most 128 registers).
template <typename T, typename A, bool GRAD, bool COMP>
__global__ void __launch_bounds__(kThreads, 2)
    ssim_volume_fwd_kernel(const T* __restrict__ x, const T* __restrict__ y, T* __restrict__ map,
                           A* __restrict__ partials, const VolParams<A> P, bool want_l1, int M,
                           const A* __restrict__ weights, const T* __restrict__ dmap, A* __restrict__ gmaps) {
  FASTIQA_DYNAMIC_SHARED(unsigned char, smem_raw);
  constexpr int NW = COMP ? kNumComponentStats : kNumWeights;  // weights per plane
  A* smem = reinterpret_cast<A*>(smem_raw);
  __shared__ A red[kThreads / 32];
  const int SR = M + P.winh - 1, S = M + P.winw - 1, MM = M * M;
  A* sx = smem;
  A* sy = sx + SR * S;
  A* h = sy + SR * S;       // 5 * SR * M
  A* ring = h + 5 * SR * M;  // wd slots of 5 * M * M
  const int64_t pl = blockIdx.y, n = pl / P.C, c = pl % P.C;
  int64_t uw, uh, ud;
  unit_of(blockIdx.x, P.H, P.W, kSsimVolTile, uw, uh, ud);
  const int64_t p0 = ud * kSsimVolDepth;
  const int64_t p_src = p0 + kSsimVolDepth < P.D ? p0 + kSsimVolDepth : P.D;    // the unit's source slices
  const int64_t p_end = p0 + kSsimVolDepth < P.Do ? p0 + kSsimVolDepth : P.Do;  // its output slices
  const int per_side = kSsimVolTile / M;
  const int64_t vol = P.Do * P.Ho * P.Wo;
  A sum_s = 0, sum_cs = 0, sum_l1 = 0, ws = 0, wc = 0;
  A sum_lum = 0, sum_con = 0, sum_str = 0;  // COMP
  if (GRAD) {
    ws = weights[pl * NW] * P.inv_out;
    wc = weights[pl * NW + 1] * P.inv_out;
  }
  for (int sub = 0; sub < per_side * per_side; ++sub) {
    const int64_t p0r = uh * kSsimVolTile + (sub / per_side) * M;
    const int64_t p0c = uw * kSsimVolTile + (sub % per_side) * M;
    if (p0r >= P.H || p0c >= P.W) continue;  // uniform over the block
    const int64_t s0r = p0r - P.offh > 0 ? p0r - P.offh : 0;
    const int64_t s0c = p0c - P.offw > 0 ? p0c - P.offw : 0;
    if (!GRAD && want_l1) {
      const int count = static_cast<int>(p_src - p0) * MM;
      for (int idx = threadIdx.x; idx < count; idx += blockDim.x) {
        const int e = idx % MM;
        const int64_t s = p0 + idx / MM, r = p0r + e / M, cc = p0c + e % M;
        if (r >= P.H || cc >= P.W) continue;
        const A d = load_as<A>(x + n * P.sx[0] + c * P.sx[1] + s * P.sx[2] + r * P.sx[3] + cc * P.sx[4]) -
                    load_as<A>(y + n * P.sy[0] + c * P.sy[1] + s * P.sy[2] + r * P.sy[3] + cc * P.sy[4]);
        sum_l1 += d < A(0) ? -d : d;
      }
    }
    for (int64_t u = p0; u < p_end + P.wd - 1; ++u) {  // padded slices; none when the unit has no output
      const int64_t s = source_index(u, P.D, P.offd, P.padding);
      if (s >= 0) {  // uniform over the block
        load_slice(x, y, P, n, c, s, s0r, s0c, SR, S, sx, sy);
        __syncthreads();
        horizontal(P, sx, sy, SR, S, M, p0c, s0c, h);
        __syncthreads();
      }
      A* slot = ring + ((u - p0) % P.wd) * 5 * MM;
      const int64_t p = u - (P.wd - 1);  // the output slice this padded slice completes
      for (int idx = threadIdx.x; idx < MM; idx += blockDim.x) {
        const int64_t pr = p0r + idx / M, pc = p0c + idx % M;
        const bool in = pr < P.Ho && pc < P.Wo;
        A st[5] = {0, 0, 0, 0, 0};
        if (s >= 0 && in) vertical(P, h, SR, M, pr, idx % M, s0r, st);  // else zeros
        for (int q = 0; q < 5; ++q) slot[q * MM + idx] = st[q];
        if (p < p0 || !in) continue;
        for (int q = 0; q < 5; ++q) st[q] = 0;
        for (int k = 0; k < P.wd; ++k) {  // depth blur of the ring (slots this thread wrote)
          const A* sl = ring + ((p + k - p0) % P.wd) * 5 * MM + idx;
          const A gk = P.gd[k];
          for (int q = 0; q < 5; ++q) st[q] += gk * sl[q * MM];
        }
        A sv, cv;
        if (GRAD) {
          A w = ws, dax, day, db, dc;
          const T* dm = dmap ? dmap + n * P.sd[0] + c * P.sd[1] + p * P.sd[2] + pr * P.sd[3] + pc * P.sd[4] : nullptr;
          if (dm) w += load_as<A>(dm);
          if constexpr (COMP) {
            A wq[3], bx, by;
            component_weights_at(weights + pl * NW, P.inv_out, dm, P.sdk, wq);
            ssim_components_grad(st[0], st[1], st[2], st[3], st[4], P.c1, P.c2, w, wc, wq[0], wq[1], wq[2], dax,
                                 day, bx, by, dc);
            db = P.comp_y ? by : bx;
          } else {
            ssim_value_grad(st[0], st[1], st[2], st[3], st[4], P.c1, P.c2, w, wc, sv, cv, dax, day, db, dc);
          }
          const int64_t o = pl * 4 * vol + (p * P.Ho + pr) * P.Wo + pc;
          gmaps[o] = dax;
          gmaps[o + vol] = day;
          gmaps[o + 2 * vol] = db;
          gmaps[o + 3 * vol] = dc;
        } else if constexpr (COMP) {
          components_at(st, P.c1, P.c2, sum_s, sum_cs, sum_lum, sum_con, sum_str,
                        map ? map + n * P.sm[0] + c * P.sm[1] + p * P.sm[2] + pr * P.sm[3] + pc * P.sm[4] : nullptr,
                        P.smk);
        } else {
          ssim_value(st[0], st[1], st[2], st[3], st[4], P.c1, P.c2, sv, cv);
          sum_s += sv;
          sum_cs += cv;
          if (map) store_as(map + n * P.sm[0] + c * P.sm[1] + p * P.sm[2] + pr * P.sm[3] + pc * P.sm[4], sv);
        }
      }
    }
  }
  if (GRAD) return;  // uniform over the block
  constexpr int NP = COMP ? kNumComponentStats : kNumPlaneStats;
  write_partials<kThreads, COMP>(partials + (pl * gridDim.x + blockIdx.x) * NP, sum_s, sum_cs, sum_l1, sum_lum,
                                 sum_con, sum_str, red);
}

// Second pass of the gradient: per G x G (H, W) source tile x kSsimVolDepth source slices, the
// adjoint blur of the coefficient maps gmaps (the first pass's) and the gradients.
// At least 2 resident blocks (at most 128 registers): ptxas capped it at 64 registers without
// a minimum and spilled 16-100 bytes on every arch but sm_100.
template <typename T, typename A>
__global__ void __launch_bounds__(kThreads, 2)
    ssim_volume_adjoint_kernel(const T* __restrict__ x, const T* __restrict__ y, const A* __restrict__ weights,
                               const A* __restrict__ gmaps, T* __restrict__ gx, T* __restrict__ gy,
                               const VolParams<A> P, int G) {
  FASTIQA_DYNAMIC_SHARED(unsigned char, smem_raw);
  const int M = G + P.winw - 1, MR = G + P.winh - 1, GG = G * G;
  A* t1 = reinterpret_cast<A*>(smem_raw);  // vertical adjoint of one output slice: 4 * G * M
  A* ring = t1 + 4 * G * M;                  // wd slots of 4 * G * G: its horizontal adjoint
  const int64_t pl = blockIdx.y, n = pl / P.C, c = pl % P.C;
  int64_t uw, uh, ud;
  unit_of(blockIdx.x, P.H, P.W, G, uw, uh, ud);
  const int64_t t0r = uh * G, t0c = uw * G, s_a = ud * kSsimVolDepth;
  const int64_t s_b = s_a + kSsimVolDepth < P.D ? s_a + kSsimVolDepth : P.D;
  const int64_t m0r = t0r + P.offh - (P.winh - 1), m0c = t0c + P.offw - (P.winw - 1);
  const A wl = weights[pl * P.nw + 2] * P.inv_in;
  const int64_t plane = P.Ho * P.Wo, vol = P.Do * plane;
  const A* mp = gmaps + pl * 4 * vol;
  // output slice q completes source slice q - offd; the ring holds output slices q - wd + 1 .. q
  const int64_t base = s_a + P.offd - (P.wd - 1);
  for (int64_t q = base; q < s_b + P.offd; ++q) {
    const bool have = q >= 0 && q < P.Do;  // uniform over the block
    if (have) {
      __syncthreads();  // the previous slice's horizontal adjoint is done with t1
      for (int idx = threadIdx.x; idx < G * M; idx += blockDim.x) {
        const int i = idx / M, col = idx % M;
        const int64_t sr = t0r + i, pc = m0c + col;
        A a[4] = {0, 0, 0, 0};
        if (sr < P.H && pc >= 0 && pc < P.Wo)
          adjoint_taps<true>(P, sr, P.H, m0r, MR, [&](A gk, int p) {
            const int64_t pr = m0r + p;
            if (pr < 0 || pr >= P.Ho) return;
            const A* m = mp + q * plane + pr * P.Wo + pc;
            for (int k = 0; k < 4; ++k) a[k] += gk * m[k * vol];
          });
        for (int k = 0; k < 4; ++k) t1[(k * G + i) * M + col] = a[k];
      }
      __syncthreads();
    }
    A* slot = ring + ((q - base) % P.wd) * 4 * GG;
    const int64_t s = q - P.offd;  // < s_b by the loop bound
    for (int idx = threadIdx.x; idx < GG; idx += blockDim.x) {
      const int i = idx / G, j = idx % G;
      const int64_t sr = t0r + i, sc = t0c + j;
      const bool in = sr < P.H && sc < P.W;
      if (have) {
        A a[4] = {0, 0, 0, 0};
        if (in)
          adjoint_taps<false>(P, sc, P.W, m0c, M, [&](A gk, int col) {
            for (int k = 0; k < 4; ++k) a[k] += gk * t1[(k * G + i) * M + col];
          });
        for (int k = 0; k < 4; ++k) slot[k * GG + idx] = a[k];
      }
      if (s < s_a || !in) continue;
      // depth adjoint: the ring's output slices that read source slice s (slots this thread wrote)
      A d[4] = {0, 0, 0, 0};
      int64_t u[3];
      const int cnt = padded_of(s, P.D, P.offd, P.padding, u);
      for (int t = 0; t < cnt; ++t)
        for (int k = 0; k < P.wd; ++k) {
          const int64_t p = u[t] - k;
          if (p < 0 || p >= P.Do) continue;
          const A* r = ring + ((p - base) % P.wd) * 4 * GG + idx;
          const A gk = P.gd[k];
          for (int e = 0; e < 4; ++e) d[e] += gk * r[e * GG];
        }
      const A vx = load_as<A>(x + n * P.sx[0] + c * P.sx[1] + s * P.sx[2] + sr * P.sx[3] + sc * P.sx[4]);
      const A vy = load_as<A>(y + n * P.sy[0] + c * P.sy[1] + s * P.sy[2] + sr * P.sy[3] + sc * P.sy[4]);
      const A dd = vx - vy;
      const A sg = wl * (static_cast<A>(dd > A(0)) - static_cast<A>(dd < A(0)));
      const int64_t o = n * P.sg[0] + c * P.sg[1] + s * P.sg[2] + sr * P.sg[3] + sc * P.sg[4];
      if (gx) store_as(gx + o, d[0] + A(2) * vx * d[2] + vy * d[3] + sg);
      if (gy) store_as(gy + o, d[1] + A(2) * vy * d[2] + vx * d[3] - sg);
    }
  }
}

// Dynamic shared memory a block may use on this device: the opt-in limit minus the kernel's
// static shared memory.
int dynamic_shared_limit(const void* kernel) {
  int dev = 0, optin = 0;
  cudaGetDevice(&dev);
  cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev);
  cudaFuncAttributes attr{};
  if (cudaFuncGetAttributes(&attr, kernel) != cudaSuccess) attr.sharedSizeBytes = 0;
  return optin - static_cast<int>(attr.sharedSizeBytes);
}

// Working sets in accumulator elements: the forward's sub-tile M, the adjoint's tile G.
int64_t fwd_elems(int M, const SsimVolGeometry& g) {
  const int64_t SR = M + g.wh - 1, S = M + g.ww - 1;
  return 2 * SR * S + 5 * SR * M + 5 * int64_t(g.wd) * M * M;
}
int64_t adjoint_elems(int G, const SsimVolGeometry& g) {
  return 4 * int64_t(G) * (G + g.ww - 1) + 4 * int64_t(g.wd) * G * G;
}

// The largest tile of {16, 8, 4} whose working set fits the kernel's shared memory, or 0.
template <typename K, typename Elems>
int pick_tile(K kernel, Elems elems, const SsimVolGeometry& geo, size_t acc_bytes, size_t& bytes) {
  const int limit = dynamic_shared_limit(reinterpret_cast<const void*>(kernel));
  for (int t : {16, 8, 4}) {
    bytes = acc_bytes * static_cast<size_t>(elems(t, geo));
    if (bytes <= static_cast<size_t>(limit)) {
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes));
      return t;
    }
  }
  return 0;
}

constexpr const char* kTooLarge = "fastiqa ssim volume: window too large for this GPU's shared memory";
constexpr const char* kTooMany = "fastiqa ssim volume: more than 65535 images x channels";

template <typename T, typename A>
const char* fwd_typed(Typed<T, A>, const void* x, const void* y, const SsimVolGeometry& geo, const double* window,
                      const double* c, void* map, const int64_t* smap, bool want_l1, bool comp, int64_t smk,
                      void* partials, cudaStream_t st) {
  if (geo.N * geo.C > 65535) return kTooMany;
  VolParams<A> P = make_params<A>(geo, window, c);
  if (map)
    for (int i = 0; i < 5; ++i) P.sm[i] = smap[i];
  P.smk = smk;
  auto kernel = comp ? ssim_volume_fwd_kernel<T, A, false, true> : ssim_volume_fwd_kernel<T, A, false, false>;
  size_t bytes = 0;
  const int M = pick_tile(kernel, fwd_elems, geo, sizeof(A), bytes);
  if (M == 0) return kTooLarge;
  const dim3 grid(static_cast<unsigned>(ssim_volume_fwd_units(geo)), static_cast<unsigned>(geo.N * geo.C));
  launch_kernel(kernel, grid, kThreads, bytes, st, static_cast<const T*>(x), static_cast<const T*>(y),
                static_cast<T*>(map), static_cast<A*>(partials), P, want_l1, M, nullptr, nullptr, nullptr);
  return last_error();
}

template <typename T, typename A>
const char* grad_typed(Typed<T, A>, const void* x, const void* y, const SsimVolGeometry& geo, const double* window,
                       const double* c, const void* weights, const void* dmap, const int64_t* sd, void* gx, void* gy,
                       const int64_t* sg, bool comp, bool comp_y, int64_t sdk, cudaStream_t st) {
  if (geo.N * geo.C > 65535) return kTooMany;
  VolParams<A> P = make_params<A>(geo, window, c);
  for (int i = 0; i < 5; ++i) {
    if (dmap) P.sd[i] = sd[i];
    P.sg[i] = sg[i];
  }
  P.sdk = sdk;
  P.comp_y = comp_y;
  P.nw = comp ? kNumComponentStats : kNumWeights;
  const auto* px = static_cast<const T*>(x);
  const auto* py = static_cast<const T*>(y);
  const auto* pw = static_cast<const A*>(weights);
  auto maps_kernel = comp ? ssim_volume_fwd_kernel<T, A, true, true> : ssim_volume_fwd_kernel<T, A, true, false>;
  auto adjoint = ssim_volume_adjoint_kernel<T, A>;
  size_t maps_bytes = 0, adj_bytes = 0;
  const int M = pick_tile(maps_kernel, fwd_elems, geo, sizeof(A), maps_bytes);
  const int G = pick_tile(adjoint, adjoint_elems, geo, sizeof(A), adj_bytes);
  if (M == 0 || G == 0) return kTooLarge;
  void* scratch = nullptr;  // the four coefficient maps, stream-ordered
  const size_t scratch_bytes = sizeof(A) * 4 * static_cast<size_t>(geo.N * geo.C * geo.Do * geo.Ho * geo.Wo);
  if (cudaMallocAsync(&scratch, scratch_bytes, st) != cudaSuccess) return last_error();
  auto* gm = static_cast<A*>(scratch);
  const unsigned planes = static_cast<unsigned>(geo.N * geo.C);
  launch_kernel(maps_kernel, dim3(static_cast<unsigned>(ssim_volume_fwd_units(geo)), planes), kThreads, maps_bytes,
                st, px, py, nullptr, nullptr, P, false, M, pw, static_cast<const T*>(dmap), gm);
  const int64_t units = ((geo.D + kSsimVolDepth - 1) / kSsimVolDepth) * ((geo.H + G - 1) / G) * ((geo.W + G - 1) / G);
  launch_kernel(adjoint, dim3(static_cast<unsigned>(units), planes), kThreads, adj_bytes, st, px, py, pw,
                static_cast<const A*>(gm), static_cast<T*>(gx), static_cast<T*>(gy), P, G);
  cudaFreeAsync(scratch, st);
  return last_error();
}

}  // namespace

const char* ssim_volume_fwd_launch(int dtype, const void* x, const void* y, const SsimVolGeometry& geo,
                                   const double* window, const double* c, void* map, const int64_t* smap,
                                   bool want_l1, bool components, int64_t smk, void* partials, void* stream) {
  auto st = static_cast<cudaStream_t>(stream);
  return for_dtype(dtype, "fastiqa ssim_volume_fwd_launch: unsupported dtype", [&](auto t) {
    return fwd_typed(t, x, y, geo, window, c, map, smap, want_l1, components, smk, partials, st);
  });
}

const char* ssim_volume_grad_launch(int dtype, const void* x, const void* y, const SsimVolGeometry& geo,
                                    const double* window, const double* c, const void* weights,
                                    const void* dmap, const int64_t* sd, void* gx, void* gy, const int64_t* sg,
                                    bool components, bool comp_y, int64_t sdk, void* stream) {
  auto st = static_cast<cudaStream_t>(stream);
  return for_dtype(dtype, "fastiqa ssim_volume_grad_launch: unsupported dtype", [&](auto t) {
    return grad_typed(t, x, y, geo, window, c, weights, dmap, sd, gx, gy, sg, components, comp_y, sdk, st);
  });
}

}  // namespace cuda
}  // namespace fastiqa
