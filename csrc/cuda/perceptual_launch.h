// Torch-free interface of the CUDA perceptual distance heads (csrc/cuda/perceptual.cu): one
// backbone layer of LPIPS or DISTS per call (contract: fastiqa/backends/reference/_perceptual.py).
// Features are dense NCHW (n images, c channels, hw pixels a plane); weight and the values
// are in the accumulator type (double for kF64, else float). Each launcher returns nullptr
// on success or the CUDA error string. The reductions' order depends on the shape only:
// the results are bitwise reproducible on every GPU.
#pragma once
#include <cstdint>

namespace fastiqa {
namespace cuda {

// Accumulators the LPIPS forward needs in its scratch buffer (per image: one partial per block).
int64_t lpips_fwd_partials(int64_t n, int64_t hw);

// value[i] = mean over pixels of sum_c w_c (x_c / (|x| + eps) - y_c / (|y| + eps))^2.
const char* lpips_fwd_launch(int dtype, const void* x, const void* y, const void* w, void* partials,
                             void* value, int64_t n, int64_t c, int64_t hw, void* stream);

// Gradients of sum_i grad_out[i] value[i] (gx / gy may be null: not computed).
const char* lpips_bwd_launch(int dtype, const void* x, const void* y, const void* w, const void* grad_out,
                             void* gx, void* gy, int64_t n, int64_t c, int64_t hw, void* stream);

// planes: n * c accumulators of scratch. value[i] = sum_c alpha_c S1 + beta_c S2 (DISTS, this
// layer; w = alpha (c values) then beta (c values)).
const char* dists_fwd_launch(int dtype, const void* x, const void* y, const void* w, void* planes,
                             void* value, int64_t n, int64_t c, int64_t hw, void* stream);

const char* dists_bwd_launch(int dtype, const void* x, const void* y, const void* w, const void* grad_out,
                             void* gx, void* gy, int64_t n, int64_t c, int64_t hw, void* stream);

}  // namespace cuda
}  // namespace fastiqa
