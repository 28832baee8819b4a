// Torch side of the CUDA psnr-family kernels: checks, allocation, device guard,
// current stream; the kernels themselves live in the torch-free psnr.cu.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/zeros_like.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "../common/psnr_math.h"
#include "../host/psnr_checks.h"
#include "host_common.h"
#include "psnr_launch.h"

namespace fastiqa {
namespace cuda {
namespace {

std::tuple<at::Tensor, at::Tensor> psnr_fwd(const at::Tensor& pred, const at::Tensor& target, int64_t kind,
                                            int64_t crop, bool y_channel, bool quantize,
                                            double data_range, bool need_grad) {
  using namespace fastiqa::psnr;
  host::check_psnr_fwd(pred, target, kind, crop, y_channel, quantize, data_range, need_grad);
  c10::cuda::CUDAGuard guard(pred.device());
  const int64_t n = pred.size(0), c = pred.size(1);
  const int64_t hh = pred.size(2) - 2 * crop, ww = pred.size(3) - 2 * crop;
  const int64_t count = (y_channel ? 1 : c) * hh * ww;
  const auto acc_opts = pred.options().dtype(host::acc_dtype(pred));
  at::Tensor stat = at::empty({n}, acc_opts);
  at::Tensor grad = !need_grad ? at::empty({0}, pred.options())
                    : crop > 0 ? at::zeros_like(pred)  // the border is not written
                               : at::empty_like(pred);
  at::Tensor partials = at::empty({n * psnr_fwd_blocks(n, count)}, acc_opts);
  auto stream = c10::cuda::getCurrentCUDAStream(pred.device().index()).stream();
  check_launch(psnr_fwd_launch(dtype_code(pred.scalar_type()), pred.data_ptr(), target.data_ptr(),
                                    need_grad ? grad.data_ptr() : nullptr, partials.data_ptr(),
                                    stat.data_ptr(), n, c, hh, ww, pred.stride(0), pred.stride(1), pred.stride(2),
                                    pred.stride(3), crop, static_cast<int>(kind), y_channel, quantize,
                                    data_range, stream));
  return {stat, grad};
}

std::tuple<at::Tensor, at::Tensor> psnr_bwd(const at::Tensor& grad, const at::Tensor& grad_out,
                                            bool need_grad_pred, bool need_grad_target) {
  host::check_psnr_bwd(grad, grad_out);
  const int64_t n = grad.size(0);
  c10::cuda::CUDAGuard guard(grad.device());
  at::Tensor gx = need_grad_pred ? at::empty_like(grad) : at::empty({0}, grad.options());
  at::Tensor gy = need_grad_target ? at::empty_like(grad) : at::empty({0}, grad.options());
  const int64_t per = n > 0 ? grad.numel() / n : 0;
  auto stream = c10::cuda::getCurrentCUDAStream(grad.device().index()).stream();
  check_launch(psnr_bwd_launch(dtype_code(grad.scalar_type()), grad.data_ptr(),
                                    need_grad_pred ? gx.data_ptr() : nullptr, need_grad_target ? gy.data_ptr() : nullptr,
                                    grad_out.data_ptr(), n, per, stream));
  return {gx, gy};
}

}  // namespace
}  // namespace cuda
}  // namespace fastiqa

TORCH_LIBRARY_IMPL(fastiqa_C, CUDA, m) {
  m.impl("psnr_fwd", &fastiqa::cuda::psnr_fwd);
  m.impl("psnr_bwd", &fastiqa::cuda::psnr_bwd);
}
