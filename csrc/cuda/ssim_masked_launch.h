// Torch-free interface of the CUDA masked-SSIM kernels (csrc/cuda/ssim_masked.cu; op contract:
// fastiqa/backends/reference/_ssim_masked.py). Pointers are device pointers; `stream` is a
// cudaStream_t. Each launcher returns nullptr on success or an error string.
#pragma once
#include <cstdint>

#include "pixel_launch.h"  // DType codes

namespace fastiqa {
namespace cuda {

// (N, C, D, H, W): images have D = 1, kd = 1 and depth strides 0. Element strides of x, y,
// the mask (accumulator dtype), the map and the gradients (gx and gy share theirs) and d_map.
struct MaskedGeometry {
  int64_t N, C, D, H, W, Do, Ho, Wo;
  int kd, kh, kw, padding;
  int64_t sx[5], sy[5], sm[5], smap[5], sg[5], sdm[5];
  double gd[31], gh[31], gw[31];  // the window's 1-D taps per axis (gd = {1} for images)
  double c1, c2;
};

// Forward blocks per plane (a function of the shape only: deterministic sums).
int64_t ssim_masked_fwd_blocks(const MaskedGeometry& g);

// partials (N*C, blocks, 4) accumulators: per block the sums of m_c S, m_c, m |x - y|, m;
// the S map (0 where G*m = 0) when map is not null.
const char* ssim_masked_fwd_launch(int dtype, const void* x, const void* y, const void* mask,
                                   const MaskedGeometry& geo, void* map, void* partials, void* stream);

// Gradients of sum(d_planes . planes) + sum(d_map * map): d_planes (N*C, 4) accumulators,
// d_map (strides sdm) may be null, gx / gy (strides sg) may be null; coef: scratch of
// N * C * 4 * Do * Ho * Wo accumulators.
const char* ssim_masked_bwd_launch(int dtype, const void* x, const void* y, const void* mask,
                                   const MaskedGeometry& geo, const void* d_planes, const void* d_map, void* coef,
                                   void* gx, void* gy, void* stream);

}  // namespace cuda
}  // namespace fastiqa
