// Torch-free interface of the CUDA psnr-family kernels (csrc/cuda/psnr.cu).
// Pointers are device pointers; `stream` is a cudaStream_t. Each launcher
// returns nullptr on success or the CUDA error string.
#pragma once
#include <cstdint>

#include "pixel_launch.h"  // DType codes

namespace fastiqa {
namespace cuda {

// Blocks per image (and partial sums per image) of the forward; depends on the
// shape only, so the reduction order is the same on every GPU and every run.
int64_t psnr_fwd_blocks(int64_t n, int64_t count);

// x, y: (N, C, H, W) with strides sn, sc, sh, sw (elements), dense, same strides.
// hh, ww: the cropped height and width; count: samples of the statistic per image
// (hh * ww for the Y channel, C * hh * ww otherwise). partials: N * psnr_fwd_blocks
// accumulators; stat: N accumulators (double for kF64, float otherwise), the
// per-image mean of d^2 (kind 0) or |d| (kind 1), in data_range units.
// grad (may be null; never with quantize): d(stat_n)/dx, same strides as x; the
// caller zero-fills it when crop > 0 (the border is not written).
const char* psnr_fwd_launch(int dtype, const void* x, const void* y, void* grad, void* partials, void* stat,
                            int64_t n, int64_t c, int64_t hh, int64_t ww, int64_t sn, int64_t sc, int64_t sh,
                            int64_t sw, int64_t crop, int kind, bool luma, bool quantize,
                            double data_range, void* stream);

// grad_x[i] = grad[i] * grad_out[i / per], grad_y = -grad_x (either may be null);
// images are contiguous blocks of `per` elements; grad_out: N accumulators.
const char* psnr_bwd_launch(int dtype, const void* g, void* gx, void* gy, const void* grad_out, int64_t n,
                            int64_t per, void* stream);

}  // namespace cuda
}  // namespace fastiqa
