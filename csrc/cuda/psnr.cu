// CUDA kernels of the psnr family (torch-free; launched by psnr_host.cpp).
// Forward: grid (blocks per image, N); each block strides over the samples of
// its image's cropped region (any strides; for channels-last the channel is the
// fastest index, so neighbouring threads read neighbouring addresses), applies
// the fused quantisation / BT.601 luma (csrc/common/psnr_math.h), optionally
// writes the gradient of the per-image mean, and stores one partial sum. A
// finalize kernel (one block per image) sums the partials in block order. Without a
// crop, dense images (NCHW, channels-last, the Y channel of NCHW) go in 16-byte chunks:
// 128-bit loads and stores where aligned (Geo::flat, csrc/cuda/vec.cuh).
// Bitwise reproducible: the block count depends on the shape only.
// Backward: one scaling pass, grad_x = grad * grad_out[image], grad_y = -grad_x (chunks).
#include <cuda_runtime.h>

#include "../common/psnr_math.h"
#include "cuda_types.cuh"
#include "launch.cuh"
#include "psnr_launch.h"
#include "vec.cuh"

namespace fastiqa {
namespace cuda {
namespace {

using namespace fastiqa::psnr;

constexpr int kThreads = kMemThreads;

struct Geo {
  int64_t sn, sc, sh, sw;
  int64_t crop;
  uint32_t c, hh, ww, count;
  bool cl;  // channels-last order of the samples (channel fastest)
  // flat: no crop and sample i at element i of its image (dense NCHW or channels-last; for the
  // Y channel pixel i at element i of the R plane, G and B planes sc and 2 sc further): the
  // samples go in 16-byte chunks (csrc/cuda/vec.cuh), as 128-bit loads / stores when vec
  // (every image, plane and pointer 16-byte aligned)
  bool flat, vec;
};

// Offset (elements, within image 0) of sample i of the statistic.
template <bool LUMA>
__device__ __forceinline__ int64_t sample_offset(const Geo& g, uint32_t i) {
  uint32_t ch = 0, h, w;
  if (LUMA) {
    h = i / g.ww;
    w = i - h * g.ww;
  } else if (g.cl) {
    const uint32_t px = i / g.c;
    ch = i - px * g.c;
    h = px / g.ww;
    w = px - h * g.ww;
  } else {
    const uint32_t plane = g.hh * g.ww;
    ch = i / plane;
    const uint32_t rem = i - ch * plane;
    h = rem / g.ww;
    w = rem - h * g.ww;
  }
  return static_cast<int64_t>(ch) * g.sc + (h + g.crop) * g.sh + (w + g.crop) * g.sw;
}

// One sample (either path of psnr_fwd_kernel): x(pl) / y(pl) read plane pl of the sample
// (R, G, B for LUMA, else the one plane 0) as A; its statistic (of the BT.601 Y difference
// for LUMA, of the quantised values when Q) is added to acc, and with GRAD its gradient times
// gmul stored by put(pl, value) per plane.
template <typename A, int K, bool Q, bool GRAD, bool LUMA, typename X, typename Y, typename Put>
__device__ __forceinline__ void psnr_sample(X x, Y y, Put put, A wr, A wgr, A wb, A qscale, A gmul, A& acc) {
  A d;
  if (LUMA) {
    d = luma_diff<A, Q>(x(0), x(1), x(2), y(0), y(1), y(2), wr, wgr, wb, qscale);
  } else {
    A xa = x(0), ya = y(0);
    if (Q) {
      xa = quant8<A>(xa * qscale);
      ya = quant8<A>(ya * qscale);
    }
    d = xa - ya;
  }
  A v, dv;
  stat_and_grad<K, A>(d, v, dv);
  acc += v;
  if (GRAD) {
    dv *= gmul;
    if (LUMA) {
      put(0, dv * wr);
      put(1, dv * wgr);
      put(2, dv * wb);
    } else {
      put(0, dv);
    }
  }
}

template <typename T, typename A, int K, bool Q, bool GRAD, bool LUMA>
__global__ void __launch_bounds__(kThreads, kMemMinBlocks)
    psnr_fwd_kernel(const T* __restrict__ x, const T* __restrict__ y, T* __restrict__ grad,
                    A* __restrict__ partials, Geo g, A qscale, A gmul) {
  __shared__ A shared[kThreads / 32];
  const int64_t img = blockIdx.y;
  const T* xi = x + img * g.sn;
  const T* yi = y + img * g.sn;
  T* gi = GRAD ? grad + img * g.sn : nullptr;
  const A wr = static_cast<A>(kYR / 255.0), wgr = static_cast<A>(kYG / 255.0),
          wb = static_cast<A>(kYB / 255.0);
  A acc = 0;
  const uint32_t stride = gridDim.x * kThreads;
  if (g.flat) {
    constexpr int V = Vec<T>::kN;
    const uint32_t chunks = (g.count + V - 1) / V;
    for (uint32_t q = blockIdx.x * kThreads + threadIdx.x; q < chunks; q += stride) {
      const uint32_t i0 = q * V;
      const int64_t rest = static_cast<int64_t>(g.count) - i0;
      const bool whole = g.vec && rest >= V;
      constexpr int P = LUMA ? 3 : 1;  // planes read per sample
      T tx[P][V], ty[P][V], tg[P][V];
#pragma unroll
      for (int pl = 0; pl < P; ++pl) {
        load_chunk(xi + i0 + pl * g.sc, whole, rest, tx[pl]);
        load_chunk(yi + i0 + pl * g.sc, whole, rest, ty[pl]);
      }
#pragma unroll
      for (int k = 0; k < V; ++k) {
        if (k >= rest) break;
        psnr_sample<A, K, Q, GRAD, LUMA>([&](int pl) { return load_as<A>(&tx[pl][k]); },
                                         [&](int pl) { return load_as<A>(&ty[pl][k]); },
                                         [&](int pl, A v) { store_as(&tg[pl][k], v); }, wr, wgr, wb, qscale, gmul, acc);
      }
      if (GRAD)
#pragma unroll
        for (int pl = 0; pl < P; ++pl) store_chunk(gi + i0 + pl * g.sc, whole, rest, tg[pl]);
    }
  }
  for (uint32_t i = blockIdx.x * kThreads + threadIdx.x; !g.flat && i < g.count; i += stride) {
    const int64_t o = sample_offset<LUMA>(g, i);
    psnr_sample<A, K, Q, GRAD, LUMA>([&](int pl) { return load_as<A>(xi + o + pl * g.sc); },
                                     [&](int pl) { return load_as<A>(yi + o + pl * g.sc); },
                                     [&](int pl, A v) { store_as(gi + o + pl * g.sc, v); }, wr, wgr, wb, qscale, gmul, acc);
  }
  const A s = block_sum<kThreads>(acc, shared);
  if (threadIdx.x == 0) partials[img * gridDim.x + blockIdx.x] = s;
}

template <typename A>
__global__ void __launch_bounds__(kThreads)
    psnr_finalize_kernel(const A* __restrict__ partials, int64_t blocks, A* __restrict__ stat, double scale) {
  __shared__ A shared[kThreads / 32];
  const int64_t img = blockIdx.x;
  A s = 0;
  for (int64_t k = threadIdx.x; k < blocks; k += kThreads) s += partials[img * blocks + k];
  s = block_sum<kThreads>(s, shared);
  if (threadIdx.x == 0) stat[img] = static_cast<A>(static_cast<double>(s) * scale);
}

// Chunks of Vec<T>::kN elements, 128-bit loads / stores when vec (every pointer aligned).
template <typename T, typename A>
__global__ void __launch_bounds__(kThreads, kMemMinBlocks)
    psnr_bwd_kernel(const T* __restrict__ g, T* __restrict__ gx, T* __restrict__ gy,
                    const A* __restrict__ grad_out, int64_t total, int64_t per, double inv_per, bool vec) {
  constexpr int V = Vec<T>::kN;
  const int64_t chunks = (total + V - 1) / V;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kThreads;
  for (int64_t q = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; q < chunks; q += stride) {
    const int64_t i0 = q * V, rest = total - i0;
    const bool whole = vec && rest >= V;
    T tv[V], tp[V], tn[V];
    load_chunk(g + i0, whole, rest, tv);
    int64_t r;  // image of element i0 + k, and its offset in it
    int64_t img = div_i64(i0, per, inv_per, r);
#pragma unroll
    for (int k = 0; k < V; ++k) {
      if (k >= rest) break;
      const A v = load_as<A>(&tv[k]) * grad_out[img];
      store_as(&tp[k], v);
      store_as(&tn[k], -v);
      if (++r == per) {
        r = 0;
        ++img;
      }
    }
    if (gx) store_chunk(gx + i0, whole, rest, tp);
    if (gy) store_chunk(gy + i0, whole, rest, tn);
  }
}

// Forward blocks per image: about kItemsPerThread samples a thread, at most kMaxBlocksPerImage.
constexpr int kItemsPerThread = 8;
constexpr int64_t kMaxBlocksPerImage = 512;

int64_t blocks_per_image(int64_t n, int64_t count) {
  (void)n;
  int64_t b = (count + kThreads * kItemsPerThread - 1) / (kThreads * kItemsPerThread);
  if (b < 1) b = 1;
  return b < kMaxBlocksPerImage ? b : kMaxBlocksPerImage;
}

template <typename T, typename A, int K, bool Q, bool GRAD>
void launch_luma(bool luma, dim3 grid, cudaStream_t st, const T* x, const T* y, T* grad, A* partials,
                 const Geo& g, A qscale, A gmul) {
  if (luma)
    launch_kernel(psnr_fwd_kernel<T, A, K, Q, GRAD, true>, grid, kThreads, 0, st, x, y, grad, partials, g, qscale, gmul);
  else
    launch_kernel(psnr_fwd_kernel<T, A, K, Q, GRAD, false>, grid, kThreads, 0, st, x, y, grad, partials, g, qscale, gmul);
}

template <typename T, typename A, int K>
void launch_kind(bool luma, bool quantize, dim3 grid, cudaStream_t st, const T* x, const T* y, T* grad,
                 A* partials, const Geo& g, A qscale, A gmul) {
  if (quantize)
    launch_luma<T, A, K, true, false>(luma, grid, st, x, y, nullptr, partials, g, qscale, gmul);
  else if (grad)
    launch_luma<T, A, K, false, true>(luma, grid, st, x, y, grad, partials, g, qscale, gmul);
  else
    launch_luma<T, A, K, false, false>(luma, grid, st, x, y, nullptr, partials, g, qscale, gmul);
}

template <typename T, typename A>
void launch_fwd(Typed<T, A>, const void* x, const void* y, void* grad, void* partials, void* stat, int64_t n, const Geo& g,
                int kind, bool luma, bool quantize, double data_range, cudaStream_t st) {
  const int64_t blocks = blocks_per_image(n, g.count);
  const dim3 grid(static_cast<unsigned>(blocks), static_cast<unsigned>(n));
  const A qscale = static_cast<A>(255.0 / data_range);
  const A gmul = static_cast<A>(1.0 / static_cast<double>(g.count));
  auto* px = static_cast<const T*>(x);
  auto* py = static_cast<const T*>(y);
  auto* pg = static_cast<T*>(grad);
  auto* pp = static_cast<A*>(partials);
  if (kind == kMSE)
    launch_kind<T, A, kMSE>(luma, quantize, grid, st, px, py, pg, pp, g, qscale, gmul);
  else
    launch_kind<T, A, kL1>(luma, quantize, grid, st, px, py, pg, pp, g, qscale, gmul);
  double scale = 1.0 / static_cast<double>(g.count);
  if (quantize) {
    const double u = data_range / 255.0;
    scale *= kind == kMSE ? u * u : u;
  }
  launch_kernel(psnr_finalize_kernel<A>, static_cast<unsigned>(n), kThreads, 0, st, pp, blocks, static_cast<A*>(stat), scale);
}

template <typename T, typename A>
void launch_bwd(Typed<T, A>, const void* g, void* gx, void* gy, const void* grad_out, int64_t n, int64_t per,
                cudaStream_t st) {
  const int64_t total = n * per;
  if (total == 0) return;
  int64_t blocks = (total + kThreads * 4 - 1) / (kThreads * 4);
  if (blocks > 65535) blocks = 65535;
  launch_kernel(psnr_bwd_kernel<T, A>, static_cast<unsigned>(blocks), kThreads, 0, st,
      static_cast<const T*>(g), static_cast<T*>(gx), static_cast<T*>(gy), static_cast<const A*>(grad_out),
      total, per, 1.0 / static_cast<double>(per), vec_ptr_ok(g) && vec_ptr_ok(gx) && vec_ptr_ok(gy));
}

}  // namespace

int64_t psnr_fwd_blocks(int64_t n, int64_t count) { return blocks_per_image(n, count); }

const char* psnr_fwd_launch(int dtype, const void* x, const void* y, void* grad, void* partials, void* stat,
                            int64_t n, int64_t c, int64_t hh, int64_t ww, int64_t sn, int64_t sc, int64_t sh,
                            int64_t sw, int64_t crop, int kind, bool luma, bool quantize,
                            double data_range, void* stream) {
  if (n == 0) return nullptr;
  if (n > 65535) return "fastiqa psnr_fwd_launch: more than 65535 images in one call";
  const int64_t count = (luma ? 1 : c) * hh * ww;
  if (count >= (int64_t(1) << 31)) return "fastiqa psnr_fwd_launch: images larger than 2^31 samples";
  Geo g;
  g.sn = sn, g.sc = sc, g.sh = sh, g.sw = sw, g.crop = crop;
  g.c = static_cast<uint32_t>(c), g.hh = static_cast<uint32_t>(hh), g.ww = static_cast<uint32_t>(ww);
  g.count = static_cast<uint32_t>(count);
  g.cl = c > 1 && sc == 1;
  const bool dense_nchw = sw == 1 && sh == ww && (c == 1 || sc == hh * ww);
  const bool dense_cl = g.cl && sw == c && sh == ww * c;
  g.flat = crop == 0 && (luma ? sw == 1 && sh == ww : dense_nchw || dense_cl);
  const size_t elem = dtype == kF64 ? 8 : dtype == kF32 ? 4 : 2;
  g.vec = g.flat && vec_ptr_ok(x) && vec_ptr_ok(y) && vec_ptr_ok(grad) && vec_stride_ok(sn, elem) &&
          (!luma || vec_stride_ok(sc, elem));
  auto st = static_cast<cudaStream_t>(stream);
  return for_dtype(dtype, "fastiqa psnr_fwd_launch: unsupported dtype", [&](auto t) {
    launch_fwd(t, x, y, grad, partials, stat, n, g, kind, luma, quantize, data_range, st);
  });
}

const char* psnr_bwd_launch(int dtype, const void* g, void* gx, void* gy, const void* grad_out, int64_t n,
                            int64_t per, void* stream) {
  auto st = static_cast<cudaStream_t>(stream);
  return for_dtype(dtype, "fastiqa psnr_bwd_launch: unsupported dtype",
                   [&](auto t) { launch_bwd(t, g, gx, gy, grad_out, n, per, st); });
}

}  // namespace cuda
}  // namespace fastiqa
