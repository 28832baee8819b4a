// Torch side of the CUDA pixel-loss kernels: checks, allocation, device guard,
// current stream; the kernels themselves live in the torch-free pixel.cu.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "../common/pixel_math.h"
#include "../host/pixel_checks.h"
#include "host_common.h"
#include "pixel_launch.h"

namespace fastiqa {
namespace cuda {
namespace {

std::tuple<at::Tensor, at::Tensor, at::Tensor> pixel_fwd(
    const at::Tensor& pred, const at::Tensor& target, const std::optional<at::Tensor>& weight,
    int64_t weight_mode, int64_t channels, int64_t inner, int64_t kind, double c,
    int64_t reduction, double norm_scale, bool need_grad) {
  using namespace fastiqa::pixel;
  host::check_pixel_fwd(pred, target, weight, weight_mode, channels, inner, kind, reduction);
  const int64_t n = pred.numel();
  c10::cuda::CUDAGuard guard(pred.device());
  const auto scalar_opts = pred.options().dtype(host::acc_dtype(pred));
  at::Tensor map = reduction == kNone ? at::empty_like(pred) : at::Tensor();
  at::Tensor grad = need_grad ? at::empty_like(pred) : at::empty({0}, pred.options());
  at::Tensor out = reduction == kNone ? map : at::empty({}, scalar_opts);
  at::Tensor gscale = at::empty({}, scalar_opts);
  at::Tensor partials = at::empty({2 * pixel_fwd_blocks(n)}, scalar_opts);
  auto stream = c10::cuda::getCurrentCUDAStream(pred.device().index()).stream();
  check_launch(pixel_fwd_launch(
      dtype_code(pred.scalar_type()), pred.data_ptr(), target.data_ptr(),
      weight.has_value() ? weight->data_ptr() : nullptr,
      reduction == kNone ? map.data_ptr() : nullptr, need_grad ? grad.data_ptr() : nullptr,
      partials.data_ptr(), reduction == kNone ? gscale.data_ptr() : out.data_ptr(), gscale.data_ptr(),
      n, static_cast<int>(weight_mode), channels, inner, static_cast<int>(kind), c,
      static_cast<int>(reduction), norm_scale, stream));
  return {out, gscale, grad};
}

std::tuple<at::Tensor, at::Tensor> pixel_bwd(const at::Tensor& grad, const at::Tensor& grad_out,
                                             const at::Tensor& gscale, bool need_grad_pred,
                                             bool need_grad_target) {
  host::check_pixel_bwd(grad, grad_out, gscale);
  c10::cuda::CUDAGuard guard(grad.device());
  at::Tensor gp = need_grad_pred ? at::empty_like(grad) : at::empty({0}, grad.options());
  at::Tensor gt = need_grad_target ? at::empty_like(grad) : at::empty({0}, grad.options());
  auto stream = c10::cuda::getCurrentCUDAStream(grad.device().index()).stream();
  check_launch(pixel_bwd_launch(dtype_code(grad.scalar_type()), grad.data_ptr(),
                                need_grad_pred ? gp.data_ptr() : nullptr,
                                need_grad_target ? gt.data_ptr() : nullptr, grad_out.data_ptr(),
                                gscale.data_ptr(), grad.numel(), stream));
  return {gp, gt};
}

}  // namespace
}  // namespace cuda
}  // namespace fastiqa

TORCH_LIBRARY_IMPL(fastiqa_C, CUDA, m) {
  m.impl("pixel_fwd", &fastiqa::cuda::pixel_fwd);
  m.impl("pixel_bwd", &fastiqa::cuda::pixel_bwd);
}
