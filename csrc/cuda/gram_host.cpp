// Torch side of the CUDA gram-family kernels: checks, allocation, device guard,
// current stream; the kernels themselves live in the torch-free gram.cu.
// Same op contract as csrc/cpu/gram.cpp.
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
#include "gram_launch.h"

namespace fastiqa {
namespace cuda {
namespace {

at::ScalarType acc_type(at::ScalarType t) { return t == at::kDouble ? at::kDouble : at::kFloat; }

struct Feat {
  int64_t N, C, K, sN, sC, sK;
};

// (N, C, K) features dense along K (NCHW) or along C (channels_last).
Feat describe(const at::Tensor& f, const char* name) {
  TORCH_CHECK(f.dim() == 3, "fastiqa_C::", name, ": features must be (N, C, K)");
  TORCH_CHECK(f.is_cuda(), "fastiqa_C::", name, ": features must be CUDA tensors");
  Feat d{f.size(0), f.size(1), f.size(2), f.stride(0), f.stride(1), f.stride(2)};
  if (d.K == 1) d.sK = 1;
  if (d.C == 1) d.sC = d.K;
  TORCH_CHECK((d.sK == 1 && d.sC >= d.K) || (d.sC == 1 && d.sK >= d.C),
              "fastiqa_C::", name, ": features must be dense along C or along K");
  return d;
}

at::Tensor gram_fwd(const at::Tensor& feat, double scale) {
  const Feat f = describe(feat, "gram_fwd");
  c10::cuda::CUDAGuard guard(feat.device());
  const auto opts = feat.options().dtype(acc_type(feat.scalar_type()));
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
  const auto acc = acc_type(feat.scalar_type());
  TORCH_CHECK(q.dim() == 3 && q.size(1) == f.C && q.size(2) == f.C && (q.size(0) == f.N || q.size(0) == 1) &&
                  q.scalar_type() == acc && q.device() == feat.device(),
              "fastiqa_C::gram_apply: q must be (N or 1, C, C) accumulators on the features' device");
  c10::cuda::CUDAGuard guard(feat.device());
  at::Tensor qc = q.contiguous();
  at::Tensor out = at::empty_like(feat);  // same (dense) strides as the features
  if (feat.numel() == 0) return out;
  auto stream = c10::cuda::getCurrentCUDAStream(feat.device().index()).stream();
  check_launch(gram_apply_launch(dtype_code(feat.scalar_type()), qc.data_ptr(), qc.size(0), feat.data_ptr(),
                          out.data_ptr(), f.N, f.C, f.K, f.sN, f.sC, f.sK, alpha, stream));
  return out;
}

std::tuple<at::Tensor, at::Tensor> style_fwd(const at::Tensor& x, const std::optional<at::Tensor>& y,
                                             const std::optional<at::Tensor>& target_gram, double scale,
                                             int64_t criterion, bool need_grad) {
  TORCH_CHECK(y.has_value() != target_gram.has_value(),
              "fastiqa_C::style_fwd: give exactly one of y and target_gram");
  TORCH_CHECK(criterion >= 0 && criterion <= 2, "fastiqa_C::style_fwd: unknown criterion");
  const Feat f = describe(x, "style_fwd");
  const auto acc = acc_type(x.scalar_type());
  if (y.has_value()) {
    TORCH_CHECK(y->sizes() == x.sizes() && y->strides() == x.strides() && y->scalar_type() == x.scalar_type() &&
                    y->device() == x.device(),
                "fastiqa_C::style_fwd: x and y must share shape, strides, dtype and device");
  } else {
    TORCH_CHECK(target_gram->dim() == 3 && target_gram->size(1) == f.C && target_gram->size(2) == f.C &&
                    (target_gram->size(0) == f.N || target_gram->size(0) == 1) &&
                    target_gram->scalar_type() == acc && target_gram->is_contiguous() &&
                    target_gram->device() == x.device(),
                "fastiqa_C::style_fwd: target_gram must be contiguous (N or 1, C, C) accumulators");
  }
  TORCH_CHECK(f.N > 0 && f.C > 0, "fastiqa_C::style_fwd: empty features");
  c10::cuda::CUDAGuard guard(x.device());
  const auto opts = x.options().dtype(acc);
  const int64_t splits = gram_splits(f.N, f.C, f.K);
  at::Tensor part = at::empty({splits * f.N * f.C * f.C}, opts);
  at::Tensor loss_part = at::empty({f.N * gram_triangle_tiles(f.C) + 1}, opts);
  at::Tensor loss = at::empty({}, opts);
  at::Tensor p = need_grad ? at::empty({f.N, f.C, f.C}, opts) : at::empty({0}, opts);
  auto stream = c10::cuda::getCurrentCUDAStream(x.device().index()).stream();
  check_launch(style_fwd_launch(dtype_code(x.scalar_type()), x.data_ptr(), y.has_value() ? y->data_ptr() : nullptr,
                         target_gram.has_value() ? target_gram->data_ptr() : nullptr,
                         target_gram.has_value() ? target_gram->size(0) : 1, part.data_ptr(),
                         need_grad ? p.data_ptr() : nullptr, loss_part.data_ptr(), loss.data_ptr(), f.N, f.C,
                         f.K, f.sN, f.sC, f.sK, splits, scale, static_cast<int>(criterion), stream));
  return {loss, p};
}

std::tuple<at::Tensor, at::Tensor> style_bwd(const at::Tensor& x, const at::Tensor& y, const at::Tensor& p,
                                             const at::Tensor& grad_out, double scale, bool need_x,
                                             bool need_y) {
  const Feat f = describe(x, "style_bwd");
  const auto acc = acc_type(x.scalar_type());
  TORCH_CHECK(!need_y || (y.sizes() == x.sizes() && y.strides() == x.strides() && y.scalar_type() == x.scalar_type()),
              "fastiqa_C::style_bwd: x and y must share shape, strides and dtype");
  TORCH_CHECK(p.dim() == 3 && p.size(0) == f.N && p.size(1) == f.C && p.size(2) == f.C && p.scalar_type() == acc,
              "fastiqa_C::style_bwd: p must be (N, C, C) accumulators");
  TORCH_CHECK(grad_out.numel() == 1, "fastiqa_C::style_bwd: grad_out must be a scalar");
  c10::cuda::CUDAGuard guard(x.device());
  // Q = scale * grad_out * (P + P^T), read on the device (no host sync)
  at::Tensor q = at::mul(at::add(p, p.transpose(1, 2)), at::mul(grad_out.to(acc).reshape({}), scale));
  at::Tensor gx = need_x ? gram_apply(q, x, 1.0) : at::empty({0}, x.options());
  at::Tensor gy = need_y ? gram_apply(q, y, -1.0) : at::empty({0}, x.options());
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
