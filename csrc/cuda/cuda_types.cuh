// Loads and stores between storage types and accumulators (torch-free).
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

namespace fastiqa {
namespace cuda {

template <typename A, typename T> __device__ __forceinline__ A load_as(const T* p) {
  return static_cast<A>(*p);
}
template <> __device__ __forceinline__ float load_as<float, __half>(const __half* p) {
  return __half2float(*p);
}
template <> __device__ __forceinline__ float load_as<float, __nv_bfloat16>(const __nv_bfloat16* p) {
  return __bfloat162float(*p);
}

template <typename T, typename A> __device__ __forceinline__ void store_as(T* p, A v) {
  *p = static_cast<T>(v);
}
template <> __device__ __forceinline__ void store_as<__half, float>(__half* p, float v) {
  *p = __float2half_rn(v);
}
template <> __device__ __forceinline__ void store_as<__nv_bfloat16, float>(__nv_bfloat16* p, float v) {
  *p = __float2bfloat16_rn(v);
}

// Quotient of i / d (i >= 0, d > 0) and its remainder in rem; inv_d = 1.0 / d, computed
// once on the host (a double division on the GPU is a called subroutine, and so is 64-bit
// integer division: registers spill around the call). Below 2^32 the inlined 32-bit
// division, else the quotient from the reciprocal, corrected by one step (exact for i < 2^53).
__device__ __forceinline__ int64_t div_i64(int64_t i, int64_t d, double inv_d, int64_t& rem) {
  if (i < (int64_t(1) << 32) && d < (int64_t(1) << 32)) {
    const uint32_t u = static_cast<uint32_t>(i), v = static_cast<uint32_t>(d), q = u / v;
    rem = static_cast<int64_t>(u - q * v);
    return static_cast<int64_t>(q);
  }
  int64_t q = static_cast<int64_t>(static_cast<double>(i) * inv_d);
  int64_t r = i - q * d;
  if (r < 0) { q -= 1; r += d; } else if (r >= d) { q += 1; r -= d; }
  rem = r;
  return q;
}

// Deterministic block-wide sum (fixed shuffle tree, then fixed shared-memory order).
template <int kThreads, typename A> __device__ __forceinline__ A block_sum(A v, A* shared) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  A total = 0;
  if (threadIdx.x == 0) {
    for (int k = 0; k < kThreads / 32; ++k) total += shared[k];
  }
  __syncthreads();
  return total;  // valid in thread 0
}

// s + v with Kahan compensation in comp (Higham, Accuracy and Stability, 4.3): the
// finalize kernels' threads each sum many partials (pixel.cu, perceptual.cu)
template <typename A>
__device__ __forceinline__ void kahan_add(A& s, A& comp, A v) {
  const A y = v - comp;
  const A t = s + y;
  comp = (t - s) - y;
  s = t;
}

}  // namespace cuda
}  // namespace fastiqa
