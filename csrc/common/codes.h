// The one table of the integer codes that the Python ops pass to the kernels
// (CPU, CUDA) and that the Triton kernels take as constexpr. fastiqa/_codes.py
// mirrors it; tests/test_codes.py parses this file and fails on any drift.
// One enumerator name per meaning, the same number in every family.
#pragma once

namespace fastiqa {
namespace codes {

// Per-element loss: pixel losses; psnr's MSE / MAE (MAE is kL1).
enum LossKind : int { kL1 = 0, kMSE = 1, kCharbonnier = 2 };

// How a loss or metric is reduced (the ops map the user's string to this).
enum Reduction : int { kNone = 0, kSum = 1, kMean = 2, kWeightedMean = 3, kPerChannel = 4, kMap = 5 };

// How the weight map of a pixel loss is laid against the flat (dense) input:
//   kNoWeight, kFull (same shape and strides as the input),
//   kPlane (NCHW-dense input, weight (N,1,*): weight index = (i / (C*inner)) * inner + i % inner),
//   kPixel (channels-last-dense input, weight (N,1,*): weight index = i / C).
enum WeightMode : int { kNoWeight = 0, kFull = 1, kPlane = 2, kPixel = 3 };

// SSIM window padding: valid (no padding), zero "same", reflect "same".
enum Padding : int { kValid = 0, kSameZero = 1, kSameReflect = 2 };

// What the SSIM op returns: the SSIM, the L1 + SSIM loss (1 - a) |x - y| + a (1 - SSIM), the
// loss 1 - SSIM, or the SSIM and its components l, c, s stacked on a leading axis of 4
// (csrc/host/ssim_op.h combines the kernels' plane statistics into it).
enum SsimOutput : int { kSsim = 0, kL1Ssim = 1, kSsimLoss = 2, kComponents = 3 };

// Style-loss criterion on the Gram difference D: mean |D|, mean D^2, ||D||_F (gram_math.h).
enum Criterion : int { kCriterionL1 = 0, kCriterionL2 = 1, kCriterionFro = 2 };

}  // namespace codes
}  // namespace fastiqa
