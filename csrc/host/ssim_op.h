// The SSIM ops' contract (fastiqa_C::ssim_fwd / ssim_bwd, schemas in fastiqa/_kernel_schemas.py)
// on top of one device's plane kernels, shared by the CPU registration (csrc/cpu/register.cpp)
// and the CUDA host (csrc/cuda/ssim_host.cpp); fastiqa/backends/ssim_compose.py is the same
// rule for the Python backends.
//
// A plane kernel returns, per (image, channel) plane, the means of the SSIM map S, of the
// contrast-structure map cs and of |pred - target| (`planes`, (N, C, 3), accumulator dtype),
// optionally the S map, and the gradients of F = sum over planes of d_planes . planes.
// The op turns the planes into its output: the SSIM (output kSsim), 1 - SSIM (kSsimLoss) or
// (1 - alpha) |pred - target| + alpha (1 - SSIM) (kL1Ssim), reduced by `reduction`, and
// chooses d_planes so that the forward's gradient is gain * d out / d pred.
// kComponents: the plane kernel is asked for the components too (planes (N, C, 6): S, cs,
// |pred - target|, l, c, s; map (4, N, C, Ho, Wo): S, l, c, s), the output is S, l, c, s
// reduced and stacked on a leading axis of 4, and the gradient is left to ssim_bwd
// (d_planes (N, C, 6), d_map (4, N, C, Ho, Wo)).
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/ops/full.h>
#include <ATen/ops/stack.h>
#include <ATen/ops/zeros.h>
#include <c10/util/Exception.h>

#include <cstdint>
#include <optional>
#include <tuple>

#include "../common/codes.h"
#include "acc_dtype.h"
#include "ssim_checks.h"

