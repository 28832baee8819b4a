// Torch side of the CUDA perceptual distance heads: checks, layout, allocation, device guard,
// current stream; the kernels live in the torch-free perceptual.cu. Features are made dense
// NCHW first (a copy for channels_last or strided features; the kernels read planes).
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "../host/perceptual_checks.h"
#include "host_common.h"
#include "perceptual_launch.h"

namespace fastiqa {
namespace cuda {
namespace {

struct Head {
  at::Tensor x, y, w;
  int64_t n, c, hw;
};

Head prepare(const at::Tensor& pred, const at::Tensor& target, const at::Tensor& weight, bool dists,
             const char* op) {
  host::check_head(pred, target, weight, dists, op);
  const auto acc = host::acc_dtype(pred);
  return {pred.contiguous(), target.contiguous(), weight.to(acc).contiguous(), pred.size(0), pred.size(1),
          pred.size(2) * pred.size(3)};
}

at::Tensor head_fwd(const at::Tensor& pred, const at::Tensor& target, const at::Tensor& weight, bool dists) {
  const char* op = dists ? "dists_head_fwd" : "lpips_head_fwd";
  c10::cuda::CUDAGuard guard(pred.device());
  Head h = prepare(pred, target, weight, dists, op);
  const auto opts = pred.options().dtype(host::acc_dtype(pred));
  at::Tensor value = at::empty({h.n}, opts);
  at::Tensor scratch = at::empty({dists ? h.n * h.c : lpips_fwd_partials(h.n, h.hw)}, opts);
  auto stream = c10::cuda::getCurrentCUDAStream(pred.device().index()).stream();
  const int dt = dtype_code(pred.scalar_type());
  check_launch(dists ? dists_fwd_launch(dt, h.x.data_ptr(), h.y.data_ptr(), h.w.data_ptr(), scratch.data_ptr(),
                                        value.data_ptr(), h.n, h.c, h.hw, stream)
                     : lpips_fwd_launch(dt, h.x.data_ptr(), h.y.data_ptr(), h.w.data_ptr(), scratch.data_ptr(),
                                        value.data_ptr(), h.n, h.c, h.hw, stream));
  return value;
}

std::tuple<at::Tensor, at::Tensor> head_bwd(const at::Tensor& pred, const at::Tensor& target,
                                            const at::Tensor& weight, const at::Tensor& grad_out,
                                            bool need_grad_pred, bool need_grad_target, bool dists) {
  const char* op = dists ? "dists_head_bwd" : "lpips_head_bwd";
  c10::cuda::CUDAGuard guard(pred.device());
  Head h = prepare(pred, target, weight, dists, op);
  host::check_head_bwd(pred, grad_out, op);
  at::Tensor go = grad_out.to(host::acc_dtype(pred)).contiguous();
  at::Tensor gp = need_grad_pred ? at::empty_like(h.x) : at::empty({0}, pred.options());
  at::Tensor gt = need_grad_target ? at::empty_like(h.y) : at::empty({0}, target.options());
  auto stream = c10::cuda::getCurrentCUDAStream(pred.device().index()).stream();
  const int dt = dtype_code(pred.scalar_type());
  void* gpp = need_grad_pred ? gp.data_ptr() : nullptr;
  void* gtp = need_grad_target ? gt.data_ptr() : nullptr;
  check_launch(dists ? dists_bwd_launch(dt, h.x.data_ptr(), h.y.data_ptr(), h.w.data_ptr(), go.data_ptr(), gpp,
                                        gtp, h.n, h.c, h.hw, stream)
                     : lpips_bwd_launch(dt, h.x.data_ptr(), h.y.data_ptr(), h.w.data_ptr(), go.data_ptr(), gpp,
                                        gtp, h.n, h.c, h.hw, stream));
  return {gp, gt};
}

at::Tensor lpips_head_fwd(const at::Tensor& pred, const at::Tensor& target, const at::Tensor& weight) {
  return head_fwd(pred, target, weight, false);
}

at::Tensor dists_head_fwd(const at::Tensor& pred, const at::Tensor& target, const at::Tensor& weight) {
  return head_fwd(pred, target, weight, true);
}

std::tuple<at::Tensor, at::Tensor> lpips_head_bwd(const at::Tensor& pred, const at::Tensor& target,
                                                  const at::Tensor& weight, const at::Tensor& grad_out,
                                                  bool need_grad_pred, bool need_grad_target) {
  return head_bwd(pred, target, weight, grad_out, need_grad_pred, need_grad_target, false);
}

std::tuple<at::Tensor, at::Tensor> dists_head_bwd(const at::Tensor& pred, const at::Tensor& target,
                                                  const at::Tensor& weight, const at::Tensor& grad_out,
                                                  bool need_grad_pred, bool need_grad_target) {
  return head_bwd(pred, target, weight, grad_out, need_grad_pred, need_grad_target, true);
}

}  // namespace
}  // namespace cuda
}  // namespace fastiqa

TORCH_LIBRARY_IMPL(fastiqa_C, CUDA, m) {
  m.impl("lpips_head_fwd", &fastiqa::cuda::lpips_head_fwd);
  m.impl("lpips_head_bwd", &fastiqa::cuda::lpips_head_bwd);
  m.impl("dists_head_fwd", &fastiqa::cuda::dists_head_fwd);
  m.impl("dists_head_bwd", &fastiqa::cuda::dists_head_bwd);
}
