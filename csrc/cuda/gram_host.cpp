// Torch side of the CUDA gram-family kernels: checks, allocation, device guard,
// current stream; the kernels themselves live in the torch-free gram.cu.
// Same op contract as csrc/cpu/gram_impl.h.
#include <ATen/core/Tensor.h>
#include <ATen/ops/add.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/mul.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "../common/gram_math.h"
#include "host_common.h"
#include "../host/gram_checks.h"
#include "gram_launch.h"

namespace fastiqa {
namespace cuda {
namespace {

struct Feat {
  int64_t N, C, K, sN, sC, sK;
};

// (N, C, K) features dense along K (NCHW) or along C (channels_last).
Feat describe(const at::Tensor& f, const char* name) {
  host::check_features(f, name);
  TORCH_CHECK(f.is_cuda(), "fastiqa_C::", name, ": features must be CUDA tensors");
  Feat d{f.size(0), f.size(1), f.size(2), f.stride(0), f.stride(1), f.stride(2)};
  if (d.K == 1) d.sK = 1;
  if (d.C == 1) d.sC = d.K;
  return d;
}

at::Tensor gram_fwd(const at::Tensor& feat, double scale) {
  const Feat f = describe(feat, "gram_fwd");
  c10::cuda::CUDAGuard guard(feat.device());
  const auto opts = feat.options().dtype(host::acc_dtype(feat));
  at::Tensor g = at::empty({f.N, f.C, f.C}, opts);
  if (f.N == 0 || f.C == 0) return g;
  const int64_t splits = gram_splits(f.N, f.C, f.K);
  at::Tensor part = at::empty({splits * f.N * f.C * f.C}, opts);
  auto stream = c10::cuda::getCurrentCUDAStream(feat.device().index()).stream();
  check_launch(gram_fwd_launch(dtype_code(feat.scalar_type()), feat.data_ptr(), part.data_ptr(), g.data_ptr(),
                        f.N, f.C, f.K, f.sN, f.sC, f.sK, splits, scale, stream));
  return g;
}

at::Tensor gram_apply(const at::Tensor& q, const at::Tensor& feat, double alpha) {
  const Feat f = describe(feat, "gram_apply");
  host::check_gram_q(q, feat);
  c10::cuda::CUDAGuard guard(feat.device());
  at::Tensor qc = q.contiguous();
  at::Tensor out = at::empty_like(feat);  // same (dense) strides as the features
  if (feat.numel() == 0) return out;
  auto stream = c10::cuda::getCurrentCUDAStream(feat.device().index()).stream();
  check_launch(gram_apply_launch(dtype_code(feat.scalar_type()), qc.data_ptr(), qc.size(0), feat.data_ptr(),
                          out.data_ptr(), f.N, f.C, f.K, f.sN, f.sC, f.sK, alpha, stream));
  return out;
}

std::tuple<at::Tensor, at::Tensor> style_fwd(const at::Tensor& pred, const std::optional<at::Tensor>& target,
                                             const std::optional<at::Tensor>& target_gram, double scale,
                                             int64_t criterion, bool need_grad) {
  host::check_style_fwd(pred, target, target_gram, criterion);
  const Feat f = describe(pred, "style_fwd");
  const auto acc = host::acc_dtype(pred);
  TORCH_CHECK(f.N > 0 && f.C > 0, "fastiqa_C::style_fwd: empty features");
  c10::cuda::CUDAGuard guard(pred.device());
  const auto opts = pred.options().dtype(acc);
  const int64_t splits = gram_splits(f.N, f.C, f.K);
  at::Tensor part = at::empty({splits * f.N * f.C * f.C}, opts);
  at::Tensor loss_part = at::empty({f.N * gram_triangle_tiles(f.C) + 1}, opts);
  at::Tensor loss = at::empty({}, opts);
  at::Tensor p = need_grad ? at::empty({f.N, f.C, f.C}, opts) : at::empty({0}, opts);
  auto stream = c10::cuda::getCurrentCUDAStream(pred.device().index()).stream();
  check_launch(style_fwd_launch(dtype_code(pred.scalar_type()), pred.data_ptr(), target.has_value() ? target->data_ptr() : nullptr,
                         target_gram.has_value() ? target_gram->data_ptr() : nullptr,
                         target_gram.has_value() ? target_gram->size(0) : 1, part.data_ptr(),
                         need_grad ? p.data_ptr() : nullptr, loss_part.data_ptr(), loss.data_ptr(), f.N, f.C,
                         f.K, f.sN, f.sC, f.sK, splits, scale, static_cast<int>(criterion), stream));
  return {loss, p};
}

std::tuple<at::Tensor, at::Tensor> style_bwd(const at::Tensor& pred, const at::Tensor& target, const at::Tensor& p,
                                             const at::Tensor& grad_out, double scale, bool need_grad_pred,
                                             bool need_grad_target) {
  describe(pred, "style_bwd");
  host::check_style_bwd(pred, target, p, grad_out, need_grad_target);
  const auto acc = host::acc_dtype(pred);
  c10::cuda::CUDAGuard guard(pred.device());
  // Q = scale * grad_out * (P + P^T), read on the device (no host sync)
  at::Tensor q = at::mul(at::add(p, p.transpose(1, 2)), at::mul(grad_out.to(acc).reshape({}), scale));
  at::Tensor gx = need_grad_pred ? gram_apply(q, pred, 1.0) : at::empty({0}, pred.options());
  at::Tensor gy = need_grad_target ? gram_apply(q, target, -1.0) : at::empty({0}, pred.options());
  return {gx, gy};
}

}  // namespace
}  // namespace cuda
}  // namespace fastiqa

TORCH_LIBRARY_IMPL(fastiqa_C, CUDA, m) {
  m.impl("gram_fwd", &fastiqa::cuda::gram_fwd);
  m.impl("gram_apply", &fastiqa::cuda::gram_apply);
  m.impl("style_fwd", &fastiqa::cuda::style_fwd);
  m.impl("style_bwd", &fastiqa::cuda::style_bwd);
}