namespace fastiqa {
namespace host {

using SsimPlanes = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor>;  // planes, map, gx, gy

inline void check_ssim_codes(int64_t reduction, int64_t output, double alpha) {
  using namespace fastiqa::codes;
  TORCH_CHECK(reduction == kMean || reduction == kNone || reduction == kPerChannel || reduction == kMap,
              "fastiqa_C::ssim: unknown reduction ", reduction);
  TORCH_CHECK(output == kSsim || output == kL1Ssim || output == kSsimLoss || output == kComponents,
              "fastiqa_C::ssim: unknown output ", output);
  TORCH_CHECK(alpha >= 0 && alpha <= 1, "fastiqa_C::ssim: alpha must be in [0, 1]");
}

// The power of two float16 forward gradients are stored times: d out / d pred of a mean over
// `count` pixels underflows float16, gain * d out / d pred (about d(sum of the map)/d pred)
// does not; backward multiplies grad_out by 1 / gain (the op's gscale output) in float32.
inline double ssim_stored_gain(const at::Tensor& pred, int64_t reduction) {
  using namespace fastiqa::codes;
  if (pred.scalar_type() != at::kHalf || reduction == kMap) return 1.0;
  const int64_t n = pred.size(0), c = pred.size(1);
  int64_t pixels = 1;  // per plane: the product of the spatial sizes
  for (int64_t d = 2; d < pred.dim(); ++d) pixels *= pred.size(d);
  const int64_t count = pixels * (reduction == kMean ? n * c : reduction == kNone ? c : 1);
  double gain = 1.0;
  for (int64_t k = count; k > 1; k >>= 1) gain *= 2.0;  // 2^floor(log2(count))
  return gain;
}

// d out / d (plane means): (N, C, 3) = factor * d value / d (S, cs, |d|) * d out / d value,
// plus grad_cs on the cs column. factor: 0-dim, (N,) or (N, C) (or a number when undefined).
inline at::Tensor ssim_d_planes(const at::Tensor& pred, int64_t output, double alpha, int64_t reduction,
                                const at::Tensor& factor, double factor_value,
                                const std::optional<at::Tensor>& grad_cs) {
  using namespace fastiqa::codes;
  const int64_t n = pred.size(0), c = pred.size(1);
  const auto acc = acc_dtype(pred);
  if (output == kComponents) {  // factor (4,), (4, N) or (4, N, C) on S, l, c, s
    at::Tensor w = at::zeros({n, c, 6}, pred.options().dtype(acc));
    const double g = reduction == kMean ? 1.0 / static_cast<double>(n * c) : reduction == kNone ? 1.0 / c : 1.0;
    if (reduction != kMap && factor.defined()) {
      at::Tensor f = factor.to(acc).mul(g);
      f = f.dim() == 1 ? f.reshape({4, 1, 1}) : f.dim() == 2 ? f.reshape({4, n, 1}) : f;
      f = f.expand({4, n, c});
      const int64_t cols[4] = {0, 3, 4, 5};
      for (int k = 0; k < 4; ++k) w.select(2, cols[k]).copy_(f.select(0, k));
    }
    if (grad_cs.has_value()) w.select(2, 1).copy_(grad_cs->to(acc));
    return w;
  }
  at::Tensor w = at::zeros({n, c, 3}, pred.options().dtype(acc));
  // value of one plane: kSsim: S; kSsimLoss: 1 - S; kL1Ssim: (1 - alpha) |d| + alpha (1 - S)
  const double ks = output == kSsim ? 1.0 : output == kSsimLoss ? -1.0 : -alpha;
  const double kl = output == kL1Ssim ? 1.0 - alpha : 0.0;
  // d out / d value: mean over N*C planes, over C per image, or one per plane
  const double g = reduction == kMean ? 1.0 / static_cast<double>(n * c) : reduction == kNone ? 1.0 / c : 1.0;
  if (reduction != kMap && (factor.defined() || factor_value != 0.0)) {
    at::Tensor f = factor.defined() ? factor.to(acc) : at::full({}, factor_value, pred.options().dtype(acc));
    if (f.dim() == 1) f = f.reshape({n, 1});
    w.select(2, 0).copy_(f.mul(ks * g));
    w.select(2, 2).copy_(f.mul(kl * g));
  }
  if (grad_cs.has_value()) w.select(2, 1).copy_(grad_cs->to(acc));
  return w;
}

inline at::Tensor ssim_reduce(const at::Tensor& planes, int64_t output, double alpha, int64_t reduction) {
  using namespace fastiqa::codes;
  if (output == kComponents) {  // (4, ...): S, l, c, s
    at::Tensor v = at::stack({planes.select(2, 0), planes.select(2, 3), planes.select(2, 4), planes.select(2, 5)});
    if (reduction == kMean) return v.mean({1, 2});
    if (reduction == kNone) return v.mean(2);
    return v;
  }
  const at::Tensor s = planes.select(2, 0);
  at::Tensor value = output == kSsim ? s
                     : output == kSsimLoss ? s.neg().add(1)
                                         : planes.select(2, 2).mul(1.0 - alpha).add(s.neg().add(1).mul(alpha));
  if (reduction == kMean) return value.mean();
  if (reduction == kNone) return value.mean(1);
  return value.contiguous();
}

// fastiqa_C::ssim_fwd -> (out, cs (N, C), gscale, grad_pred, grad_target)
template <class PlanesFwd>
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> ssim_forward(
    PlanesFwd planes_fwd, const at::Tensor& pred, const at::Tensor& target, c10::IntArrayRef win_size,
    c10::ArrayRef<double> win_sigma,
    double c1, double c2, int64_t padding, int64_t reduction, int64_t output, double alpha, bool need_grad_pred,
    bool need_grad_target) {
  using namespace fastiqa::codes;
  check_ssim_codes(reduction, output, alpha);
  TORCH_CHECK(pred.dim() == 4 || pred.dim() == 5,
              "fastiqa_C::ssim: pred and target must be (N, C, H, W) images or (N, C, D, H, W) volumes");
  const SsimWindow win = ssim_window(win_size, win_sigma);
  const bool comp = output == kComponents;
  const bool grad = (need_grad_pred || need_grad_target) && reduction != kMap && !comp;
  const double gain = comp ? 1.0 : ssim_stored_gain(pred, reduction);
  std::optional<at::Tensor> d_planes;
  if (grad) d_planes = ssim_d_planes(pred, output, alpha, reduction, at::Tensor(), gain, std::nullopt);
  auto [planes, map, gx, gy] = planes_fwd(pred, target, win, c1, c2, padding, reduction == kMap,
                                          output == kL1Ssim, comp, d_planes, need_grad_pred && grad,
                                          need_grad_target && grad);
  at::Tensor out = reduction == kMap ? map : ssim_reduce(planes, output, alpha, reduction);
  at::Tensor gscale = at::full({}, 1.0 / gain, pred.options().dtype(acc_dtype(pred)));
  return {out, planes.select(2, 1).contiguous(), gscale, gx, gy};
}

// fastiqa_C::ssim_bwd -> (grad_pred, grad_target) of grad_out . out + grad_cs . cs, recomputed
// from pred and target (grad_out: the map's gradient for reduction kMap)
template <class PlanesBwd>
std::tuple<at::Tensor, at::Tensor> ssim_backward(
    PlanesBwd planes_bwd, const at::Tensor& pred, const at::Tensor& target, c10::IntArrayRef win_size,
    c10::ArrayRef<double> win_sigma,
    double c1, double c2, int64_t padding, int64_t reduction, int64_t output, double alpha,
    const std::optional<at::Tensor>& grad_out, const std::optional<at::Tensor>& grad_cs, bool need_grad_pred,
    bool need_grad_target) {
  using namespace fastiqa::codes;
  check_ssim_codes(reduction, output, alpha);
  TORCH_CHECK(pred.dim() == 4 || pred.dim() == 5,
              "fastiqa_C::ssim: pred and target must be (N, C, H, W) images or (N, C, D, H, W) volumes");
  const SsimWindow win = ssim_window(win_size, win_sigma);
  const bool map = reduction == kMap;
  at::Tensor factor = grad_out.has_value() && !map ? *grad_out : at::Tensor();
  std::optional<at::Tensor> dmap;
  if (grad_out.has_value() && map) dmap = grad_out->to(pred.scalar_type());
  at::Tensor d_planes = ssim_d_planes(pred, output, alpha, reduction, factor, 0.0, grad_cs);
  return planes_bwd(pred, target, win, c1, c2, padding, d_planes, dmap, need_grad_pred,
                    need_grad_target);
}

}  // namespace host
}  // namespace fastiqa
