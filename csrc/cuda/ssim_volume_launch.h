// Torch-free interface of the CUDA SSIM kernels on volumes (csrc/cuda/ssim_volume.cu):
// (N, C, D, H, W) inputs, a separable 3-D window (wd, wh, ww taps). Pointers are device
// pointers; `stream` is a cudaStream_t. Each launcher returns nullptr on success or an error
// string. Codes and weights: csrc/common/ssim_math.h; the 2-D kernels: ssim_launch.h.
#pragma once
#include <cstdint>

#include "pixel_launch.h"  // DType codes

namespace fastiqa {
namespace cuda {

struct SsimVolGeometry {
  int64_t N, C, D, H, W, Do, Ho, Wo;
  int wd, wh, ww, offd, offh, offw, padding;  // window taps and padding offsets per axis (D, H, W)
  int64_t sx[5], sy[5];                       // element strides of x and y (N, C, D, H, W)
};

// The forward's partial unit: kSsimVolTile x kSsimVolTile (H, W) x kSsimVolDepth (D) source voxels.
constexpr int kSsimVolTile = 16;
constexpr int kSsimVolDepth = 16;
inline int64_t ssim_volume_fwd_units(const SsimVolGeometry& g) {
  return ((g.D + kSsimVolDepth - 1) / kSsimVolDepth) * ((g.H + kSsimVolTile - 1) / kSsimVolTile) *
         ((g.W + kSsimVolTile - 1) / kSsimVolTile);
}

// Forward: partials (N*C, ssim_volume_fwd_units, 3) accumulators: sums of S, cs and |x - y| per
// unit (|x - y| only when want_l1, else 0); the SSIM map (strides smap) when map is not null.
// window: the wd depth, wh vertical, ww horizontal Gaussian taps, in double; c: {c1, c2}.
// components: partials (N*C, units, 6) (also l, c, s), and 4 maps S, l, c, s smk elements apart.
const char* ssim_volume_fwd_launch(int dtype, const void* x, const void* y, const SsimVolGeometry& geo,
                                   const double* window, const double* c, void* map, const int64_t* smap,
                                   bool want_l1, bool components, int64_t smk, void* partials, void* stream);

// Gradient of sum over planes of weights . (mean S, mean cs, mean |x-y|) + sum(dmap * S):
// weights (N*C, 3) accumulators, dmap (strides sd) may be null; gx / gy (strides sg) may be null.
// components: weights (N*C, 6) (also on l, c, s), dmap 4 maps S, l, c, s sdk elements apart; the
// gradient of x (comp_y false: gy must be null) or of y (comp_y: gx must be null).
const char* ssim_volume_grad_launch(int dtype, const void* x, const void* y, const SsimVolGeometry& geo,
                                    const double* window, const double* c, const void* weights,
                                    const void* dmap, const int64_t* sd, void* gx, void* gy, const int64_t* sg,
                                    bool components, bool comp_y, int64_t sdk, void* stream);

}  // namespace cuda
}  // namespace fastiqa
