// CUDA kernels of the pixel-loss family (torch-free; launched by pixel_host.cpp).
// Forward: grid-stride pass over the dense inputs in 16-byte chunks (128-bit loads
// and stores where every pointer is aligned, csrc/cuda/vec.cuh); each block writes one pair of
// partial sums (loss, weight); a one-block finalize kernel sums them in block
// order and applies the reduction. Bitwise reproducible: the block count depends
// on n only. Backward: one scaling pass over the saved elementwise gradient.
#include <cuda_runtime.h>

#include "../common/pixel_math.h"
#include "cuda_types.cuh"
#include "launch.cuh"
#include "pixel_launch.h"
#include "vec.cuh"

namespace fastiqa {
namespace cuda {
namespace {

using namespace fastiqa::pixel;

constexpr int kThreads = kMemThreads;
// Up to 65536 blocks: a thread's sequential grid-stride sum then spans at most
// n / (kMaxBlocks * kThreads) terms (128 at 2^31 elements), the rest of the sum is a
// tree (block_sum) and a compensated finalize: float32 sums as accurate as torch.sum.
constexpr int64_t kMaxBlocks = 65536;
constexpr int kItemsPerThread = 4;

// Weight elements of a chunk's elements i0, i0 + 1, ... (see WeightMode): one division
// per chunk, then counting. kPlane: element i = (m * channels + c) * inner + p reads weight
// m * inner + p; kPixel: element i reads weight i / channels (p: i % channels).
// inv: 1 / (channels * inner) and 1 / inner (kPlane), 1 / channels (kPixel), from the host.
struct WeightWalk {
  int64_t wi = 0, p = 0, c = 0;
  __device__ __forceinline__ WeightWalk(int64_t i0, int wmode, int64_t channels, int64_t inner, double inv0,
                                        double inv1) {
    if (wmode == kPlane) {
      int64_t rem;
      const int64_t m = div_i64(i0, channels * inner, inv0, rem);
      c = div_i64(rem, inner, inv1, p);
      wi = m * inner + p;
    } else if (wmode == kPixel) {
      wi = div_i64(i0, channels, inv0, p);
    } else {
      wi = i0;
    }
  }
  __device__ __forceinline__ void next(int wmode, int64_t channels, int64_t inner) {
    if (wmode == kPlane) {
      ++wi;
      if (++p == inner) {
        p = 0;
        wi -= inner;
        if (++c == channels) {
          c = 0;
          wi += inner;
        }
      }
    } else if (wmode == kPixel) {
      if (++p == channels) {
        p = 0;
        ++wi;
      }
    } else {
      ++wi;
    }
  }
};

// Elements go in chunks of Vec<T>::kN (csrc/cuda/vec.cuh): chunk q is elements
// [q * kN, q * kN + kN), chunks are grid-strided over the threads, and a thread sums its
// chunks' elements in element order. vec (every pointer used 16-byte aligned): whole
// chunks move as 128-bit loads / stores, else element by element; same sums either way.
template <typename T, typename A, int K, bool MAP, bool GRAD>
__global__ void __launch_bounds__(kThreads, kMemMinBlocks)
    pixel_fwd_kernel(const T* __restrict__ a, const T* __restrict__ b, const T* __restrict__ w,
                     T* __restrict__ map, T* __restrict__ grad, A* __restrict__ partials,
                     int64_t n, int wmode, int64_t channels, int64_t inner, double inv0, double inv1, A c,
                     A gmul, bool vec) {
  constexpr int V = Vec<T>::kN;
  __shared__ A shared[kThreads / 32];
  A acc = 0, accw = 0;
  const int64_t chunks = (n + V - 1) / V;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kThreads;
  for (int64_t q = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; q < chunks; q += stride) {
    const int64_t i0 = q * V;
    const bool whole = vec && i0 + V <= n;
    T ta[V], tb[V], tw[V], tm[V], tg[V];
    load_chunk(a + i0, whole, n - i0, ta);
    load_chunk(b + i0, whole, n - i0, tb);
    if (wmode == kFull) load_chunk(w + i0, whole, n - i0, tw);
    WeightWalk walk(i0, wmode == kFull ? kNoWeight : wmode, channels, inner, inv0, inv1);
    const int64_t rest = n - i0;
#pragma unroll
    for (int k = 0; k < V; ++k) {
      if (k >= rest) continue;
      A d = load_as<A>(&ta[k]) - load_as<A>(&tb[k]);
      A v, g;
      loss_and_grad<K, A>(d, c, v, g);
      if (wmode != kNoWeight) {
        A ww = wmode == kFull ? load_as<A>(&tw[k]) : load_as<A>(w + walk.wi);
        walk.next(wmode, channels, inner);
        v *= ww;
        g *= ww;
        accw += ww;
      }
      acc += v;
      if (MAP) store_as(&tm[k], v);
      if (GRAD) store_as(&tg[k], g * gmul);
    }
    if (MAP) store_chunk(map + i0, whole, n - i0, tm);
    if (GRAD) store_chunk(grad + i0, whole, n - i0, tg);
  }
  A s = block_sum<kThreads>(acc, shared);
  A sw = block_sum<kThreads>(accw, shared);
  if (threadIdx.x == 0) {
    partials[2 * blockIdx.x] = s;
    partials[2 * blockIdx.x + 1] = sw;
  }
}

// one block sums the partials in block order, each thread up to kMaxBlocks / kThreads = 256 of
// them with Kahan compensation (kahan_add, csrc/cuda/cuda_types.cuh)
template <typename A>
__global__ void __launch_bounds__(kThreads)
    pixel_finalize_kernel(const A* __restrict__ partials, int64_t blocks, A* out, A* gscale,
                          int64_t n, int reduction, double norm_scale, bool weighted) {
  __shared__ A shared[kThreads / 32];
  A s = 0, sw = 0, comp = 0, compw = 0;
  for (int64_t k = threadIdx.x; k < blocks; k += kThreads) {
    kahan_add(s, comp, partials[2 * k]);
    kahan_add(sw, compw, partials[2 * k + 1]);
  }
  s = block_sum<kThreads>(s, shared);
  sw = block_sum<kThreads>(sw, shared);
  if (threadIdx.x == 0) {
    A denom = 1;
    if (reduction == kMean) denom = static_cast<A>(n);
    // weighted_mean without a weight map: all weights 1 (the op contract of reference.pixel_fwd)
    if (reduction == kWeightedMean) denom = weighted ? sw * static_cast<A>(norm_scale) : static_cast<A>(n);
    *gscale = reduction == kWeightedMean ? A(1) / denom : A(1);
    if (reduction != kNone) *out = reduction == kSum ? s : s / denom;
  }
}

template <typename T, typename A>
__global__ void __launch_bounds__(kThreads, kMemMinBlocks)
    pixel_bwd_kernel(const T* __restrict__ g, T* __restrict__ gp, T* __restrict__ gt,
                     const A* __restrict__ grad_out, const A* __restrict__ gscale, int64_t n, bool vec) {
  constexpr int V = Vec<T>::kN;
  const A s = *grad_out * *gscale;
  const int64_t chunks = (n + V - 1) / V;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kThreads;
  for (int64_t q = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; q < chunks; q += stride) {
    const int64_t i0 = q * V;
    const bool whole = vec && i0 + V <= n;
    T tv[V], tp[V], tn[V];
    load_chunk(g + i0, whole, n - i0, tv);
#pragma unroll
    for (int k = 0; k < V; ++k) {
      const A v = load_as<A>(&tv[k]) * s;
      store_as(&tp[k], v);
      store_as(&tn[k], -v);
    }
    if (gp) store_chunk(gp + i0, whole, n - i0, tp);
    if (gt) store_chunk(gt + i0, whole, n - i0, tn);
  }
}

int64_t blocks_for(int64_t n) {
  int64_t b = (n + kThreads * kItemsPerThread - 1) / (kThreads * kItemsPerThread);
  if (b < 1) b = 1;
  return b < kMaxBlocks ? b : kMaxBlocks;
}

template <typename T, typename A, int K>
void launch_kind(const T* a, const T* b, const T* w, T* map, T* grad, A* partials, int64_t n,
                 int wmode, int64_t channels, int64_t inner, A c, A gmul, cudaStream_t st) {
  const int64_t blocks = blocks_for(n);
  const bool vec = vec_ptr_ok(a) && vec_ptr_ok(b) && (wmode != kFull || vec_ptr_ok(w)) && vec_ptr_ok(map) &&
                   vec_ptr_ok(grad);
  const double inv0 = 1.0 / static_cast<double>(wmode == kPlane ? channels * inner : channels);
  const double inv1 = 1.0 / static_cast<double>(inner);
  if (map && grad)
    launch_kernel(pixel_fwd_kernel<T, A, K, true, true>, blocks, kThreads, 0, st, a, b, w, map, grad, partials, n, wmode, channels, inner, inv0, inv1, c, gmul, vec);
  else if (map)
    launch_kernel(pixel_fwd_kernel<T, A, K, true, false>, blocks, kThreads, 0, st, a, b, w, map, grad, partials, n, wmode, channels, inner, inv0, inv1, c, gmul, vec);
  else if (grad)
    launch_kernel(pixel_fwd_kernel<T, A, K, false, true>, blocks, kThreads, 0, st, a, b, w, map, grad, partials, n, wmode, channels, inner, inv0, inv1, c, gmul, vec);
  else
    launch_kernel(pixel_fwd_kernel<T, A, K, false, false>, blocks, kThreads, 0, st, a, b, w, map, grad, partials, n, wmode, channels, inner, inv0, inv1, c, gmul, vec);
}

template <typename T, typename A>
void launch_fwd(Typed<T, A>, const void* a, const void* b, const void* w, void* map, void* grad,
                void* partials, void* out, void* gscale, int64_t n, int wmode, int64_t channels,
                int64_t inner, int kind, double c, int reduction, double norm_scale,
                cudaStream_t st) {
  auto* pa = static_cast<const T*>(a);
  auto* pb = static_cast<const T*>(b);
  auto* pw = static_cast<const T*>(w);
  auto* pm = static_cast<T*>(map);
  auto* pg = static_cast<T*>(grad);
  auto* pp = static_cast<A*>(partials);
  const A cc = static_cast<A>(c);
  // sum / mean know their divisor up front: store the gradient of the reduced loss
  const A gm = reduction == kMean ? A(1) / static_cast<A>(n) : A(1);
  if (kind == kL1) launch_kind<T, A, kL1>(pa, pb, pw, pm, pg, pp, n, wmode, channels, inner, cc, gm, st);
  else if (kind == kMSE) launch_kind<T, A, kMSE>(pa, pb, pw, pm, pg, pp, n, wmode, channels, inner, cc, gm, st);
  else launch_kind<T, A, kCharbonnier>(pa, pb, pw, pm, pg, pp, n, wmode, channels, inner, cc, gm, st);
  launch_kernel(pixel_finalize_kernel<A>, 1, kThreads, 0, st, pp, blocks_for(n), static_cast<A*>(out),
                                                   static_cast<A*>(gscale), n, reduction, norm_scale, wmode != kNoWeight);
}

template <typename T, typename A>
void launch_bwd(Typed<T, A>, const void* g, void* gp, void* gt, const void* grad_out, const void* gscale,
                int64_t n, cudaStream_t st) {
  if (n == 0) return;
  const bool vec = vec_ptr_ok(g) && vec_ptr_ok(gp) && vec_ptr_ok(gt);
  launch_kernel(pixel_bwd_kernel<T, A>, blocks_for(n), kThreads, 0, st,
      static_cast<const T*>(g), static_cast<T*>(gp), static_cast<T*>(gt),
      static_cast<const A*>(grad_out), static_cast<const A*>(gscale), n, vec);
}

}  // namespace

int64_t pixel_fwd_blocks(int64_t n) { return blocks_for(n); }

const char* pixel_fwd_launch(int dtype, const void* a, const void* b, const void* w, void* map,
                             void* grad, void* partials, void* out, void* gscale, int64_t n,
                             int wmode, int64_t channels, int64_t inner, int kind, double c,
                             int reduction, double norm_scale, void* stream) {
  auto st = static_cast<cudaStream_t>(stream);
  return for_dtype(dtype, "fastiqa pixel_fwd_launch: unsupported dtype", [&](auto t) {
    launch_fwd(t, a, b, w, map, grad, partials, out, gscale, n, wmode, channels, inner, kind, c, reduction, norm_scale, st);
  });
}

const char* pixel_bwd_launch(int dtype, const void* g, void* gp, void* gt, const void* grad_out,
                             const void* gscale, int64_t n, void* stream) {
  auto st = static_cast<cudaStream_t>(stream);
  return for_dtype(dtype, "fastiqa pixel_bwd_launch: unsupported dtype",
                   [&](auto t) { launch_bwd(t, g, gp, gt, grad_out, gscale, n, st); });
}

}  // namespace cuda
}  // namespace fastiqa
