// The harness's <cuda_runtime.h>: NVIDIA's types and declarations (cuda_runtime_api.h,
// cuda_fp16.h, cuda_bf16.h from the CUDA toolkit, host code paths, bit-exact
// conversions), the emulator (../cuda_emu.h) and the device built-ins on top of it.
// Included instead of the toolkit's cuda_runtime.h by putting this folder first on the
// include path (tests/cuda_emu/emu.py).
#pragma once
#define FASTIQA_CUDA_EMU 1

#include <cuda_runtime_api.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <math.h>

#include "../cuda_emu.h"

// Device code is compiled as device code: the __CUDA_ARCH__ branches are the ones tested.
#ifndef __CUDA_ARCH__
#define __CUDA_ARCH__ 800
#endif

#undef __shared__
#define __shared__ static __attribute__((section("fastiqa_emu_shared")))
#ifndef __launch_bounds__
#define __launch_bounds__(...)
#endif

#define threadIdx (::fastiqa_emu::thread_idx())
#define blockIdx (::fastiqa_emu::rt().block_idx)
#define blockDim (::fastiqa_emu::rt().block)
#define gridDim (::fastiqa_emu::rt().grid)

inline void __syncthreads(const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  ::fastiqa_emu::block_barrier(file, line);
}
template <typename T>
T __shfl_down_sync(unsigned, T v, unsigned d, int = 32, const char* f = __builtin_FILE(), int l = __builtin_LINE()) {
  return ::fastiqa_emu::shfl(v, static_cast<int>(d), 0, f, l);
}
template <typename T>
T __shfl_up_sync(unsigned, T v, unsigned d, int = 32, const char* f = __builtin_FILE(), int l = __builtin_LINE()) {
  return ::fastiqa_emu::shfl(v, static_cast<int>(d), 1, f, l);
}
template <typename T>
T __shfl_xor_sync(unsigned, T v, int m, int = 32, const char* f = __builtin_FILE(), int l = __builtin_LINE()) {
  return ::fastiqa_emu::shfl(v, m, 2, f, l);
}
template <typename T>
T __shfl_sync(unsigned, T v, int src, int = 32, const char* f = __builtin_FILE(), int l = __builtin_LINE()) {
  return ::fastiqa_emu::shfl(v, src, 3, f, l);
}
// Device math not in the C library (CUDA: rsqrtf / rsqrt are within 2 ulp; here correctly rounded
// up to the division).
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }
[[noreturn]] inline void __trap() { ::fastiqa_emu::fail("__trap() in device code"); }

// ------------------------------------------------------------------ runtime API subset
cudaError_t cudaGetLastError(void) {
  const int e = ::fastiqa_emu::rt().last_error;
  ::fastiqa_emu::rt().last_error = 0;
  return static_cast<cudaError_t>(e);
}
cudaError_t cudaPeekAtLastError(void) { return static_cast<cudaError_t>(::fastiqa_emu::rt().last_error); }
const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    default: return "cuda_emu: unexpected error";
  }
}
cudaError_t cudaGetDevice(int* d) {
  *d = 0;
  return cudaSuccess;
}
cudaError_t cudaDeviceGetAttribute(int* v, enum cudaDeviceAttr a, int) {
  const ::fastiqa_emu::Gpu& g = *::fastiqa_emu::rt().gpu;
  switch (a) {
    case cudaDevAttrComputeCapabilityMajor: *v = g.major; return cudaSuccess;
    case cudaDevAttrComputeCapabilityMinor: *v = g.minor; return cudaSuccess;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *v = g.smem_optin; return cudaSuccess;
    case cudaDevAttrMaxSharedMemoryPerBlock: *v = ::fastiqa_emu::kDefaultSmem; return cudaSuccess;
    default: ::fastiqa_emu::fail("cudaDeviceGetAttribute: attribute not emulated");
  }
}
template <typename T> cudaError_t cudaFuncSetAttribute(T* kernel, enum cudaFuncAttribute a, int value) {
  if (a != cudaFuncAttributeMaxDynamicSharedMemorySize) return cudaSuccess;
  if (value < 0 || value > ::fastiqa_emu::rt().gpu->smem_optin) {
    ::fastiqa_emu::rt().last_error = cudaErrorInvalidValue;
    return cudaErrorInvalidValue;
  }
  ::fastiqa_emu::rt().max_dynamic_smem[reinterpret_cast<const void*>(kernel)] = value;
  return cudaSuccess;
}
// Static shared memory per kernel is not measured by the emulator (reported as 0).
cudaError_t cudaFuncGetAttributes(struct cudaFuncAttributes* attr, const void*) {
  *attr = cudaFuncAttributes{};
  return cudaSuccess;
}
cudaError_t cudaMallocAsync(void** p, size_t bytes, cudaStream_t) {
  *p = std::malloc(bytes ? bytes : 1);
  std::memset(*p, 0xFF, bytes ? bytes : 1);
  return cudaSuccess;
}
cudaError_t cudaFreeAsync(void* p, cudaStream_t) {
  std::free(p);
  return cudaSuccess;
}
