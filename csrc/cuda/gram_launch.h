// Torch-free interface of the CUDA gram-family kernels (csrc/cuda/gram.cu).
// Features are (N, C, K) with element (n, c, k) at n*sN + c*sC + k*sK (dense NCHW:
// sK = 1; channels_last: sC = 1). Pointers are device pointers, `stream` a
// cudaStream_t; accumulators (partials, Grams, P, losses, q) are double for kF64
// and float otherwise. Each launcher returns nullptr on success or the CUDA error.
#pragma once
#include <cstdint>

#include "pixel_launch.h"  // DType codes

namespace fastiqa {
namespace cuda {

// Channel tile edge, number of upper-triangle tiles and number of K splits: the
// last two depend on the shape only, so results are the same on every GPU.
constexpr int kGramTile = 64;
int64_t gram_triangle_tiles(int64_t C);
int64_t gram_splits(int64_t N, int64_t C, int64_t K);

// G = scale * F F^T. part: gram_splits * N * C * C accumulators (scratch).
const char* gram_fwd_launch(int dtype, const void* f, void* part, void* g, int64_t N, int64_t C,
                            int64_t K, int64_t sN, int64_t sC, int64_t sK, int64_t splits,
                            double scale, void* stream);

// Style loss: D = scale (x x^T - y y^T) (y given) or scale x x^T - T (target given,
// (tN, C, C) with tN in {1, N}); loss = criterion(D) into `loss` (one accumulator);
// p (nullable) = dloss/dD (N, C, C). part: splits * N * C * C, loss_part:
// N * gram_triangle_tiles(C) + 1 accumulators (scratch).
const char* style_fwd_launch(int dtype, const void* x, const void* y, const void* target,
                             int64_t tN, void* part, void* p, void* loss_part, void* loss,
                             int64_t N, int64_t C, int64_t K, int64_t sN, int64_t sC, int64_t sK,
                             int64_t splits, double scale, int criterion, void* stream);

// out[n] = alpha * q[n or 0] @ f[n], out with f's strides; q (qN, C, C) row-major.
const char* gram_apply_launch(int dtype, const void* q, int64_t qN, const void* f, void* out,
                              int64_t N, int64_t C, int64_t K, int64_t sN, int64_t sC, int64_t sK,
                              double alpha, void* stream);

}  // namespace cuda
}  // namespace fastiqa
