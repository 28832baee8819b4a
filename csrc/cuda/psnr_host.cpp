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

std::tuple<at::Tensor, at::Tensor> psnr_fwd(const at::Tensor& x, const at::Tensor& y, int64_t kind,
                                            int64_t crop, bool y_channel, bool quantize,
                                            double data_range, bool need_grad) {
  using namespace fastiqa::psnr;
  host::check_psnr_fwd(x, y, kind, crop, y_channel, quantize, data_range, need_grad);
  c10::cuda::CUDAGuard guard(x.device());
  const int64_t n = x.size(0), c = x.size(1);
  const int64_t hh = x.size(2) - 2 * crop, ww = x.size(3) - 2 * crop;
  const int64_t count = (y_channel ? 1 : c) * hh * ww;
  const auto acc_opts = x.options().dtype(host::acc_dtype(x));
  at::Tensor stat = at::empty({n}, acc_opts);
  at::Tensor grad = !need_grad ? at::empty({0}, x.options())
                    : crop > 0 ? at::zeros_like(x)  // the border is not written
                               : at::empty_like(x);
  at::Tensor partials = at::empty({n * psnr_fwd_blocks(n, count)}, acc_opts);
  auto stream = c10::cuda::getCurrentCUDAStream(x.device().index()).stream();
  check_launch(psnr_fwd_launch(dtype_code(x.scalar_type()), x.data_ptr(), y.data_ptr(),
                                    need_grad ? grad.data_ptr() : nullptr, partials.data_ptr(),
                                    stat.data_ptr(), n, c, hh, ww, x.stride(0), x.stride(1), x.stride(2),
                                    x.stride(3), crop, static_cast<int>(kind), y_channel, quantize,
                                    data_range, stream));
  return {stat, grad};
}

std::tuple<at::Tensor, at::Tensor> psnr_bwd(const at::Tensor& grad, const at::Tensor& grad_out,
                                            bool need_x, bool need_y) {
  host::check_psnr_bwd(grad, grad_out);
  const int64_t n = grad.size(0);
  c10::cuda::CUDAGuard guard(grad.device());
  at::Tensor gx = need_x ? at::empty_like(grad) : at::empty({0}, grad.options());
  at::Tensor gy = need_y ? at::empty_like(grad) : at::empty({0}, grad.options());
  const int64_t per = n > 0 ? grad.numel() / n : 0;
  auto stream = c10::cuda::getCurrentCUDAStream(grad.device().index()).stream();
  check_launch(psnr_bwd_launch(dtype_code(grad.scalar_type()), grad.data_ptr(),
                                    need_x ? gx.data_ptr() : nullptr, need_y ? gy.data_ptr() : nullptr,
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
