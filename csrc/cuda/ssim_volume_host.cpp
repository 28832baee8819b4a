// Torch side of the CUDA SSIM kernels on volumes (declared in ssim_volume_host.h): geometry,
// allocation, device guard, current stream and the per-plane sum of the forward's unit
// partials (a fixed-order sum, deterministic). Maps are contiguous, as the CPU kernels'; the
// gradients are laid out as empty_like(x) (channels_last_3d stays channels_last_3d).
#include "ssim_volume_host.h"

#include <ATen/ops/div.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/sum.h>
#include <ATen/ops/tensor.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "../common/ssim_math.h"
#include "host_common.h"
#include "ssim_volume_launch.h"

namespace fastiqa {
namespace cuda {
namespace {

SsimVolGeometry geometry(const at::Tensor& x, const at::Tensor& y, const host::SsimWindow& win, int64_t padding) {
  using namespace fastiqa::ssim;
  host::check_ssim_inputs(x, y, win, padding);
  TORCH_CHECK(x.is_cuda() && x.dim() == 5, "fastiqa_C::ssim: CUDA (N, C, D, H, W) volumes expected");
  SsimVolGeometry g{};
  g.N = x.size(0); g.C = x.size(1); g.D = x.size(2); g.H = x.size(3); g.W = x.size(4);
  g.wd = static_cast<int>(win.size[0]);
  g.wh = static_cast<int>(win.size[1]);
  g.ww = static_cast<int>(win.size[2]);
  g.padding = static_cast<int>(padding);
  const bool valid = padding == kValid;
  g.offd = valid ? 0 : g.wd / 2;
  g.offh = valid ? 0 : g.wh / 2;
  g.offw = valid ? 0 : g.ww / 2;
  g.Do = valid ? g.D - g.wd + 1 : g.D;
  g.Ho = valid ? g.H - g.wh + 1 : g.H;
  g.Wo = valid ? g.W - g.ww + 1 : g.W;
  for (int i = 0; i < 5; ++i) {
    g.sx[i] = x.stride(i);
    g.sy[i] = y.stride(i);
  }
  return g;
}

// The kernels' window: the depth taps, then the vertical, then the horizontal ones.
void window_taps(const host::SsimWindow& win, double* window) {
  int at = 0;
  for (int a = 0; a < 3; ++a) {
    fastiqa::ssim::gaussian_window(static_cast<int>(win.size[a]), win.sigma[a], window + at);
    at += static_cast<int>(win.size[a]);
  }
}

void strides_of(const at::Tensor& t, int64_t* s) {
  for (int i = 0; i < 5; ++i) s[i] = t.stride(i);
}

std::tuple<at::Tensor, at::Tensor> grads(const at::Tensor& x, const at::Tensor& y, const SsimVolGeometry& geo,
                                         const double* window, const double* c, const at::Tensor& weights,
                                         const std::optional<at::Tensor>& dmap, bool need_gx, bool need_gy) {
  const bool comp = host::check_ssim_weights(weights, x);
  host::check_ssim_dmap(dmap, x, {geo.Do, geo.Ho, geo.Wo}, comp);
  at::Tensor gx = need_gx ? at::empty_like(x) : at::empty({0}, x.options());
  at::Tensor gy = need_gy ? at::empty_like(x) : at::empty({0}, x.options());
  if (!need_gx && !need_gy) return {gx, gy};
  int64_t sd[5] = {0, 0, 0, 0, 0}, sg[5], sdk = 0;
  if (dmap.has_value()) {
    strides_of(comp ? dmap->select(0, 0) : *dmap, sd);
    if (comp) sdk = dmap->stride(0);
  }
  strides_of(need_gx ? gx : gy, sg);  // both laid out as empty_like(x): one set of strides
  auto stream = c10::cuda::getCurrentCUDAStream(x.device().index()).stream();
  const void* dp = dmap.has_value() ? dmap->data_ptr() : nullptr;
  const int dt = dtype_code(x.scalar_type());
  if (!comp) {
    check_launch(ssim_volume_grad_launch(dt, x.data_ptr(), y.data_ptr(), geo, window, c, weights.data_ptr(), dp, sd,
                                         need_gx ? gx.data_ptr() : nullptr, need_gy ? gy.data_ptr() : nullptr, sg,
                                         false, false, 0, stream));
    return {gx, gy};
  }
  // the components: one launch per input (their variance coefficients differ, ssim_volume.cu)
  if (need_gx)
    check_launch(ssim_volume_grad_launch(dt, x.data_ptr(), y.data_ptr(), geo, window, c, weights.data_ptr(), dp, sd,
                                         gx.data_ptr(), nullptr, sg, true, false, sdk, stream));
  if (need_gy)
    check_launch(ssim_volume_grad_launch(dt, x.data_ptr(), y.data_ptr(), geo, window, c, weights.data_ptr(), dp, sd,
                                         nullptr, gy.data_ptr(), sg, true, true, sdk, stream));
  return {gx, gy};
}

}  // namespace

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> ssim_volume_planes_fwd(
    const at::Tensor& x, const at::Tensor& y, const host::SsimWindow& win, double c1, double c2, int64_t padding,
    bool want_map, bool want_l1, bool components, const std::optional<at::Tensor>& weights, bool need_gx,
    bool need_gy) {
  const SsimVolGeometry geo = geometry(x, y, win, padding);
  c10::cuda::CUDAGuard guard(x.device());
  double window[3 * fastiqa::ssim::kMaxWin];
  window_taps(win, window);
  const double c[2] = {c1, c2};
  const auto acc = host::acc_dtype(x);
  // the components' maps S, l, c, s: (4 N, C, Do, Ho, Wo) viewed as (4, N, C, Do, Ho, Wo)
  const int64_t nmaps = components ? fastiqa::ssim::kNumComponentMaps : 1;
  const int64_t np = components ? fastiqa::ssim::kNumComponentStats : fastiqa::ssim::kNumPlaneStats;
  at::Tensor map = want_map ? at::empty({nmaps * geo.N, geo.C, geo.Do, geo.Ho, geo.Wo}, x.options())
                            : at::empty({0}, x.options());
  const int64_t units = ssim_volume_fwd_units(geo);
  at::Tensor partials = at::empty({geo.N * geo.C, units, np}, x.options().dtype(acc));
  int64_t sm[5] = {0, 0, 0, 0, 0};
  if (want_map) strides_of(map, sm);
  auto stream = c10::cuda::getCurrentCUDAStream(x.device().index()).stream();
  check_launch(ssim_volume_fwd_launch(dtype_code(x.scalar_type()), x.data_ptr(), y.data_ptr(), geo, window, c,
                                      want_map ? map.data_ptr() : nullptr, sm, want_l1, components,
                                      geo.N * sm[0], partials.data_ptr(), stream));
  const double n_out = static_cast<double>(geo.Do * geo.Ho * geo.Wo), n_in = static_cast<double>(geo.D * geo.H * geo.W);
  at::Tensor counts = components ? at::tensor({n_out, n_out, n_in, n_out, n_out, n_out}, x.options().dtype(acc))
                                 : at::tensor({n_out, n_out, n_in}, x.options().dtype(acc));
  at::Tensor planes = at::div(at::sum(partials, {1}), counts).view({geo.N, geo.C, np});
  TORCH_CHECK(!(components && weights.has_value()), "fastiqa_C::ssim: the components have no forward gradient");
  at::Tensor gx = at::empty({0}, x.options()), gy = at::empty({0}, x.options());
  if (weights.has_value() && (need_gx || need_gy))
    std::tie(gx, gy) = grads(x, y, geo, window, c, *weights, std::nullopt, need_gx, need_gy);
  if (want_map && components) map = map.view({nmaps, geo.N, geo.C, geo.Do, geo.Ho, geo.Wo});
  return {planes, map, gx, gy};
}

std::tuple<at::Tensor, at::Tensor> ssim_volume_planes_bwd(const at::Tensor& x, const at::Tensor& y,
                                                          const host::SsimWindow& win, double c1, double c2,
                                                          int64_t padding, const at::Tensor& weights,
                                                          const std::optional<at::Tensor>& dmap, bool need_gx,
                                                          bool need_gy) {
  const SsimVolGeometry geo = geometry(x, y, win, padding);
  c10::cuda::CUDAGuard guard(x.device());
  double window[3 * fastiqa::ssim::kMaxWin];
  window_taps(win, window);
  const double c[2] = {c1, c2};
  return grads(x, y, geo, window, c, weights, dmap, need_gx, need_gy);
}

}  // namespace cuda
}  // namespace fastiqa
