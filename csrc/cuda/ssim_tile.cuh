// The (H, W) tile blurs of the SSIM kernels, shared by the images' (csrc/cuda/ssim.cu) and
// the volumes' (csrc/cuda/ssim_volume.cu) kernels. P: either's kernel parameters (winh / winw
// taps gh / gw, offsets offh / offw, padding, H, W, Ho, Wo). Also the components' per-pixel
// helpers of both (COMP kernels).
#pragma once
#include <cstdint>

#include "../common/ssim_math.h"
#include "cuda_types.cuh"

namespace fastiqa {
namespace cuda {

// Horizontal blur of the five quantities for source rows 0..SR-1 (row pitch S) and output
// columns m0c .. m0c + M - 1 (zeros for columns outside 0..Wo-1): h[(q * SR + i) * M + col].
template <typename Prm, typename A>
__device__ void horizontal(const Prm& P, const A* sx, const A* sy, int SR, int S, int M, int64_t m0c,
                           int64_t s0c, A* h) {
  for (int idx = threadIdx.x; idx < SR * M; idx += blockDim.x) {
    const int i = idx / M, col = idx % M;
    const int64_t pc = m0c + col;
    A a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0;
    if (pc >= 0 && pc < P.Wo) {
      for (int k = 0; k < P.winw; ++k) {
        const int64_t s = ssim::source_index(pc + k, P.W, P.offw, P.padding);
        if (s < 0) continue;
        const int j = static_cast<int>(s - s0c);
        const A vx = sx[i * S + j], vy = sy[i * S + j], gk = P.gw[k];
        a0 += gk * vx;
        a1 += gk * vy;
        a2 += gk * (vx * vx);
        a3 += gk * (vy * vy);
        a4 += gk * (vx * vy);
      }
    }
    h[(0 * SR + i) * M + col] = a0;
    h[(1 * SR + i) * M + col] = a1;
    h[(2 * SR + i) * M + col] = a2;
    h[(3 * SR + i) * M + col] = a3;
    h[(4 * SR + i) * M + col] = a4;
  }
}

// Vertical blur at output pixel (pr, col) (pr valid): the five statistics.
template <typename Prm, typename A>
__device__ __forceinline__ void vertical(const Prm& P, const A* h, int SR, int M, int64_t pr, int col,
                                         int64_t s0r, A st[5]) {
  for (int q = 0; q < 5; ++q) st[q] = 0;
  for (int k = 0; k < P.winh; ++k) {
    const int64_t s = ssim::source_index(pr + k, P.H, P.offh, P.padding);
    if (s < 0) continue;
    const int i = static_cast<int>(s - s0r);
    const A gk = P.gh[k];
    for (int q = 0; q < 5; ++q) st[q] += gk * h[(q * SR + i) * M + col];
  }
}

// Padded coordinates that read source index s (1 to 3 of them): s + off, and the mirrored
// ones under reflect padding.
__device__ __forceinline__ int padded_of(int64_t s, int64_t n, int off, int padding, int64_t u[3]) {
  int cnt = 0;
  u[cnt++] = s + off;
  if (padding == ssim::kSameReflect) {
    if (s >= 1 && s <= off) u[cnt++] = off - s;
    if (s >= n - 1 - off && s <= n - 2) u[cnt++] = off + 2 * (n - 1) - s;
  }
  return cnt;
}

// The taps of the adjoint blur at source index s (extent n) along one axis (VERTICAL: the
// winh taps gh, else the winw taps gw; the taps are read from the kernel parameters by index,
// never through a pointer, which would copy them to local memory): add(g_k, p) for every
// output position p, local to the region of M starting at m0, whose window reads s.
template <bool VERTICAL, typename Prm, typename Add>
__device__ __forceinline__ void adjoint_taps(const Prm& P, int64_t s, int64_t n, int64_t m0, int M, Add add) {
  int64_t u[3];
  const int win = VERTICAL ? P.winh : P.winw;
  const int cnt = padded_of(s, n, VERTICAL ? P.offh : P.offw, P.padding, u);
  for (int t = 0; t < cnt; ++t)
    for (int k = 0; k < win; ++k) {
      const int64_t p = u[t] - k - m0;
      if (p >= 0 && p < M) add(VERTICAL ? P.gh[k] : P.gw[k], static_cast<int>(p));
    }
}

// COMP gradient: the weights on l, c, s at one output pixel: the plane's (its weights' columns
// 3..5, per output pixel: times inv_out) plus the map weights of l, c, s at d + sdk, 2 sdk, 3 sdk
// (d: the S map weight of the pixel, or null).
template <typename T, typename A>
__device__ __forceinline__ void component_weights_at(const A* plane_weights, A inv_out, const T* d, int64_t sdk,
                                                     A wq[3]) {
  for (int k = 0; k < 3; ++k) wq[k] = plane_weights[3 + k] * inv_out;
  if (d)
    for (int k = 0; k < 3; ++k) wq[k] += load_as<A>(d + (k + 1) * sdk);
}

// COMP forward at one output pixel: S, cs, l, c, s (ssim_components) of the statistics st added
// to the thread's sums, and the 4 maps S, l, c, s stored at m (its S element; null: no map), smk
// apart.
template <typename T, typename A>
__device__ __forceinline__ void components_at(const A st[5], A c1, A c2, A& sum_s, A& sum_cs, A& sum_lum,
                                              A& sum_con, A& sum_str, T* m, int64_t smk) {
  A sv, cv, lv, kv, tv;
  ssim::ssim_components(st[0], st[1], st[2], st[3], st[4], c1, c2, sv, cv, lv, kv, tv);
  sum_s += sv;
  sum_cs += cv;
  sum_lum += lv;
  sum_con += kv;
  sum_str += tv;
  if (!m) return;
  store_as(m, sv);
  store_as(m + smk, lv);
  store_as(m + 2 * smk, kv);
  store_as(m + 3 * smk, tv);
}

// The forward's partial of one block at out: the block sums of S, cs, |x-y| (and with COMP l, c,
// s), reduced through red (kThreads / 32 elements of shared memory), in that order; thread 0 writes.
template <int kThreads, bool COMP, typename A>
__device__ __forceinline__ void write_partials(A* out, A s, A cs, A l1, A lum, A con, A str, A* red) {
  const A v[6] = {s, cs, l1, lum, con, str};
  for (int k = 0; k < (COMP ? 6 : 3); ++k) {
    const A t = block_sum<kThreads>(v[k], red);
    if (threadIdx.x == 0) out[k] = t;
  }
}

}  // namespace cuda
}  // namespace fastiqa
