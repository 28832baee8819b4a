// Kernel launch and dynamic shared memory, written once for nvcc and for the
// CUDA-on-CPU harness (tests/cuda_emu, which defines FASTIQA_CUDA_EMU):
//   launch_kernel(kernel, grid, block, smem, stream, args...)   == kernel<<<grid, block, smem, stream>>>(args...)
//   FASTIQA_DYNAMIC_SHARED(T, name);                            == extern __shared__ __align__(16) T name[];
#pragma once
#include <cuda_runtime.h>

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
