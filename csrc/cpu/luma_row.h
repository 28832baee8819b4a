// BT.601 Y of one row of decoded RGB samples, the one definition shared by the
// evaluation's kernels (y_plane_impl.h: Y planes and the Y MSE; ssim_impl.h: SSIM of
// the Y channel), so that they all see bitwise the same Y:
//
//   Y = 16 r / 255 + sum_c (w_c / 255) (t_c / div),  w = (65.481, 128.553, 24.966)
//
// (csrc/common/psnr_math.h; off = 16 r / 255). The samples are divided by div before
// they are weighted, so an 8-bit file (div 255) and its 16-bit copy (div 65535, samples
// 257 v) give bitwise the same Y; with DIV false (div == 1) no division is made.
// Included inside the ISA variant's namespace (like simd.h).
#pragma once

// One output row: n pixels whose channel c sample is p[c * sc + j * sw].
template <typename T, bool DIV>
FASTIQA_INLINE void luma_row(const T* __restrict__ p, int64_t sc, int64_t sw, int64_t n, double div, double off,
                            double* __restrict__ out) {
  constexpr double wr = ::fastiqa::psnr::kYR / 255.0, wg = ::fastiqa::psnr::kYG / 255.0, wb = ::fastiqa::psnr::kYB / 255.0;
  const T *r = p, *g = p + sc, *b = p + 2 * sc;
  if (sw == 1) {
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) {
      double vr = static_cast<double>(r[j]), vg = static_cast<double>(g[j]), vb = static_cast<double>(b[j]);
      if (DIV) vr /= div, vg /= div, vb /= div;
      out[j] = (wr * vr + wg * vg + wb * vb) + off;
    }
  } else if (sw == 3 && sc == 1) {  // packed RGB (a decoder's channels-last pixels): a constant
                                    // stride the compiler can vectorise with shuffles
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) {
      double vr = static_cast<double>(p[3 * j]), vg = static_cast<double>(p[3 * j + 1]),
             vb = static_cast<double>(p[3 * j + 2]);
      if (DIV) vr /= div, vg /= div, vb /= div;
      out[j] = (wr * vr + wg * vg + wb * vb) + off;
    }
  } else {
    for (int64_t j = 0; j < n; ++j) {
      double vr = static_cast<double>(r[j * sw]), vg = static_cast<double>(g[j * sw]),
             vb = static_cast<double>(b[j * sw]);
      if (DIV) vr /= div, vg /= div, vb /= div;
      out[j] = (wr * vr + wg * vg + wb * vb) + off;
    }
  }
}


// luma_row with the division chosen at run time.
template <typename T>
FASTIQA_INLINE void luma_row_any(const T* p, int64_t sc, int64_t sw, int64_t n, double div, double off,
                                 double* out) {
  if (div == 1.0)
    luma_row<T, false>(p, sc, sw, n, div, off, out);
  else
    luma_row<T, true>(p, sc, sw, n, div, off, out);
}

// The Y MSE's partial sums: lanes[j % kLanes] += (a[t] - b[t])^2 for the columns j = j0 + t,
// t < n, in increasing j (j0 a multiple of kLanes). A row's sum is then the sum of its lanes
// in lane order, whether the row came in one call (y_mse) or in column strips (ssim_y):
// bitwise the same MSE from both kernels.
FASTIQA_INLINE void add_sq_diffs(const double* __restrict__ a, const double* __restrict__ b, int64_t n,
                                 double* __restrict__ lanes) {
  int64_t t = 0;
  for (; t + kLanes <= n; t += kLanes) {
#pragma omp simd
    for (int l = 0; l < kLanes; ++l) {
      const double d = a[t + l] - b[t + l];
      lanes[l] += d * d;
    }
  }
  for (int l = 0; t < n; ++t, ++l) {
    const double d = a[t] - b[t];
    lanes[l] += d * d;
  }
}

FASTIQA_INLINE double sum_lanes(const double* lanes) {
  double s = 0;
  for (int l = 0; l < kLanes; ++l) s += lanes[l];
  return s;
}
