// Schemas of the compiled kernels (namespace fastiqa_C). The CPU kernels register
// their implementations in csrc/cpu/*.cpp, the CUDA ones in csrc/cuda/*_host.cpp.
// The user-facing ops (namespace fastiqa, with autograd and backend choice) are
// defined in Python, fastiqa/ops/, and call these.
#include <Python.h>
#include <torch/library.h>

TORCH_LIBRARY(fastiqa_C, m) {
  // pixel family: see csrc/common/pixel_math.h for kind / reduction / weight_mode codes.
  m.def(
      "pixel_fwd(Tensor pred, Tensor target, Tensor? weight, int weight_mode, int channels, "
      "int inner, int kind, float c, int reduction, float norm_scale, bool need_grad) "
      "-> (Tensor, Tensor, Tensor)");
  m.def(
      "pixel_bwd(Tensor grad, Tensor grad_out, Tensor gscale, bool need_pred, bool need_target) "
      "-> (Tensor, Tensor)");
  // ssim family: see csrc/common/ssim_math.h for padding codes, weights and plane statistics.
  // planes: (N, C, 3) means of S, cs, |x - y| per plane (accumulator dtype); map: the SSIM
  // map when want_map; gx, gy: gradients of sum over planes of weights . (mean S, mean cs,
  // mean |x-y|) when weights are given, else empty.
  m.def(
      "ssim_fwd(Tensor x, Tensor y, int win_size, float win_sigma, float c1, float c2, int padding, "
      "bool want_map, bool want_l1, Tensor? weights, bool need_gx, bool need_gy) "
      "-> (Tensor, Tensor, Tensor, Tensor)");
  // gradients of sum over planes of weights . (mean S, mean cs, mean |x-y|) + sum(dmap * S map)
  m.def(
      "ssim_bwd(Tensor x, Tensor y, int win_size, float win_sigma, float c1, float c2, int padding, "
      "Tensor weights, Tensor? dmap, bool need_gx, bool need_gy) -> (Tensor, Tensor)");
  // drops the CPU output buffers kept for reuse (csrc/cpu/buffer_pool.h)
  m.def("release_cpu_buffers() -> ()");
  // psnr family: per-image MSE / MAE with fused Y channel, crop and quantisation
  // (see csrc/common/psnr_math.h; kind 0 = MSE, 1 = MAE).
  m.def(
      "psnr_fwd(Tensor x, Tensor y, int kind, int crop, bool y_channel, bool quantize, "
      "float data_range, bool need_grad) -> (Tensor, Tensor)");
  m.def("psnr_bwd(Tensor grad, Tensor grad_out, bool need_x, bool need_y) -> (Tensor, Tensor)");
  // the evaluation's Y planes: (N, 3, H, W) RGB samples (uint8, uint16, float32, float64, any
  // strides) / divisor -> (N, 1, H - 2 crop, W - 2 crop) float64 BT.601 Y in data_range units
  // (CPU only: csrc/cpu/y_plane_impl.h)
  m.def("y_plane(Tensor img, float divisor, float data_range, int crop) -> Tensor");
  // the same Y of a decoded pair (one dtype, one shape; divisors per image), no plane written:
  // y_mse: (N,) mean of (Y(x) - Y(y))^2 over the cropped pixels (csrc/cpu/y_plane_impl.h);
  // ssim_y: (ssim, mse), (N,) each: mean SSIM with a valid win_size window, and bitwise
  // y_mse's MSE from the same pass (csrc/cpu/ssim_impl.h). CPU only.
  m.def("y_mse(Tensor x, Tensor y, float div_x, float div_y, float data_range, int crop) -> Tensor");
  m.def(
      "ssim_y(Tensor x, Tensor y, float div_x, float div_y, float data_range, int crop, int win_size, "
      "float win_sigma, float c1, float c2) -> (Tensor, Tensor)");
  // gram family: see csrc/common/gram_math.h (criterion codes, formulas).
  m.def("gram_fwd(Tensor feat, float scale) -> Tensor");
  m.def("gram_apply(Tensor q, Tensor feat, float alpha) -> Tensor");
  m.def(
      "style_fwd(Tensor x, Tensor? y, Tensor? target_gram, float scale, int criterion, "
      "bool need_grad) -> (Tensor, Tensor)");
  m.def(
      "style_bwd(Tensor x, Tensor y, Tensor p, Tensor grad_out, float scale, bool need_x, "
      "bool need_y) -> (Tensor, Tensor)");
}

// An importable (empty) Python module: importing fastiqa._C loads this library
// and with it the registrations above.
PyMODINIT_FUNC PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
  return PyModule_Create(&module_def);
}
