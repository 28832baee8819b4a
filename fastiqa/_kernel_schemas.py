"""The signature of every compiled kernel op (namespace fastiqa_C), written once.

fastiqa/_ext.py defines these schemas with torch.library after loading the compiled
library, whose C++ files only register implementations (csrc/cpu/register.cpp,
csrc/cuda/<family>_host.cpp): the dispatcher then checks each C++ kernel's argument
types against the schema here and refuses a mismatch. tests/test_kernel_schemas.py
checks the argument names of the entry points against it too: the CPU table
(csrc/cpu/kernel_tables.h), the CUDA hosts and the reference and Triton backends.
Codes (kind, reduction, padding, ...) are those of csrc/common/codes.h.
"""

SCHEMAS = {
    # pixel family (csrc/common/pixel_math.h): the loss map or reduced loss, gscale, and
    # the gradient when need_grad; backward scales that gradient by grad_out * gscale
    "pixel_fwd": "(Tensor pred, Tensor target, Tensor? weight, int weight_mode, int channels, int inner, "
                 "int kind, float c, int reduction, float norm_scale, bool need_grad) -> (Tensor, Tensor, Tensor)",
    "pixel_bwd": "(Tensor grad, Tensor grad_out, Tensor gscale, bool need_pred, bool need_target) "
                 "-> (Tensor, Tensor)",
    # ssim family (csrc/common/ssim_math.h): planes (N, C, 3) = per-plane means of S, cs and
    # |x - y| (accumulator dtype); the SSIM map when want_map; gradients of
    # sum over planes of weights . planes when weights (N, C, 3) are given
    "ssim_fwd": "(Tensor x, Tensor y, int win_size, float win_sigma, float c1, float c2, int padding, "
                "bool want_map, bool want_l1, Tensor? weights, bool need_gx, bool need_gy) "
                "-> (Tensor, Tensor, Tensor, Tensor)",
    # gradients of sum over planes of weights . planes + sum(dmap * S map), from x and y
    "ssim_bwd": "(Tensor x, Tensor y, int win_size, float win_sigma, float c1, float c2, int padding, "
                "Tensor weights, Tensor? dmap, bool need_gx, bool need_gy) -> (Tensor, Tensor)",
    # psnr family (csrc/common/psnr_math.h): per-image MSE (kind 0) / MAE (kind 1) with
    # fused Y channel, crop and quantisation, and its gradient when need_grad
    "psnr_fwd": "(Tensor x, Tensor y, int kind, int crop, bool y_channel, bool quantize, float data_range, "
                "bool need_grad) -> (Tensor, Tensor)",
    "psnr_bwd": "(Tensor grad, Tensor grad_out, bool need_x, bool need_y) -> (Tensor, Tensor)",
    # the evaluation's Y planes: (N, 3, H, W) RGB samples (uint8, uint16, float32, float64,
    # any strides) / divisor -> (N, 1, H - 2 crop, W - 2 crop) float64 BT.601 Y in
    # data_range units (CPU only: csrc/cpu/y_plane_impl.h)
    "y_plane": "(Tensor img, float divisor, float data_range, int crop) -> Tensor",
    # the same Y of a decoded pair, no plane written: y_mse the (N,) mean of (Y(x) - Y(y))^2
    # over the cropped pixels; ssim_y (ssim, mse), (N,) each, with a valid win_size window,
    # the MSE bitwise y_mse's (csrc/cpu/ssim_impl.h). CPU only.
    "y_mse": "(Tensor x, Tensor y, float div_x, float div_y, float data_range, int crop) -> Tensor",
    "ssim_y": "(Tensor x, Tensor y, float div_x, float div_y, float data_range, int crop, int win_size, "
              "float win_sigma, float c1, float c2) -> (Tensor, Tensor)",
    # gram family (csrc/common/gram_math.h: criterion codes, formulas)
    "gram_fwd": "(Tensor feat, float scale) -> Tensor",
    "gram_apply": "(Tensor q, Tensor feat, float alpha) -> Tensor",
    "style_fwd": "(Tensor x, Tensor? y, Tensor? target_gram, float scale, int criterion, bool need_grad) "
                 "-> (Tensor, Tensor)",
    "style_bwd": "(Tensor x, Tensor y, Tensor p, Tensor grad_out, float scale, bool need_x, bool need_y) "
                 "-> (Tensor, Tensor)",
    # drops the CPU output buffers kept for reuse (csrc/cpu/buffer_pool.h)
    "release_cpu_buffers": "() -> ()",
}


def argument_names(name: str) -> list:
    """The argument names of kernel op `name`, in order."""
    args = SCHEMAS[name].split(")")[0].lstrip("(")
    return [a.split()[-1] for a in args.split(",") if a.strip()]


def define(library) -> None:
    """Defines every schema in `library` (a torch.library.Library of namespace fastiqa_C)."""
    for name, signature in SCHEMAS.items():
        library.define(name + signature)
