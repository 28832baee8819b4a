// Argument checks of the SSIM-family ops (fastiqa_C::ssim_fwd / ssim_bwd), shared by
// the CPU kernels and the CUDA host (codes and limits: csrc/common/ssim_math.h).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <initializer_list>
#include <optional>

#include "../common/ssim_math.h"
#include "acc_dtype.h"

namespace fastiqa {
namespace host {

// The window of the ssim_fwd / ssim_bwd ops: one odd size in [kMinWin, kMaxWin] and one
// sigma > 0 (inf: the uniform window) per spatial axis, outermost first ((H, W) for images,
// (D, H, W) for volumes).
struct SsimWindow {
  int axes = 0;
  int64_t size[3] = {};
  double sigma[3] = {};
};

inline SsimWindow ssim_window(c10::IntArrayRef size, c10::ArrayRef<double> sigma) {
  using namespace fastiqa::ssim;
  TORCH_CHECK((size.size() == 2 || size.size() == 3) && sigma.size() == size.size(),
              "fastiqa_C::ssim: win_size and win_sigma must hold one entry per spatial axis ((H, W) or (D, H, W)), "
              "got ", size.size(), " and ", sigma.size());
  SsimWindow w;
  w.axes = static_cast<int>(size.size());
  for (int a = 0; a < w.axes; ++a) {
    w.size[a] = size[a];
    w.sigma[a] = sigma[a];
    TORCH_CHECK(size[a] >= kMinWin && size[a] <= kMaxWin && size[a] % 2 == 1,
                "fastiqa_C::ssim: win_size must be odd in [3, 31], got ", size[a]);
    TORCH_CHECK(sigma[a] > 0, "fastiqa_C::ssim: win_sigma must be > 0, got ", sigma[a]);
  }
  return w;
}

// The same window on both axes of an image (fastiqa_C::ssim_y).
inline SsimWindow square_window(int64_t size, double sigma) {
  SsimWindow w;
  w.axes = 2;
  w.size[0] = w.size[1] = size;
  w.sigma[0] = w.sigma[1] = sigma;
  return w;
}

// x and y, window and padding; returns nothing, the geometry is each backend's.
inline void check_ssim_inputs(const at::Tensor& x, const at::Tensor& y, const SsimWindow& win, int64_t padding) {
  using namespace fastiqa::ssim;
  TORCH_CHECK((x.dim() == 4 || x.dim() == 5) && x.sizes() == y.sizes(),
              "fastiqa_C::ssim: x and y must be (N, C, H, W) images or (N, C, D, H, W) volumes of one shape");
  TORCH_CHECK(x.scalar_type() == y.scalar_type(), "fastiqa_C::ssim: x and y must share a dtype");
  TORCH_CHECK(y.device() == x.device(), "fastiqa_C::ssim: x and y must be on one device");
  TORCH_CHECK(win.axes == x.dim() - 2, "fastiqa_C::ssim: the window has ", win.axes, " axes, the inputs ",
              x.dim() - 2, " spatial axes");
  TORCH_CHECK(padding == kValid || padding == kSameZero || padding == kSameReflect,
              "fastiqa_C::ssim: unknown padding ", padding);
  for (int a = 0; a < win.axes; ++a)
    TORCH_CHECK(x.size(2 + a) >= win.size[a], "fastiqa_C::ssim: images must hold one window");
}

inline void check_ssim_window(int64_t win, double sigma) {
  using namespace fastiqa::ssim;
  TORCH_CHECK(win >= kMinWin && win <= kMaxWin && win % 2 == 1, "fastiqa_C::ssim: win_size must be odd in [3, 31]");
  TORCH_CHECK(sigma > 0, "fastiqa_C::ssim: win_sigma must be > 0");
}

// Returns whether the weights are the components' (N, C, 6) (else (N, C, 3)).
inline bool check_ssim_weights(const at::Tensor& w, const at::Tensor& x) {
  const bool comp = w.dim() == 3 && w.size(2) == fastiqa::ssim::kNumComponentStats;
  TORCH_CHECK(w.scalar_type() == acc_dtype(x) && w.is_contiguous() && w.device() == x.device() &&
                  w.numel() == x.size(0) * x.size(1) *
                                   (comp ? fastiqa::ssim::kNumComponentStats : fastiqa::ssim::kNumWeights),
              "fastiqa_C::ssim: weights must be a contiguous (N, C, 3) or (N, C, 6) accumulator-dtype tensor on the "
              "device");
  return comp;
}

// out: the map's spatial sizes ((Ho, Wo) or (Do, Ho, Wo)); comp: the components' (4, N, C, *out)
// map weights (S, l, c, s)
inline void check_ssim_dmap(const std::optional<at::Tensor>& dmap, const at::Tensor& x,
                            std::initializer_list<int64_t> out, bool comp = false) {
  if (!dmap.has_value()) return;
  const int64_t k = comp ? 1 : 0;
  bool ok = dmap->dim() == x.dim() + k && dmap->dim() == 2 + k + static_cast<int64_t>(out.size()) &&
            (!comp || dmap->size(0) == fastiqa::ssim::kNumComponentMaps) && dmap->size(k) == x.size(0) &&
            dmap->size(k + 1) == x.size(1) && dmap->scalar_type() == x.scalar_type() && dmap->device() == x.device();
  int64_t d = 2 + k;
  for (int64_t o : out) ok = ok && dmap->dim() > d && dmap->size(d++) == o;
  TORCH_CHECK(ok, "fastiqa_C::ssim_bwd: dmap must be an (N, C, *output size) tensor of the input dtype ((4, N, C, "
                  "*output size) with the components)");
}

}  // namespace host
}  // namespace fastiqa
