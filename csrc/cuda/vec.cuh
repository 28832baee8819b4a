// 128-bit global loads and stores (torch-free), written once for nvcc and for the
// CUDA-on-CPU harness (tests/cuda_emu).
//
// A memory-bound kernel moves its elements in chunks of Vec<T>::kN (16 bytes: 4 float,
// 2 double, 8 half / bfloat16). The launcher checks at run time whether every pointer
// (and every stride that moves a chunk's start) keeps each chunk 16-byte aligned; if so
// the kernel loads and stores whole chunks with load16 / store16 (ld.global.v4 /
// st.global.v4), else element by element. Both paths assign the same elements to the
// same thread in the same order, so a reduction's result does not depend on alignment.
// Under the harness each vector access checks its alignment (a misaligned one aborts,
// as the GPU would fault) and is counted (vector_ops(): the cases check which path ran).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>

namespace fastiqa {
namespace cuda {

template <typename T> struct Vec {
  static constexpr int kN = 16 / static_cast<int>(sizeof(T));
};

__host__ __device__ __forceinline__ bool aligned16(const void* p) {
  return (reinterpret_cast<uintptr_t>(p) & uintptr_t(15)) == 0;
}

// Host side: a null pointer (not used) or a 16-byte aligned one.
inline bool vec_ptr_ok(const void* p) { return p == nullptr || aligned16(p); }
// Host side: a stride of s elements of `elem` bytes keeps 16-byte alignment.
inline bool vec_stride_ok(int64_t s, size_t elem) { return (s * static_cast<int64_t>(elem)) % 16 == 0; }

// v[0..kN) = p[0..kN); p is 16-byte aligned, a global address read-only during the kernel.
template <typename T> __device__ __forceinline__ void load16(const T* p, T (&v)[Vec<T>::kN]) {
#if defined(FASTIQA_CUDA_EMU)
  ::fastiqa_emu::vector_access(p, "load");
  std::memcpy(v, p, 16);
#else
  // __ldg: one ld.global.nc.v4 that the compiler keeps whole (a plain uint4 dereference was
  // split into two 64-bit loads for float tiles on sm_100 / sm_120; the audit caught it)
  const uint4 raw = __ldg(reinterpret_cast<const uint4*>(p));
  memcpy(v, &raw, 16);
#endif
}

// p[0..kN) = v[0..kN); p is 16-byte aligned (a global address).
template <typename T> __device__ __forceinline__ void store16(T* p, const T (&v)[Vec<T>::kN]) {
#if defined(FASTIQA_CUDA_EMU)
  ::fastiqa_emu::vector_access(p, "store");
  std::memcpy(p, v, 16);
#else
  uint4 raw;
  memcpy(&raw, v, 16);
  *reinterpret_cast<uint4*>(p) = raw;
#endif
}

// t[k] = p[k] for the chunk at p: all kN elements with one 128-bit load when `whole`, else
// element by element for k < rest (a chunk that is misaligned or the last, partial one).
template <typename T>
__device__ __forceinline__ void load_chunk(const T* p, bool whole, int64_t rest, T (&t)[Vec<T>::kN]) {
  if (whole) {
    load16(p, t);
  } else {
#pragma unroll
    for (int k = 0; k < Vec<T>::kN; ++k)
      if (k < rest) t[k] = p[k];
  }
}

// p[k] = t[k], the store of load_chunk's chunk.
template <typename T>
__device__ __forceinline__ void store_chunk(T* p, bool whole, int64_t rest, const T (&t)[Vec<T>::kN]) {
  if (whole) {
    store16(p, t);
  } else {
#pragma unroll
    for (int k = 0; k < Vec<T>::kN; ++k)
      if (k < rest) p[k] = t[k];
  }
}

}  // namespace cuda
}  // namespace fastiqa
