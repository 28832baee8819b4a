// Torch-free interface of the CUDA SSIM kernels (csrc/cuda/ssim.cu). Pointers are
// device pointers; `stream` is a cudaStream_t. Each launcher returns nullptr on
// success or an error string. Codes and weights: csrc/common/ssim_math.h.
#pragma once
#include <cstdint>

#include "pixel_launch.h"  // DType codes

namespace fastiqa {
namespace cuda {

struct SsimGeometry {
  int64_t N, C, H, W, Ho, Wo;
  int winh, winw, offh, offw, padding;  // window taps and padding offsets: vertical (H), horizontal (W)
  int64_t sx[4], sy[4];  // element strides of x and y (N, C, H, W)
};

// Output tile of the forward kernel; the grid tiles the source extent H x W.
constexpr int kSsimFwdTile = 32;
inline int64_t ssim_fwd_tiles(const SsimGeometry& g) {
  return ((g.H + kSsimFwdTile - 1) / kSsimFwdTile) * ((g.W + kSsimFwdTile - 1) / kSsimFwdTile);
}

// Forward: partials (N*C, ssim_fwd_tiles, 3) accumulators: sums of S, cs and |x - y| per tile
// (|x - y| only when want_l1, else 0); the SSIM map (strides smap) when map is not null.
// window: the winh vertical then the winw horizontal Gaussian taps, in double; c: {c1, c2}.
// components: partials (N*C, tiles, 6) (also l, c, s), and 4 maps S, l, c, s smk elements apart.
const char* ssim_fwd_launch(int dtype, const void* x, const void* y, const SsimGeometry& geo,
                            const double* window, const double* c, void* map, const int64_t* smap,
                            bool want_l1, bool components, int64_t smk, void* partials, void* stream);

// Gradient of sum over planes of weights . (mean S, mean cs, mean |x-y|) + sum(dmap * S):
// weights (N*C, 3) accumulators, dmap (strides sd) may be null; gx / gy (strides sg) may be null.
// components: weights (N*C, 6) (also on l, c, s), dmap 4 maps S, l, c, s sdk elements apart; the
// gradient of x (comp_y false: gy must be null) or of y (comp_y: gx must be null).
const char* ssim_grad_launch(int dtype, const void* x, const void* y, const SsimGeometry& geo,
                             const double* window, const double* c, const void* weights,
                             const void* dmap, const int64_t* sd, void* gx, void* gy,
                             const int64_t* sg, bool components, bool comp_y, int64_t sdk, void* stream);

}  // namespace cuda
}  // namespace fastiqa
