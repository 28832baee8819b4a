// CUDA kernels of the perceptual distance heads (torch-free; launched by perceptual_host.cpp;
// math: csrc/common/perceptual_math.h, contract: fastiqa/backends/reference/_perceptual.py).
//
// LPIPS: one thread per pixel, looping over the channels (features are NCHW: the threads of a
// warp read neighbouring pixels of one channel, coalesced). A pixel's channels are read once
// for the norms and once more for the distance (the second read comes from L1/L2: a block's
// 256 pixels x C channels). Each block writes one partial sum; a second kernel sums an image's
// partials in block order. The backward reads a pixel's channels three times (norms, the dot
// products g . x and g . y, the gradients).
// DISTS: one block per plane (n, c): the means, then the centred variances and covariance (two
// passes, as accurate as the reference's own), the plane's alpha S1 + beta S2; a second kernel
// sums an image's planes in channel order. The backward recomputes a plane's statistics and
// writes both gradients in one more pass.
// Block counts depend on the shape only: bitwise reproducible on every GPU.
#include <cuda_runtime.h>

#include <algorithm>

#include "../common/perceptual_math.h"
#include "cuda_types.cuh"
#include "launch.cuh"
#include "perceptual_launch.h"

namespace fastiqa {
namespace cuda {
namespace {

using namespace fastiqa::perceptual;

constexpr int kThreads = kMemThreads;
constexpr int64_t kMaxBlocksPerImage = 1024;  // a thread then sums hw / 262144 pixels at most

int64_t lpips_blocks(int64_t hw) {
  return std::max<int64_t>(1, std::min(kMaxBlocksPerImage, (hw + kThreads - 1) / kThreads));
}

template <typename A> __device__ __forceinline__ A sqrt_acc(A v) {
  if constexpr (sizeof(A) == 4) {
    return sqrtf(v);
  } else {
    return sqrt(v);
  }
}

// ||x|| and ||y|| over the channels of one pixel (x, y point at channel 0; channel stride hw)
template <typename T, typename A>
__device__ __forceinline__ void pixel_norms(const T* x, const T* y, int64_t c, int64_t hw, A& rx, A& ry) {
  A sx = 0, sy = 0;
  for (int64_t k = 0; k < c; ++k) {
    const A a = load_as<A>(x + k * hw), b = load_as<A>(y + k * hw);
    sx += a * a;
    sy += b * b;
  }
  rx = sqrt_acc(sx);
  ry = sqrt_acc(sy);
}

template <typename T, typename A>
__global__ void __launch_bounds__(kThreads)
    lpips_fwd_kernel(const T* __restrict__ x, const T* __restrict__ y, const A* __restrict__ w,
                     A* __restrict__ partials, int64_t c, int64_t hw, int64_t blocks) {
  __shared__ A shared[kThreads / 32];
  const int64_t img = blockIdx.x / blocks, b = blockIdx.x % blocks;
  const T* xi = x + img * c * hw;
  const T* yi = y + img * c * hw;
  A acc = 0;
  for (int64_t p = b * kThreads + threadIdx.x; p < hw; p += blocks * kThreads) {
    A rx, ry;
    pixel_norms(xi + p, yi + p, c, hw, rx, ry);
    const A ux = unit_scale(rx), t = norm_ratio(rx, ry);
    A v = 0;
    for (int64_t k = 0; k < c; ++k) {
      // u_c - v_c as (a - b t) / (|x| + eps): exactly 0 where x = y, whatever nvcc contracts
      const A d = unit_diff(load_as<A>(xi + p + k * hw), load_as<A>(yi + p + k * hw), t, ux);
      v += w[k] * d * d;
    }
    acc += v;
  }
  const A s = block_sum<kThreads>(acc, shared);
  if (threadIdx.x == 0) partials[blockIdx.x] = s;
}

template <typename T, typename A>
__global__ void __launch_bounds__(kThreads)
    lpips_bwd_kernel(const T* __restrict__ x, const T* __restrict__ y, const A* __restrict__ w,
                     const A* __restrict__ grad_out, T* __restrict__ gx, T* __restrict__ gy, int64_t c,
                     int64_t hw, int64_t blocks) {
  const int64_t img = blockIdx.x / blocks, b = blockIdx.x % blocks;
  const int64_t base = img * c * hw;
  const A kk = A(2) * grad_out[img] / static_cast<A>(hw);
  for (int64_t p = b * kThreads + threadIdx.x; p < hw; p += blocks * kThreads) {
    const T* xp = x + base + p;
    const T* yp = y + base + p;
    A rx, ry;
    pixel_norms(xp, yp, c, hw, rx, ry);
    const A ux = unit_scale(rx), uy = unit_scale(ry), t = norm_ratio(rx, ry);
    A dx = 0, dy = 0;  // g . x and g . y, g_c = kk w_c (u_c - v_c): 0 where x = y
    for (int64_t k = 0; k < c; ++k) {
      const A a = load_as<A>(xp + k * hw), bb = load_as<A>(yp + k * hw);
      const A g = kk * w[k] * unit_diff(a, bb, t, ux);
      dx += g * a;
      dy += g * bb;
    }
    const A qx = unit_grad_coef(dx, rx, ux), qy = unit_grad_coef(dy, ry, uy);
    for (int64_t k = 0; k < c; ++k) {
      const A a = load_as<A>(xp + k * hw), bb = load_as<A>(yp + k * hw);
      const A g = kk * w[k] * unit_diff(a, bb, t, ux);
      if (gx) store_as(gx + base + p + k * hw, g * ux - a * qx);
      if (gy) store_as(gy + base + p + k * hw, -g * uy + bb * qy);
    }
  }
}

// every thread gets value (written by thread 0) after the barrier
template <typename A> __device__ __forceinline__ A broadcast(A value, A* slot) {
  if (threadIdx.x == 0) *slot = value;
  __syncthreads();
  return *slot;
}

// Unrolling of the plane loops: 4 loads of each input in flight a thread (2 in float64, where
// 4 made ptxas spill around the double divisions' slow path on sm_80 / sm_90 / sm_100)
template <typename A> constexpr int kPlaneUnroll = sizeof(A) == 4 ? 4 : 2;

// Plane statistics of (x, y), hw pixels: means, then centred variances and covariance (1 / hw).
template <typename T, typename A>
__device__ __forceinline__ void plane_stats(const T* x, const T* y, int64_t hw, A* shared, A* slot, A& mx,
                                            A& my, A& vx, A& vy, A& cov) {
  const A inv = A(1) / static_cast<A>(hw);
  A sx = 0, sy = 0;
#pragma unroll kPlaneUnroll<A>  // several loads in flight a thread: latency-bound otherwise
  for (int64_t p = threadIdx.x; p < hw; p += kThreads) {
    sx += load_as<A>(x + p);
    sy += load_as<A>(y + p);
  }
  mx = broadcast(block_sum<kThreads>(sx, shared) * inv, slot);
  my = broadcast(block_sum<kThreads>(sy, shared) * inv, slot + 1);
  A sxx = 0, syy = 0, sxy = 0;
#pragma unroll kPlaneUnroll<A>
  for (int64_t p = threadIdx.x; p < hw; p += kThreads) {
    const A a = load_as<A>(x + p) - mx, b = load_as<A>(y + p) - my;
    sxx += a * a;
    syy += b * b;
    sxy += a * b;
  }
  vx = broadcast(block_sum<kThreads>(sxx, shared) * inv, slot + 2);
  vy = broadcast(block_sum<kThreads>(syy, shared) * inv, slot + 3);
  cov = broadcast(block_sum<kThreads>(sxy, shared) * inv, slot + 4);
}

template <typename T, typename A>
__global__ void __launch_bounds__(kThreads)
    dists_fwd_kernel(const T* __restrict__ x, const T* __restrict__ y, const A* __restrict__ w,
                     A* __restrict__ planes, int64_t c, int64_t hw) {
  __shared__ A shared[kThreads / 32];
  __shared__ A slot[5];
  const int64_t plane = blockIdx.x, ch = plane % c;
  A mx, my, vx, vy, cov;
  plane_stats(x + plane * hw, y + plane * hw, hw, shared, slot, mx, my, vx, vy, cov);
  if (threadIdx.x == 0) planes[plane] = dists_plane_value(mx, my, vx, vy, cov, w[ch], w[c + ch]);
}

template <typename T, typename A>
__global__ void __launch_bounds__(kThreads)
    dists_bwd_kernel(const T* __restrict__ x, const T* __restrict__ y, const A* __restrict__ w,
                     const A* __restrict__ grad_out, T* __restrict__ gx, T* __restrict__ gy, int64_t c,
                     int64_t hw) {
  __shared__ A shared[kThreads / 32];
  __shared__ A slot[5];
  const int64_t plane = blockIdx.x, ch = plane % c, img = plane / c;
  const T* xp = x + plane * hw;
  const T* yp = y + plane * hw;
  A mx, my, vx, vy, cov;
  plane_stats(xp, yp, hw, shared, slot, mx, my, vx, vy, cov);
  const A go = grad_out[img] / static_cast<A>(hw);
  const DistsGrad<A> g = dists_plane_grad(mx, my, vx, vy, cov, w[ch] * go, w[c + ch] * go);
#pragma unroll kPlaneUnroll<A>
  for (int64_t p = threadIdx.x; p < hw; p += kThreads) {
    const A a = load_as<A>(xp + p) - mx, b = load_as<A>(yp + p) - my;
    if (gx) store_as(gx + plane * hw + p, g.gx0 + g.gdd * a + g.gdo * b);
    if (gy) store_as(gy + plane * hw + p, g.gy0 + g.gdd * b + g.gdo * a);
  }
}

// value[i] = scale * the sum of partials[i * count : (i + 1) * count], in a fixed order
template <typename A>
__global__ void __launch_bounds__(kThreads)
    image_sum_kernel(const A* __restrict__ partials, A* __restrict__ value, int64_t count, A scale) {
  __shared__ A shared[kThreads / 32];
  const A* p = partials + static_cast<int64_t>(blockIdx.x) * count;
  A s = 0, comp = 0;
  for (int64_t k = threadIdx.x; k < count; k += kThreads) kahan_add(s, comp, p[k]);
  const A t = block_sum<kThreads>(s, shared);
  if (threadIdx.x == 0) value[blockIdx.x] = t * scale;
}

const char* check_shape(int64_t n, int64_t c, int64_t hw, int64_t blocks_per_image) {
  if (n <= 0 || c <= 0 || hw <= 0) return "perceptual head: empty features";
  if (n * blocks_per_image > 0x7fffffffLL || n > 0x7fffffffLL) return "perceptual head: too many blocks";
  return nullptr;
}

// The typed launches (T storage, A accumulator: csrc/cuda/launch.cuh for_dtype)
template <typename T, typename A>
void lpips_fwd_typed(Typed<T, A>, const void* x, const void* y, const void* w, void* partials, void* value,
                     int64_t n, int64_t c, int64_t hw, int64_t blocks, cudaStream_t st) {
  launch_kernel(lpips_fwd_kernel<T, A>, dim3(static_cast<unsigned>(n * blocks)), dim3(kThreads), 0, st,
                static_cast<const T*>(x), static_cast<const T*>(y), static_cast<const A*>(w),
                static_cast<A*>(partials), c, hw, blocks);
  launch_kernel(image_sum_kernel<A>, dim3(static_cast<unsigned>(n)), dim3(kThreads), 0, st,
                static_cast<const A*>(partials), static_cast<A*>(value), blocks, A(1) / static_cast<A>(hw));
}

template <typename T, typename A>
void lpips_bwd_typed(Typed<T, A>, const void* x, const void* y, const void* w, const void* grad_out, void* gx,
                     void* gy, int64_t n, int64_t c, int64_t hw, int64_t blocks, cudaStream_t st) {
  launch_kernel(lpips_bwd_kernel<T, A>, dim3(static_cast<unsigned>(n * blocks)), dim3(kThreads), 0, st,
                static_cast<const T*>(x), static_cast<const T*>(y), static_cast<const A*>(w),
                static_cast<const A*>(grad_out), static_cast<T*>(gx), static_cast<T*>(gy), c, hw, blocks);
}

template <typename T, typename A>
void dists_fwd_typed(Typed<T, A>, const void* x, const void* y, const void* w, void* planes, void* value,
                     int64_t n, int64_t c, int64_t hw, cudaStream_t st) {
  launch_kernel(dists_fwd_kernel<T, A>, dim3(static_cast<unsigned>(n * c)), dim3(kThreads), 0, st,
                static_cast<const T*>(x), static_cast<const T*>(y), static_cast<const A*>(w),
                static_cast<A*>(planes), c, hw);
  launch_kernel(image_sum_kernel<A>, dim3(static_cast<unsigned>(n)), dim3(kThreads), 0, st,
                static_cast<const A*>(planes), static_cast<A*>(value), c, A(1));
}

template <typename T, typename A>
void dists_bwd_typed(Typed<T, A>, const void* x, const void* y, const void* w, const void* grad_out, void* gx,
                     void* gy, int64_t n, int64_t c, int64_t hw, cudaStream_t st) {
  launch_kernel(dists_bwd_kernel<T, A>, dim3(static_cast<unsigned>(n * c)), dim3(kThreads), 0, st,
                static_cast<const T*>(x), static_cast<const T*>(y), static_cast<const A*>(w),
                static_cast<const A*>(grad_out), static_cast<T*>(gx), static_cast<T*>(gy), c, hw);
}

}  // namespace

int64_t lpips_fwd_partials(int64_t n, int64_t hw) { return n * lpips_blocks(hw); }

const char* lpips_fwd_launch(int dtype, const void* x, const void* y, const void* w, void* partials, void* value,
                             int64_t n, int64_t c, int64_t hw, void* stream) {
  const int64_t blocks = lpips_blocks(hw);
  if (const char* err = check_shape(n, c, hw, blocks)) return err;
  return for_dtype(dtype, "lpips_fwd_launch: unsupported dtype", [&](auto t) {
    lpips_fwd_typed(t, x, y, w, partials, value, n, c, hw, blocks, static_cast<cudaStream_t>(stream));
  });
}

const char* lpips_bwd_launch(int dtype, const void* x, const void* y, const void* w, const void* grad_out, void* gx,
                             void* gy, int64_t n, int64_t c, int64_t hw, void* stream) {
  const int64_t blocks = lpips_blocks(hw);
  if (const char* err = check_shape(n, c, hw, blocks)) return err;
  if (!gx && !gy) return nullptr;
  return for_dtype(dtype, "lpips_bwd_launch: unsupported dtype", [&](auto t) {
    lpips_bwd_typed(t, x, y, w, grad_out, gx, gy, n, c, hw, blocks, static_cast<cudaStream_t>(stream));
  });
}

const char* dists_fwd_launch(int dtype, const void* x, const void* y, const void* w, void* planes, void* value,
                             int64_t n, int64_t c, int64_t hw, void* stream) {
  if (const char* err = check_shape(n, c, hw, c)) return err;
  return for_dtype(dtype, "dists_fwd_launch: unsupported dtype", [&](auto t) {
    dists_fwd_typed(t, x, y, w, planes, value, n, c, hw, static_cast<cudaStream_t>(stream));
  });
}

const char* dists_bwd_launch(int dtype, const void* x, const void* y, const void* w, const void* grad_out, void* gx,
                             void* gy, int64_t n, int64_t c, int64_t hw, void* stream) {
  if (const char* err = check_shape(n, c, hw, c)) return err;
  if (!gx && !gy) return nullptr;
  return for_dtype(dtype, "dists_bwd_launch: unsupported dtype", [&](auto t) {
    dists_bwd_typed(t, x, y, w, grad_out, gx, gy, n, c, hw, static_cast<cudaStream_t>(stream));
  });
}

}  // namespace cuda
}  // namespace fastiqa
