// Torch side of the CUDA masked-SSIM kernels (csrc/cuda/ssim_masked.cu): checks
// (csrc/host/ssim_masked_checks.h), allocation, device guard, current stream, and the per-plane
// sum of the forward's block partials in block order (deterministic).
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/sum.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <vector>

#include "../common/ssim_math.h"
#include "../host/ssim_masked_checks.h"
#include "host_common.h"
#include "ssim_masked_launch.h"

namespace fastiqa {
namespace cuda {
namespace {

// (N, C, D, H, W) strides of t: images get depth stride 0.
void strides5(const at::Tensor& t, int64_t* s) {
  const bool vol = t.dim() == 5;
  s[0] = t.stride(0);
  s[1] = t.stride(1);
  s[2] = vol ? t.stride(2) : 0;
  s[3] = t.stride(vol ? 3 : 2);
  s[4] = t.stride(vol ? 4 : 3);
}

MaskedGeometry geometry(const at::Tensor& x, const at::Tensor& y, const at::Tensor& mask, c10::IntArrayRef win_size,
                        c10::ArrayRef<double> win_sigma, double c1, double c2, int64_t padding) {
  using namespace fastiqa::ssim;
  const host::SsimWindow win = host::check_ssim_masked(x, y, mask, win_size, win_sigma, padding);
  TORCH_CHECK(x.is_cuda(), "fastiqa_C::ssim_masked: CUDA tensors expected");
  MaskedGeometry g{};
  const bool vol = x.dim() == 5;
  g.N = x.size(0);
  g.C = x.size(1);
  g.D = vol ? x.size(2) : 1;
  g.H = x.size(vol ? 3 : 2);
  g.W = x.size(vol ? 4 : 3);
  g.kd = vol ? static_cast<int>(win.size[0]) : 1;
  g.kh = static_cast<int>(win.size[vol ? 1 : 0]);
  g.kw = static_cast<int>(win.size[vol ? 2 : 1]);
  g.padding = static_cast<int>(padding);
  const bool valid = padding == kValid;
  g.Do = valid ? g.D - g.kd + 1 : g.D;
  g.Ho = valid ? g.H - g.kh + 1 : g.H;
  g.Wo = valid ? g.W - g.kw + 1 : g.W;
  if (vol) {
    gaussian_window(g.kd, win.sigma[0], g.gd);
  } else {
    g.gd[0] = 1.0;
  }
  gaussian_window(g.kh, win.sigma[vol ? 1 : 0], g.gh);
  gaussian_window(g.kw, win.sigma[vol ? 2 : 1], g.gw);
  g.c1 = c1;
  g.c2 = c2;
  strides5(x, g.sx);
  strides5(y, g.sy);
  strides5(mask, g.sm);
  return g;
}

std::vector<int64_t> map_sizes(const at::Tensor& x, const MaskedGeometry& g) {
  if (x.dim() == 5) return {g.N, g.C, g.Do, g.Ho, g.Wo};
  return {g.N, g.C, g.Ho, g.Wo};
}

std::tuple<at::Tensor, at::Tensor> ssim_masked_fwd(const at::Tensor& pred, const at::Tensor& target,
                                                   const at::Tensor& mask, c10::IntArrayRef win_size,
                                                   c10::ArrayRef<double> win_sigma, double c1, double c2,
                                                   int64_t padding, bool want_map) {
  MaskedGeometry g = geometry(pred, target, mask, win_size, win_sigma, c1, c2, padding);
  c10::cuda::CUDAGuard guard(pred.device());
  const auto acc = host::acc_dtype(pred);
  at::Tensor map = at::empty({0}, pred.options());
  if (want_map) {
    const bool cl = pred.dim() == 4 && !pred.is_contiguous() && pred.is_contiguous(at::MemoryFormat::ChannelsLast);
    map = at::empty(map_sizes(pred, g), pred.options().memory_format(cl ? at::MemoryFormat::ChannelsLast
                                                                        : at::MemoryFormat::Contiguous));
    strides5(map, g.smap);
  }
  const int64_t blocks = ssim_masked_fwd_blocks(g);
  at::Tensor partials = at::empty({g.N * g.C, blocks, host::kMaskedPlaneSums}, pred.options().dtype(acc));
  auto stream = c10::cuda::getCurrentCUDAStream(pred.device().index()).stream();
  check_launch(ssim_masked_fwd_launch(dtype_code(pred.scalar_type()), pred.data_ptr(), target.data_ptr(),
                                      mask.data_ptr(), g, want_map ? map.data_ptr() : nullptr, partials.data_ptr(),
                                      stream));
  at::Tensor planes = at::sum(partials, {1}).view({g.N, g.C, host::kMaskedPlaneSums});
  return {planes, map};
}

std::tuple<at::Tensor, at::Tensor> ssim_masked_bwd(const at::Tensor& pred, const at::Tensor& target,
                                                   const at::Tensor& mask, c10::IntArrayRef win_size,
                                                   c10::ArrayRef<double> win_sigma, double c1, double c2,
                                                   int64_t padding, const at::Tensor& d_planes,
                                                   const std::optional<at::Tensor>& d_map, bool need_grad_pred,
                                                   bool need_grad_target) {
  MaskedGeometry g = geometry(pred, target, mask, win_size, win_sigma, c1, c2, padding);
  const std::vector<int64_t> out = map_sizes(pred, g);
  host::check_ssim_masked_grads(pred, d_planes, d_map, out.data() + 2);
  c10::cuda::CUDAGuard guard(pred.device());
  // both laid out as empty_like(pred): the kernel writes them with one set of strides
  at::Tensor gx = need_grad_pred ? at::empty_like(pred) : at::empty({0}, pred.options());
  at::Tensor gy = need_grad_target ? at::empty_like(pred) : at::empty({0}, pred.options());
  if (!need_grad_pred && !need_grad_target) return {gx, gy};
  strides5(need_grad_pred ? gx : gy, g.sg);
  if (d_map.has_value()) strides5(*d_map, g.sdm);
  at::Tensor coef = at::empty({g.N * g.C * 4 * g.Do * g.Ho * g.Wo}, pred.options().dtype(host::acc_dtype(pred)));
  auto stream = c10::cuda::getCurrentCUDAStream(pred.device().index()).stream();
  check_launch(ssim_masked_bwd_launch(dtype_code(pred.scalar_type()), pred.data_ptr(), target.data_ptr(),
                                      mask.data_ptr(), g, d_planes.data_ptr(),
                                      d_map.has_value() ? d_map->data_ptr() : nullptr, coef.data_ptr(),
                                      need_grad_pred ? gx.data_ptr() : nullptr,
                                      need_grad_target ? gy.data_ptr() : nullptr, stream));
  return {gx, gy};
}

}  // namespace
}  // namespace cuda
}  // namespace fastiqa

TORCH_LIBRARY_IMPL(fastiqa_C, CUDA, m) {
  m.impl("ssim_masked_fwd", &fastiqa::cuda::ssim_masked_fwd);
  m.impl("ssim_masked_bwd", &fastiqa::cuda::ssim_masked_bwd);
}
