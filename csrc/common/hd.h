// FASTIQA_HD: a function of the shared per-pixel math, inlined on the host and
// callable from CUDA device code.
#pragma once

#if defined(__CUDACC__)
#define FASTIQA_HD __host__ __device__ __forceinline__
#else
#define FASTIQA_HD inline __attribute__((always_inline))
#endif
