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
#include "host_common.h"
#include "psnr_launch.h"

namespace fastiqa {
namespace cuda {
namespace {

std::tuple<at::Tensor, at::Tensor> psnr_fwd(const at::Tensor& x, const at::Tensor& y, int64_t kind,
                                            int64_t crop, bool y_channel, bool quantize,
                                            double data_range, bool need_grad) {
  using namespace fastiqa::psnr;
  TORCH_CHECK(x.dim() == 4, "fastiqa_C::psnr_fwd: expects (N, C, H, W) images");
  TORCH_CHECK(x.sizes() == y.sizes() && x.strides() == y.strides(),
              "fastiqa_C::psnr_fwd: x and y must share shape and strides");
  TORCH_CHECK(x.scalar_type() == y.scalar_type(), "fastiqa_C::psnr_fwd: x and y must share a dtype");
  TORCH_CHECK(y.device() == x.device(), "fastiqa_C::psnr_fwd: tensors on different devices");
  TORCH_CHECK(x.is_non_overlapping_and_dense(), "fastiqa_C::psnr_fwd: input must be dense");
  TORCH_CHECK(x.size(0) <= 1 || x.stride(0) == x.numel() / x.size(0),
              "fastiqa_C::psnr_fwd: images must be contiguous blocks (NCHW or channels_last)");
  TORCH_CHECK(kind == kMSE || kind == kL1, "fastiqa_C::psnr_fwd: unknown kind");
  TORCH_CHECK(crop >= 0 && 2 * crop < x.size(2) && 2 * crop < x.size(3),
              "fastiqa_C::psnr_fwd: crop leaves no pixels");
  TORCH_CHECK(!y_channel || x.size(1) == 3, "fastiqa_C::psnr_fwd: y_channel needs 3 channels");
  TORCH_CHECK(data_range > 0, "fastiqa_C::psnr_fwd: data_range must be > 0");
  TORCH_CHECK(!(need_grad && quantize), "fastiqa_C::psnr_fwd: no gradient through quantize");
  c10::cuda::CUDAGuard guard(x.device());
  const int64_t n = x.size(0), c = x.size(1);
  const int64_t hh = x.size(2) - 2 * crop, ww = x.size(3) - 2 * crop;
  const int64_t count = (y_channel ? 1 : c) * hh * ww;
  const auto acc_dtype = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  const auto acc_opts = x.options().dtype(acc_dtype);
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
  TORCH_CHECK(grad.dim() == 4 && grad.is_non_overlapping_and_dense(),
              "fastiqa_C::psnr_bwd: grad must be a dense (N, C, H, W) tensor");
  const int64_t n = grad.size(0);
  TORCH_CHECK(n <= 1 || grad.stride(0) == grad.numel() / n,
              "fastiqa_C::psnr_bwd: images must be contiguous blocks");
  const auto acc_dtype = grad.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  TORCH_CHECK(grad_out.dim() == 1 && grad_out.size(0) == n && grad_out.scalar_type() == acc_dtype &&
                  grad_out.device() == grad.device() && grad_out.is_contiguous(),
              "fastiqa_C::psnr_bwd: grad_out must be a contiguous (N,) accumulator tensor on the device");
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
