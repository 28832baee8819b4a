// CPU kernel of fastiqa_C::y_plane: the cropped BT.601 Y plane of decoded RGB pixels,
// in float64, straight from the file's integer samples (uint8 / uint16) or from float
// ones, in one pass: no 3-channel float copy, no cropped copy.
//
//   Y = 16 r / 255 + sum_c (w_c / 255) (t_c / div),  w = (65.481, 128.553, 24.966)
//
// (csrc/common/psnr_math.h; r = data_range). The samples are divided by div before
// they are weighted, so an 8-bit file (div 255) and its 16-bit copy (div 65535,
// samples 257 v) give bitwise the same Y; with div == 1 no division is made.
// Included by psnr_impl.h inside the ISA variant's namespace.
#pragma once

namespace y_plane_impl {
namespace {

using namespace fastiqa::psnr;

// One output row: n pixels whose channel c sample is p[c * sc + j * sw].
template <typename T, bool DIV>
FASTIQA_INLINE void y_row(const T* __restrict__ p, int64_t sc, int64_t sw, int64_t n, double div, double off,
                          double* __restrict__ out) {
  constexpr double wr = kYR / 255.0, wg = kYG / 255.0, wb = kYB / 255.0;
  const T *r = p, *g = p + sc, *b = p + 2 * sc;
  if (sw == 1) {
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) {
      double vr = static_cast<double>(r[j]), vg = static_cast<double>(g[j]), vb = static_cast<double>(b[j]);
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

template <typename T>
void y_rows(const at::Tensor& img, double* out, int64_t N, int64_t Ho, int64_t Wo, int64_t sn, int64_t sc,
            int64_t sh, int64_t sw, int64_t crop, double div, double off) {
  const T* base = img.data_ptr<T>() + crop * (sh + sw);
  const int64_t grain = std::max<int64_t>(1, (1 << 16) / std::max<int64_t>(1, Wo));
  at::parallel_for(0, N * Ho, grain, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const T* p = base + (r / Ho) * sn + (r % Ho) * sh;
      if (div == 1.0)
        y_row<T, false>(p, sc, sw, Wo, div, off, out + r * Wo);
      else
        y_row<T, true>(p, sc, sw, Wo, div, off, out + r * Wo);
    }
  });
}

at::Tensor y_plane(const at::Tensor& img, double divisor, double data_range, int64_t crop) {
  fastiqa::host::check_y_plane(img, divisor, data_range, crop);
  const int64_t N = img.size(0), H = img.size(2), W = img.size(3);
  const int64_t Ho = H - 2 * crop, Wo = W - 2 * crop;
  at::Tensor out = at::empty({N, 1, Ho, Wo}, img.options().dtype(at::kDouble));
  if (out.numel() == 0) return out;
  const int64_t sn = img.stride(0), sc = img.stride(1), sh = img.stride(2), sw = img.stride(3);
  const double off = kYOffset * data_range / 255.0;
  double* o = out.data_ptr<double>();
  AT_DISPATCH_SWITCH(img.scalar_type(), "fastiqa_C::y_plane",
      AT_DISPATCH_CASE(at::kByte, [&] { y_rows<scalar_t>(img, o, N, Ho, Wo, sn, sc, sh, sw, crop, divisor, off); })
      AT_DISPATCH_CASE(at::kUInt16, [&] { y_rows<scalar_t>(img, o, N, Ho, Wo, sn, sc, sh, sw, crop, divisor, off); })
      AT_DISPATCH_CASE(at::kFloat, [&] { y_rows<scalar_t>(img, o, N, Ho, Wo, sn, sc, sh, sw, crop, divisor, off); })
      AT_DISPATCH_CASE(at::kDouble, [&] { y_rows<scalar_t>(img, o, N, Ho, Wo, sn, sc, sh, sw, crop, divisor, off); }));
  return out;
}

}  // namespace
}  // namespace y_plane_impl
