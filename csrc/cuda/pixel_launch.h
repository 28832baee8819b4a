// Torch-free interface of the CUDA pixel-loss kernels (csrc/cuda/pixel.cu).
// Pointers are device pointers; `stream` is a cudaStream_t. Each launcher
// returns nullptr on success or the CUDA error string.
#pragma once
#include <cstdint>

namespace fastiqa {
namespace cuda {

enum DType : int { kF32 = 0, kF64 = 1, kF16 = 2, kBF16 = 3 };

// Number of blocks (and of partial-sum pairs) the forward uses for n elements;
// depends on n only, so the reduction order is the same on every GPU.
int64_t pixel_fwd_blocks(int64_t n);

// partials: 2 * pixel_fwd_blocks(n) accumulators; out, gscale: one each. The gradient
// stored is that of the reduced loss for sum/mean and of the weighted sum for
// weighted_mean, whose 1/divisor goes to gscale (1 otherwise).
// Accumulators are double for kF64 and float otherwise. map / grad may be null.
const char* pixel_fwd_launch(int dtype, const void* a, const void* b, const void* w, void* map,
                             void* grad, void* partials, void* out, void* gscale, int64_t n,
                             int wmode, int64_t channels, int64_t inner, int kind, double c,
                             int reduction, double norm_scale, void* stream);

// grad_pred = g * grad_out * gscale, grad_target = -grad_pred (either may be null).
// grad_out and gscale are single accumulators on the device.
const char* pixel_bwd_launch(int dtype, const void* g, void* gp, void* gt, const void* grad_out,
                             const void* gscale, int64_t n, void* stream);

}  // namespace cuda
}  // namespace fastiqa
