// CPU kernels of the evaluation's Y-channel statistics of decoded RGB pairs, straight
// from the file's integer samples (uint8 / uint16) or float ones, the Y of each pixel
// by luma_row (luma_row.h: the formula, and why 8-bit and 16-bit copies agree bitwise):
//   y_plane  the cropped Y plane in float64, one pass (no 3-channel float copy, no
//            cropped copy);
//   y_mse    per-image mean of (Y(x) - Y(y))^2 over the cropped pixels, no plane at all:
//            each row's two Y rows live in a scratch row; lane sums per row (add_sq_diffs),
//            rows in order: bitwise what ssim_y returns beside the SSIM.
// Included by psnr_impl.h inside the ISA variant's namespace.
#pragma once

#include "luma_row.h"

namespace y_plane_impl {
namespace {

using namespace fastiqa::psnr;

template <typename T>
void y_rows(const at::Tensor& img, double* out, int64_t N, int64_t Ho, int64_t Wo, int64_t sn, int64_t sc,
            int64_t sh, int64_t sw, int64_t crop, double div, double off) {
  const T* base = img.data_ptr<T>() + crop * (sh + sw);
  const int64_t grain = std::max<int64_t>(1, (1 << 16) / std::max<int64_t>(1, Wo));
  at::parallel_for(0, N * Ho, grain, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const T* p = base + (r / Ho) * sn + (r % Ho) * sh;
      if (div == 1.0)
        luma_row<T, false>(p, sc, sw, Wo, div, off, out + r * Wo);
      else
        luma_row<T, true>(p, sc, sw, Wo, div, off, out + r * Wo);
    }
  });
}

template <typename T>
void y_mse_rows(const at::Tensor& x, const at::Tensor& y, double* out, int64_t N, int64_t Ho, int64_t Wo,
                int64_t crop, double div_x, double div_y, double off) {
  const T* bx = x.data_ptr<T>() + crop * (x.stride(2) + x.stride(3));
  const T* by = y.data_ptr<T>() + crop * (y.stride(2) + y.stride(3));
  std::vector<double> row_sums(N * Ho);
  const int64_t grain = std::max<int64_t>(1, (1 << 15) / std::max<int64_t>(1, Wo));
  at::parallel_for(0, N * Ho, grain, [&](int64_t b, int64_t e) {
    std::vector<double> yx(Wo), yy(Wo);
    for (int64_t r = b; r < e; ++r) {
      const int64_t n = r / Ho, i = r % Ho;
      luma_row_any<T>(bx + n * x.stride(0) + i * x.stride(2), x.stride(1), x.stride(3), Wo, div_x, off, yx.data());
      luma_row_any<T>(by + n * y.stride(0) + i * y.stride(2), y.stride(1), y.stride(3), Wo, div_y, off, yy.data());
      double lanes[kLanes] = {};
      add_sq_diffs(yx.data(), yy.data(), Wo, lanes);
      row_sums[r] = sum_lanes(lanes);
    }
  });
  for (int64_t n = 0; n < N; ++n) {
    double s = 0;
    for (int64_t i = 0; i < Ho; ++i) s += row_sums[n * Ho + i];
    out[n] = s / static_cast<double>(Ho * Wo);
  }
}

at::Tensor y_mse(const at::Tensor& x, const at::Tensor& y, double div_x, double div_y, double data_range,
                 int64_t crop) {
  fastiqa::host::check_y_pair(x, y, div_x, div_y, data_range, crop);
  const int64_t N = x.size(0), Ho = x.size(2) - 2 * crop, Wo = x.size(3) - 2 * crop;
  at::Tensor out = at::empty({N}, x.options().dtype(at::kDouble));
  if (N == 0) return out;
  const double off = kYOffset * data_range / 255.0;
  double* o = out.data_ptr<double>();
  FASTIQA_DISPATCH_SAMPLES(x.scalar_type(), "fastiqa_C::y_mse",
                           [&] { y_mse_rows<scalar_t>(x, y, o, N, Ho, Wo, crop, div_x, div_y, off); });
  return out;
}

at::Tensor y_plane(const at::Tensor& img, double divisor, double data_range, int64_t crop) {
  fastiqa::host::check_y_plane(img, divisor, data_range, crop);
  const int64_t N = img.size(0), H = img.size(2), W = img.size(3);
  const int64_t Ho = H - 2 * crop, Wo = W - 2 * crop;
  // pooled: the evaluation drops each pair's planes before the next pair's are made
  at::Tensor out = pooled_empty({N, 1, Ho, Wo}, at::kDouble);
  if (out.numel() == 0) return out;
  const int64_t sn = img.stride(0), sc = img.stride(1), sh = img.stride(2), sw = img.stride(3);
  const double off = kYOffset * data_range / 255.0;
  double* o = out.data_ptr<double>();
  FASTIQA_DISPATCH_SAMPLES(img.scalar_type(), "fastiqa_C::y_plane",
                           [&] { y_rows<scalar_t>(img, o, N, Ho, Wo, sn, sc, sh, sw, crop, divisor, off); });
  return out;
}

}  // namespace
}  // namespace y_plane_impl
