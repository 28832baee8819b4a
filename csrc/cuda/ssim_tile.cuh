// The (H, W) tile blurs of the SSIM kernels, shared by the images' (csrc/cuda/ssim.cu) and
// the volumes' (csrc/cuda/ssim_volume.cu) kernels. P: either's kernel parameters (winh / winw
// taps gh / gw, offsets offh / offw, padding, H, W, Ho, Wo).
#pragma once
#include <cstdint>

#include "../common/ssim_math.h"

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

}  // namespace cuda
}  // namespace fastiqa
