// BT.601 Y of one row of decoded RGB samples, the one definition shared by the
// evaluation's kernels (y_plane_impl.h: Y planes and the Y MSE; ssim_impl.h: SSIM of
// the Y channel), so that they all see bitwise the same Y:
//
//   Y = 16 r / 255 + sum_c (w_c / 255) (t_c / div),  w = (65.481, 128.553, 24.966)
//
// (csrc/common/psnr_math.h; off = 16 r / 255). The samples are divided by div before
// they are weighted, so an 8-bit file (div 255) and its 16-bit copy (div 65535, samples
// 257 v) give bitwise the same Y; with DIV false (div == 1) no division is made, and
// 8-bit samples take the exact integer form (luma_px). Included inside the ISA variant's
// namespace (like simd.h); the including file provides <cstdint> and <type_traits>.
#pragma once

// The sample types of the Y-channel kernels (host::check_y_plane admits the same four):
// FN runs with scalar_t = uint8_t, uint16_t, float or double.
#define FASTIQA_DISPATCH_SAMPLES(TYPE, NAME, FN)                                    \
  AT_DISPATCH_SWITCH(TYPE, NAME, AT_DISPATCH_CASE(at::kByte, FN) AT_DISPATCH_CASE(at::kUInt16, FN) \
                                     AT_DISPATCH_CASE(at::kFloat, FN) AT_DISPATCH_CASE(at::kDouble, FN))

// BT.601 weights x 1000 as integers (65481, 128553, 24966): exact, see luma_px.
constexpr int32_t kYR1000 = static_cast<int32_t>(::fastiqa::psnr::kYR * 1000 + 0.5);
constexpr int32_t kYG1000 = static_cast<int32_t>(::fastiqa::psnr::kYG * 1000 + 0.5);
constexpr int32_t kYB1000 = static_cast<int32_t>(::fastiqa::psnr::kYB * 1000 + 0.5);
static_assert(kYR1000 == 65481 && kYG1000 == 128553 && kYB1000 == 24966, "BT.601 weights with 3 decimals");

// Y of one pixel's samples r, g, b.
template <typename T, bool DIV>
FASTIQA_INLINE double luma_px(T r, T g, T b, double div, double off) {
  if constexpr (std::is_same_v<T, uint8_t> && !DIV) {
    // 8-bit samples on 0..255: 255000 (Y - off) = 65481 R + 128553 G + 24966 B exactly, in
    // int32 (< 2^26): one conversion instead of three (1.5x faster on avx2)
    const int32_t s = kYR1000 * int32_t(r) + kYG1000 * int32_t(g) + kYB1000 * int32_t(b);
    return static_cast<double>(s) * (1.0 / 255000.0) + off;
  } else {
    constexpr double wr = ::fastiqa::psnr::kYR / 255.0, wg = ::fastiqa::psnr::kYG / 255.0,
                     wb = ::fastiqa::psnr::kYB / 255.0;
    double vr = static_cast<double>(r), vg = static_cast<double>(g), vb = static_cast<double>(b);
    if (DIV) vr /= div, vg /= div, vb /= div;
    return (wr * vr + wg * vg + wb * vb) + off;
  }
}

// One output row: n pixels whose channel c sample is p[c * sc + j * sw].
template <typename T, bool DIV>
FASTIQA_INLINE void luma_row(const T* __restrict__ p, int64_t sc, int64_t sw, int64_t n, double div, double off,
                             double* __restrict__ out) {
  if (sw == 1) {
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) out[j] = luma_px<T, DIV>(p[j], p[sc + j], p[2 * sc + j], div, off);
  } else if (sw == 3 && sc == 1) {  // packed RGB (a decoder's channels-last pixels): a constant
                                    // stride the compiler can vectorise with shuffles
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) out[j] = luma_px<T, DIV>(p[3 * j], p[3 * j + 1], p[3 * j + 2], div, off);
  } else {
    for (int64_t j = 0; j < n; ++j) out[j] = luma_px<T, DIV>(p[j * sw], p[sc + j * sw], p[2 * sc + j * sw], div, off);
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
