// Kernel launch and dynamic shared memory, written once for nvcc and for the
// CUDA-on-CPU harness (tests/cuda_emu, which defines FASTIQA_CUDA_EMU):
//   launch_kernel(kernel, grid, block, smem, stream, args...)   == kernel<<<grid, block, smem, stream>>>(args...)
//   FASTIQA_DYNAMIC_SHARED(T, name);                            == extern __shared__ __align__(16) T name[];
// and the dtype dispatch of every launcher (*_launch.h):
//   for_dtype(dtype, "<launcher>: unsupported dtype", [&](auto t) { typed(t, ...); })
//   with template <typename T, typename A> typed(Typed<T, A>, ...): T the storage type, A the accumulator
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <type_traits>

#include "pixel_launch.h"  // DType codes

#if defined(FASTIQA_CUDA_EMU)
#define FASTIQA_DYNAMIC_SHARED(T, name) T* name = static_cast<T*>(::fastiqa_emu::dynamic_shared())
namespace fastiqa {
namespace cuda {
using ::fastiqa_emu::launch_kernel;
}  // namespace cuda
}  // namespace fastiqa
#else
#define FASTIQA_DYNAMIC_SHARED(T, name) extern __shared__ __align__(16) T name[]
namespace fastiqa {
namespace cuda {
template <typename... P, typename... Args>
inline void launch_kernel(void (*kernel)(P...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                          Args&&... args) {
  kernel<<<grid, block, smem, stream>>>(static_cast<Args&&>(args)...);
}
}  // namespace cuda
}  // namespace fastiqa
#endif

namespace fastiqa {
namespace cuda {

// The memory-bound kernels (pixel, psnr): __launch_bounds__(kMemThreads, kMemMinBlocks), at
// least 4 resident blocks per SM (at most 64 registers a thread), enough loads in flight;
// ptxas spilled a few bytes on some archs without the bound.
constexpr int kMemThreads = 256;
constexpr int kMemMinBlocks = 4;

// nullptr, or the string of the last CUDA error (clears it).
inline const char* last_error() {
  cudaError_t err = cudaGetLastError();
  return err == cudaSuccess ? nullptr : cudaGetErrorString(err);
}

// Tag of a dtype code's storage type T and its accumulator A (double for float64, else float).
template <typename T, typename A> struct Typed {};

// typed(Typed<T, A>{}) for dtype's (T, A); returns `unsupported` for an unknown code, else
// typed's error string when it returns one, else last_error().
template <typename F> const char* for_dtype(int dtype, const char* unsupported, F&& typed) {
  using R = decltype(typed(Typed<float, float>{}));
  auto call = [&](auto t) -> const char* {
    if constexpr (std::is_void<R>::value) {
      typed(t);
      return last_error();
    } else {
      return typed(t);
    }
  };
  switch (dtype) {
    case kF32: return call(Typed<float, float>{});
    case kF64: return call(Typed<double, double>{});
    case kF16: return call(Typed<__half, float>{});
    case kBF16: return call(Typed<__nv_bfloat16, float>{});
    default: return unsupported;
  }
}

}  // namespace cuda
}  // namespace fastiqa
