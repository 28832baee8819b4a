// Torch side of the CUDA SSIM kernels: checks, allocation, device guard, current
// stream, the per-plane reduction of the forward's tile partials (a fixed-order
// sum, deterministic); the kernels themselves live in the torch-free ssim.cu. The
// ops' outputs are built from the plane kernels by csrc/host/ssim_op.h.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/div.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/sum.h>
#include <ATen/ops/tensor.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "../common/ssim_math.h"
#include "../host/ssim_checks.h"
#include "../host/ssim_op.h"
#include "host_common.h"
#include "ssim_launch.h"
#include "ssim_volume_host.h"

namespace fastiqa {
namespace cuda {
namespace {

SsimGeometry geometry(const at::Tensor& x, const at::Tensor& y, const host::SsimWindow& win, int64_t padding) {
  using namespace fastiqa::ssim;
  host::check_ssim_inputs(x, y, win, padding);
  TORCH_CHECK(x.is_cuda() && x.dim() == 4, "fastiqa_C::ssim: CUDA (N, C, H, W) images expected");
  SsimGeometry g{};
  g.N = x.size(0); g.C = x.size(1); g.H = x.size(2); g.W = x.size(3);
  g.winh = static_cast<int>(win.size[0]);
  g.winw = static_cast<int>(win.size[1]);
  g.padding = static_cast<int>(padding);
  g.offh = padding == kValid ? 0 : g.winh / 2;
  g.offw = padding == kValid ? 0 : g.winw / 2;
  g.Ho = padding == kValid ? g.H - g.winh + 1 : g.H;
  g.Wo = padding == kValid ? g.W - g.winw + 1 : g.W;
  for (int i = 0; i < 4; ++i) {
    g.sx[i] = x.stride(i);
    g.sy[i] = y.stride(i);
  }
  return g;
}

// The kernels' window: the vertical taps, then the horizontal ones (csrc/cuda/ssim_launch.h).
void window_taps(const host::SsimWindow& win, double* window) {
  fastiqa::ssim::gaussian_window(static_cast<int>(win.size[0]), win.sigma[0], window);
  fastiqa::ssim::gaussian_window(static_cast<int>(win.size[1]), win.sigma[1], window + win.size[0]);
}

void strides_of(const at::Tensor& t, int64_t* s) {
  for (int i = 0; i < 4; ++i) s[i] = t.stride(i);
}

std::tuple<at::Tensor, at::Tensor> grads(const at::Tensor& x, const at::Tensor& y, const SsimGeometry& geo,
                                         const double* window, const double* c, const at::Tensor& weights,
                                         const std::optional<at::Tensor>& dmap, bool need_gx, bool need_gy) {
  const bool comp = host::check_ssim_weights(weights, x);
  host::check_ssim_dmap(dmap, x, {geo.Ho, geo.Wo}, comp);
  // both laid out as empty_like(x): the kernel writes them with one set of strides
  at::Tensor gx = need_gx ? at::empty_like(x) : at::empty({0}, x.options());
  at::Tensor gy = need_gy ? at::empty_like(x) : at::empty({0}, x.options());
  if (!need_gx && !need_gy) return {gx, gy};
  int64_t sd[4] = {0, 0, 0, 0}, sg[4], sdk = 0;
  if (dmap.has_value()) {
    strides_of(comp ? dmap->select(0, 0) : *dmap, sd);
    if (comp) sdk = dmap->stride(0);
  }
  strides_of(need_gx ? gx : gy, sg);
  auto stream = c10::cuda::getCurrentCUDAStream(x.device().index()).stream();
  const void* dp = dmap.has_value() ? dmap->data_ptr() : nullptr;
  if (!comp) {
    check_launch(ssim_grad_launch(dtype_code(x.scalar_type()), x.data_ptr(), y.data_ptr(), geo, window, c,
                                  weights.data_ptr(), dp, sd, need_gx ? gx.data_ptr() : nullptr,
                                  need_gy ? gy.data_ptr() : nullptr, sg, false, false, 0, stream));
    return {gx, gy};
  }
  // the components: one launch per input (their variance coefficients differ, ssim.cu)
  if (need_gx)
    check_launch(ssim_grad_launch(dtype_code(x.scalar_type()), x.data_ptr(), y.data_ptr(), geo, window, c,
                                  weights.data_ptr(), dp, sd, gx.data_ptr(), nullptr, sg, true, false, sdk, stream));
  if (need_gy)
    check_launch(ssim_grad_launch(dtype_code(x.scalar_type()), x.data_ptr(), y.data_ptr(), geo, window, c,
                                  weights.data_ptr(), dp, sd, nullptr, gy.data_ptr(), sg, true, true, sdk, stream));
  return {gx, gy};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> planes_fwd(
    const at::Tensor& x, const at::Tensor& y, const host::SsimWindow& win, double c1, double c2,
    int64_t padding, bool want_map, bool want_l1, bool components, const std::optional<at::Tensor>& weights,
    bool need_gx, bool need_gy) {
  if (x.dim() == 5)  // volumes: csrc/cuda/ssim_volume_host.cpp
    return ssim_volume_planes_fwd(x, y, win, c1, c2, padding, want_map, want_l1, components, weights, need_gx, need_gy);
  const SsimGeometry geo = geometry(x, y, win, padding);
  c10::cuda::CUDAGuard guard(x.device());
  double window[2 * fastiqa::ssim::kMaxWin];
  window_taps(win, window);
  const double c[2] = {c1, c2};
  const auto acc = host::acc_dtype(x);
  // the components' maps S, l, c, s: (4 N, C, Ho, Wo) in x's layout, viewed as (4, N, C, Ho, Wo)
  const int64_t nmaps = components ? fastiqa::ssim::kNumComponentMaps : 1;
  const int64_t np = components ? fastiqa::ssim::kNumComponentStats : fastiqa::ssim::kNumPlaneStats;
  at::Tensor map = want_map ? at::empty({nmaps * geo.N, geo.C, geo.Ho, geo.Wo}, x.options(), x.suggest_memory_format())
                            : at::empty({0}, x.options());
  const int64_t tiles = ssim_fwd_tiles(geo);
  at::Tensor partials = at::empty({geo.N * geo.C, tiles, np}, x.options().dtype(acc));
  int64_t sm[4] = {0, 0, 0, 0};
  if (want_map) strides_of(map, sm);
  const int64_t smk = want_map ? geo.N * map.stride(0) : 0;
  auto stream = c10::cuda::getCurrentCUDAStream(x.device().index()).stream();
  check_launch(ssim_fwd_launch(dtype_code(x.scalar_type()), x.data_ptr(), y.data_ptr(), geo, window, c,
                               want_map ? map.data_ptr() : nullptr, sm, want_l1, components, smk, partials.data_ptr(),
                               stream));
  const double n_out = static_cast<double>(geo.Ho * geo.Wo), n_in = static_cast<double>(geo.H * geo.W);
  at::Tensor counts = components ? at::tensor({n_out, n_out, n_in, n_out, n_out, n_out}, x.options().dtype(acc))
                                 : at::tensor({n_out, n_out, n_in}, x.options().dtype(acc));
  at::Tensor planes = at::div(at::sum(partials, {1}), counts).view({geo.N, geo.C, np});
  at::Tensor gx = at::empty({0}, x.options()), gy = at::empty({0}, x.options());
  TORCH_CHECK(!(components && weights.has_value()), "fastiqa_C::ssim: the components have no forward gradient");
  if (weights.has_value() && (need_gx || need_gy))
    std::tie(gx, gy) = grads(x, y, geo, window, c, *weights, std::nullopt, need_gx, need_gy);
  if (want_map && components) map = map.view({nmaps, geo.N, geo.C, geo.Ho, geo.Wo});
  return {planes, map, gx, gy};
}

std::tuple<at::Tensor, at::Tensor> planes_bwd(const at::Tensor& x, const at::Tensor& y, const host::SsimWindow& win,
                                            double c1, double c2, int64_t padding, const at::Tensor& weights,
                                            const std::optional<at::Tensor>& dmap, bool need_gx,
                                            bool need_gy) {
  if (x.dim() == 5) return ssim_volume_planes_bwd(x, y, win, c1, c2, padding, weights, dmap, need_gx, need_gy);
  const SsimGeometry geo = geometry(x, y, win, padding);
  c10::cuda::CUDAGuard guard(x.device());
  double window[2 * fastiqa::ssim::kMaxWin];
  window_taps(win, window);
  const double c[2] = {c1, c2};
  return grads(x, y, geo, window, c, weights, dmap, need_gx, need_gy);
}

}  // namespace

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> ssim_fwd(
    const at::Tensor& pred, const at::Tensor& target, c10::IntArrayRef win_size, c10::ArrayRef<double> win_sigma,
    double c1, double c2, int64_t padding, int64_t reduction, int64_t output, double alpha, bool need_grad_pred,
    bool need_grad_target) {
  return host::ssim_forward(&planes_fwd, pred, target, win_size, win_sigma, c1, c2, padding, reduction, output, alpha,
                            need_grad_pred, need_grad_target);
}

std::tuple<at::Tensor, at::Tensor> ssim_bwd(
    const at::Tensor& pred, const at::Tensor& target, c10::IntArrayRef win_size, c10::ArrayRef<double> win_sigma,
    double c1, double c2, int64_t padding, int64_t reduction, int64_t output, double alpha,
    const std::optional<at::Tensor>& grad_out, const std::optional<at::Tensor>& grad_cs, bool need_grad_pred,
    bool need_grad_target) {
  return host::ssim_backward(&planes_bwd, pred, target, win_size, win_sigma, c1, c2, padding, reduction, output,
                             alpha, grad_out, grad_cs, need_grad_pred, need_grad_target);
}

}  // namespace cuda
}  // namespace fastiqa

TORCH_LIBRARY_IMPL(fastiqa_C, CUDA, m) {
  m.impl("ssim_fwd", &fastiqa::cuda::ssim_fwd);
  m.impl("ssim_bwd", &fastiqa::cuda::ssim_bwd);
}
