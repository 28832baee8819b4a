// CUDA kernels of the pixel-loss family (torch-free; launched by pixel_host.cpp).
// Forward: grid-stride pass over the dense inputs; each block writes one pair of
// partial sums (loss, weight); a one-block finalize kernel sums them in block
// order and applies the reduction. Bitwise reproducible: the block count depends
// on n only. Backward: one scaling pass over the saved elementwise gradient.
#include <cuda_runtime.h>

#include "../common/pixel_math.h"
#include "cuda_types.cuh"
#include "launch.cuh"
#include "pixel_launch.h"

namespace fastiqa {
namespace cuda {
namespace {

using namespace fastiqa::pixel;

constexpr int kThreads = 256;
// Up to 65536 blocks: a thread's sequential grid-stride sum then spans at most
// n / (kMaxBlocks * kThreads) terms (128 at 2^31 elements), the rest of the sum is a
// tree (block_sum) and a compensated finalize: float32 sums as accurate as torch.sum.
constexpr int64_t kMaxBlocks = 65536;
constexpr int kItemsPerThread = 4;

// Weight element of flat input element i (see WeightMode). 64-bit integer
// division is a called subroutine on the GPU (registers spill around the call):
// indices below 2^32 use the inlined 32-bit division, larger ones a quotient from
// a double-precision reciprocal, corrected by one step (exact for i < 2^53).
__device__ __forceinline__ int64_t div_big(int64_t i, int64_t d, int64_t& rem) {
  int64_t q = static_cast<int64_t>(static_cast<double>(i) * (1.0 / static_cast<double>(d)));
  int64_t r = i - q * d;
  if (r < 0) { q -= 1; r += d; } else if (r >= d) { q += 1; r -= d; }
  rem = r;
  return q;
}

__device__ __forceinline__ int64_t weight_index(int64_t i, int wmode, int64_t channels,
                                                int64_t inner, bool small) {
  if (wmode == kPlane) {
    if (small) {
      const uint32_t u = static_cast<uint32_t>(i), ci = static_cast<uint32_t>(channels * inner);
      const uint32_t in = static_cast<uint32_t>(inner);
      return static_cast<int64_t>((u / ci) * in + u % in);
    }
    int64_t within_image, within_plane;
    const int64_t image = div_big(i, channels * inner, within_image);
    div_big(within_image, inner, within_plane);
    return image * inner + within_plane;
  }
  if (wmode == kPixel) {
    if (small) return static_cast<int64_t>(static_cast<uint32_t>(i) / static_cast<uint32_t>(channels));
    int64_t unused;
    return div_big(i, channels, unused);
  }
  return i;
}

template <typename T, typename A, int K, bool MAP, bool GRAD>
__global__ void __launch_bounds__(kThreads)
    pixel_fwd_kernel(const T* __restrict__ a, const T* __restrict__ b, const T* __restrict__ w,
                     T* __restrict__ map, T* __restrict__ grad, A* __restrict__ partials,
                     int64_t n, int wmode, int64_t channels, int64_t inner, A c, A gmul) {
  __shared__ A shared[kThreads / 32];
  A acc = 0, accw = 0;
  const bool small = n < (int64_t(1) << 32);
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kThreads;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; i < n; i += stride) {
    A d = load_as<A>(a + i) - load_as<A>(b + i);
    A v, g;
    loss_and_grad<K, A>(d, c, v, g);
    if (wmode != kNoWeight) {
      const int64_t wi = weight_index(i, wmode, channels, inner, small);
      A ww = load_as<A>(w + wi);
      v *= ww;
      g *= ww;
      accw += ww;
    }
    acc += v;
    if (MAP) store_as(map + i, v);
    if (GRAD) store_as(grad + i, g * gmul);
  }
  A s = block_sum<kThreads>(acc, shared);
  A sw = block_sum<kThreads>(accw, shared);
  if (threadIdx.x == 0) {
    partials[2 * blockIdx.x] = s;
    partials[2 * blockIdx.x + 1] = sw;
  }
}

// s + v with Kahan compensation in comp (Higham, Accuracy and Stability, 4.3): the
// finalize's threads each sum up to kMaxBlocks / kThreads = 256 partials.
template <typename A>
__device__ __forceinline__ void kahan_add(A& s, A& comp, A v) {
  const A y = v - comp;
  const A t = s + y;
  comp = (t - s) - y;
  s = t;
}

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
__global__ void __launch_bounds__(kThreads)
    pixel_bwd_kernel(const T* __restrict__ g, T* __restrict__ gp, T* __restrict__ gt,
                     const A* __restrict__ grad_out, const A* __restrict__ gscale, int64_t n) {
  const A s = *grad_out * *gscale;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kThreads;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; i < n; i += stride) {
    A v = load_as<A>(g + i) * s;
    if (gp) store_as(gp + i, v);
    if (gt) store_as(gt + i, -v);
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
  if (map && grad)
    launch_kernel(pixel_fwd_kernel<T, A, K, true, true>, blocks, kThreads, 0, st, a, b, w, map, grad, partials, n, wmode, channels, inner, c, gmul);
  else if (map)
    launch_kernel(pixel_fwd_kernel<T, A, K, true, false>, blocks, kThreads, 0, st, a, b, w, map, grad, partials, n, wmode, channels, inner, c, gmul);
  else if (grad)
    launch_kernel(pixel_fwd_kernel<T, A, K, false, true>, blocks, kThreads, 0, st, a, b, w, map, grad, partials, n, wmode, channels, inner, c, gmul);
  else
    launch_kernel(pixel_fwd_kernel<T, A, K, false, false>, blocks, kThreads, 0, st, a, b, w, map, grad, partials, n, wmode, channels, inner, c, gmul);
}

template <typename T, typename A>
void launch_fwd(const void* a, const void* b, const void* w, void* map, void* grad,
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
void launch_bwd(const void* g, void* gp, void* gt, const void* grad_out, const void* gscale,
                int64_t n, cudaStream_t st) {
  if (n == 0) return;
  launch_kernel(pixel_bwd_kernel<T, A>, blocks_for(n), kThreads, 0, st,
      static_cast<const T*>(g), static_cast<T*>(gp), static_cast<T*>(gt),
      static_cast<const A*>(grad_out), static_cast<const A*>(gscale), n);
}

const char* last_error() {
  cudaError_t err = cudaGetLastError();
  return err == cudaSuccess ? nullptr : cudaGetErrorString(err);
}

}  // namespace

int64_t pixel_fwd_blocks(int64_t n) { return blocks_for(n); }

const char* pixel_fwd_launch(int dtype, const void* a, const void* b, const void* w, void* map,
                             void* grad, void* partials, void* out, void* gscale, int64_t n,
                             int wmode, int64_t channels, int64_t inner, int kind, double c,
                             int reduction, double norm_scale, void* stream) {
  auto st = static_cast<cudaStream_t>(stream);
  switch (dtype) {
    case kF32: launch_fwd<float, float>(a, b, w, map, grad, partials, out, gscale, n, wmode, channels, inner, kind, c, reduction, norm_scale, st); break;
    case kF64: launch_fwd<double, double>(a, b, w, map, grad, partials, out, gscale, n, wmode, channels, inner, kind, c, reduction, norm_scale, st); break;
    case kF16: launch_fwd<__half, float>(a, b, w, map, grad, partials, out, gscale, n, wmode, channels, inner, kind, c, reduction, norm_scale, st); break;
    case kBF16: launch_fwd<__nv_bfloat16, float>(a, b, w, map, grad, partials, out, gscale, n, wmode, channels, inner, kind, c, reduction, norm_scale, st); break;
    default: return "fastiqa pixel_fwd_launch: unsupported dtype";
  }
  return last_error();
}

const char* pixel_bwd_launch(int dtype, const void* g, void* gp, void* gt, const void* grad_out,
                             const void* gscale, int64_t n, void* stream) {
  auto st = static_cast<cudaStream_t>(stream);
  switch (dtype) {
    case kF32: launch_bwd<float, float>(g, gp, gt, grad_out, gscale, n, st); break;
    case kF64: launch_bwd<double, double>(g, gp, gt, grad_out, gscale, n, st); break;
    case kF16: launch_bwd<__half, float>(g, gp, gt, grad_out, gscale, n, st); break;
    case kBF16: launch_bwd<__nv_bfloat16, float>(g, gp, gt, grad_out, gscale, n, st); break;
    default: return "fastiqa pixel_bwd_launch: unsupported dtype";
  }
  return last_error();
}

}  // namespace cuda
}  // namespace fastiqa
