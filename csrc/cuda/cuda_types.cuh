// Loads and stores between storage types and accumulators (torch-free).
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

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

}  // namespace cuda
}  // namespace fastiqa
