// Torch-side helpers shared by the CUDA host files (csrc/cuda/*_host.cpp): the dtype code
// of the torch-free launchers and the check of their returned error string.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include "pixel_launch.h"  // DType codes

namespace fastiqa {
namespace cuda {

inline int dtype_code(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return kF32;
    case at::kDouble: return kF64;
    case at::kHalf: return kF16;
    case at::kBFloat16: return kBF16;
    default: TORCH_CHECK(false, "fastiqa CUDA kernels: unsupported dtype ", t);
  }
  return -1;
}

inline void check_launch(const char* err) { TORCH_CHECK(err == nullptr, "fastiqa CUDA kernel failed: ", err); }

}  // namespace cuda
}  // namespace fastiqa
