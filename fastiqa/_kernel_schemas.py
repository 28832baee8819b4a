"""The signature of every fastiqa op (namespace fastiqa_C), written once.

The public functions (fastiqa.functional) call these ops; the dispatcher picks the kernel
by device key. fastiqa/_ext.py defines each schema with torch.library after loading the
compiled library, whose C++ files only register implementations (csrc/cpu/register.cpp,
csrc/cuda/<family>_host.cpp): the dispatcher checks each C++ kernel's argument types
against the schema here and refuses a mismatch. For every op in PYTHON_BACKENDS it also
defines the overloads <op>.reference and <op>.triton with the same schema: the Python
backends, which `backend=` / FASTIQA_BACKEND select (fastiqa/ops/_registry.py registers
them, the fake kernels and the autograd formulas on every overload).
tests/test_kernel_schemas.py checks the argument names of every entry point against the
schema: the CPU kernels (csrc/cpu/register.cpp, csrc/cpu/kernel_tables.h), the CUDA hosts,
the reference and Triton backends and the fake kernels.
Codes (kind, reduction, padding, ...) are those of csrc/common/codes.h.
"""

SCHEMAS = {
    # pixel family (csrc/common/pixel_math.h): the loss map or reduced loss, gscale, and
    # the gradient when need_grad; backward scales that gradient by grad_out * gscale
    "pixel_fwd": "(Tensor pred, Tensor target, Tensor? weight, int weight_mode, int channels, int inner, "
                 "int kind, float c, int reduction, float norm_scale, bool need_grad) -> (Tensor, Tensor, Tensor)",
    "pixel_bwd": "(Tensor grad, Tensor grad_out, Tensor gscale, bool need_grad_pred, bool need_grad_target) "
                 "-> (Tensor, Tensor)",
    # ssim family (csrc/common/ssim_math.h, csrc/host/ssim_op.h): (out, cs, gscale, grad_pred,
    # grad_target): out the SSIM / 1 - SSIM / L1+SSIM loss (output) reduced by reduction (the
    # map for reduction map), cs (N, C) the per-plane mean contrast-structure term (MS-SSIM),
    # the gradients of out times 1 / gscale when need_grad_* (scalar reductions only);
    # output kComponents: out = S, l, c, s stacked on a leading axis of 4 (gradients by ssim_bwd)
    # win_size / win_sigma: the window per spatial axis, (H, W) (odd sizes, sigma > 0; inf = uniform)
    "ssim_fwd": "(Tensor pred, Tensor target, int[] win_size, float[] win_sigma, float c1, float c2, int padding, "
                "int reduction, int output, float alpha, bool need_grad_pred, bool need_grad_target) "
                "-> (Tensor, Tensor, Tensor, Tensor, Tensor)",
    # gradients of grad_out . out + grad_cs . cs, recomputed from pred and target
    "ssim_bwd": "(Tensor pred, Tensor target, int[] win_size, float[] win_sigma, float c1, float c2, int padding, "
                "int reduction, int output, float alpha, Tensor? grad_out, Tensor? grad_cs, bool need_grad_pred, "
                "bool need_grad_target) -> (Tensor, Tensor)",
    # masked SSIM (issue 19 item 3; contract: fastiqa/backends/reference/_ssim_masked.py): mask of pred's
    # shape (a (N, 1, ...) mask expanded by stride 0), weights m >= 0 in the accumulator dtype; per plane
    # (N, C, 4) sums (m_c S, m_c, m |pred - target|, m), m_c = m at the window centres, S from the
    # normalised convolutions G*(m v) / G*m; the map (S, 0 where G*m = 0) when want_map, else empty
    "ssim_masked_fwd": "(Tensor pred, Tensor target, Tensor mask, int[] win_size, float[] win_sigma, float c1, "
                       "float c2, int padding, bool want_map) -> (Tensor, Tensor)",
    # gradients of sum(d_planes * planes) + sum(d_map * map) (mask: none, it is not differentiable)
    "ssim_masked_bwd": "(Tensor pred, Tensor target, Tensor mask, int[] win_size, float[] win_sigma, float c1, "
                       "float c2, int padding, Tensor d_planes, Tensor? d_map, bool need_grad_pred, "
                       "bool need_grad_target) -> (Tensor, Tensor)",
    # masked SSIM's components (issue 19 items 3 + 4): per plane (N, C, 5) sums (m_c S, m_c l, m_c c, m_c s, m_c)
    # of the normalised statistics; the maps (4, N, C, *out): S, l, c, s (0 where G*m = 0) when want_map, else
    # empty. Gradients: autograd of the reference formulas (fastiqa/ops/ssim_masked.py)
    "ssim_masked_components_fwd": "(Tensor pred, Tensor target, Tensor mask, int[] win_size, float[] win_sigma, "
                                  "float c1, float c2, int padding, bool want_map) -> (Tensor, Tensor)",
    # psnr family (csrc/common/psnr_math.h): per-image MSE (kind 0) / MAE (kind 1) with
    # fused Y channel, crop and quantisation, and its gradient when need_grad
    "psnr_fwd": "(Tensor pred, Tensor target, int kind, int crop, bool y_channel, bool quantize, float data_range, "
                "bool need_grad) -> (Tensor, Tensor)",
    "psnr_bwd": "(Tensor grad, Tensor grad_out, bool need_grad_pred, bool need_grad_target) -> (Tensor, Tensor)",
    # the evaluation's Y planes: (N, 3, H, W) RGB samples (uint8, uint16, float32, float64,
    # any strides) / divisor -> (N, 1, H - 2 crop, W - 2 crop) float64 BT.601 Y in
    # data_range units (CPU only: csrc/cpu/y_plane_impl.h)
    "y_plane": "(Tensor img, float divisor, float data_range, int crop) -> Tensor",
    # the same Y of a decoded pair, no plane written: y_mse the (N,) mean of (Y(x) - Y(y))^2
    # over the cropped pixels; ssim_y (ssim, mse), (N,) each, with a valid win_size window,
    # the MSE bitwise y_mse's (csrc/cpu/ssim_impl.h). CPU only.
    "y_mse": "(Tensor pred, Tensor target, float div_pred, float div_target, float data_range, int crop) "
             "-> Tensor",
    "ssim_y": "(Tensor pred, Tensor target, float div_pred, float div_target, float data_range, int crop, "
              "int win_size, float win_sigma, float c1, float c2) -> (Tensor, Tensor)",
    # gram family (csrc/common/gram_math.h: criterion codes, formulas)
    "gram_fwd": "(Tensor feat, float scale) -> Tensor",
    "gram_apply": "(Tensor q, Tensor feat, float alpha) -> Tensor",
    "style_fwd": "(Tensor pred, Tensor? target, Tensor? target_gram, float scale, int criterion, bool need_grad) "
                 "-> (Tensor, Tensor)",
    "style_bwd": "(Tensor pred, Tensor target, Tensor p, Tensor grad_out, float scale, bool need_grad_pred, "
                 "bool need_grad_target) "
                 "-> (Tensor, Tensor)",
    # perceptual family (LPIPS / DISTS distance heads, one backbone layer; contract:
    # fastiqa/backends/reference/_perceptual.py): (N,) value; gradients recomputed in backward
    "lpips_head_fwd": "(Tensor pred, Tensor target, Tensor weight) -> Tensor",
    "lpips_head_bwd": "(Tensor pred, Tensor target, Tensor weight, Tensor grad_out, bool need_grad_pred, "
                      "bool need_grad_target) -> (Tensor, Tensor)",
    "dists_head_fwd": "(Tensor pred, Tensor target, Tensor weight) -> Tensor",
    "dists_head_bwd": "(Tensor pred, Tensor target, Tensor weight, Tensor grad_out, bool need_grad_pred, "
                      "bool need_grad_target) -> (Tensor, Tensor)",
    # drops the CPU output buffers kept for reuse (csrc/cpu/buffer_pool.h)
    "release_cpu_buffers": "() -> ()",
}


# The ops that the Python backends implement too (fastiqa/backends/reference, .../triton):
# each gets the overloads <op>.reference and <op>.triton.
PYTHON_BACKENDS = ("reference", "triton")
WITH_PYTHON_BACKENDS = ("pixel_fwd", "pixel_bwd", "ssim_fwd", "ssim_bwd", "ssim_masked_fwd", "ssim_masked_bwd",
                        "ssim_masked_components_fwd", "psnr_fwd", "psnr_bwd",
                        "gram_fwd", "gram_apply", "style_fwd", "style_bwd", "lpips_head_fwd", "lpips_head_bwd",
                        "dists_head_fwd", "dists_head_bwd")
# The ops with no compiled CPU kernel yet (fastiqa/ops/_registry.py runs the reference on CPU
# tensors and Triton on CUDA tensors for them): none today. Ops without a CUDA kernel need no
# entry: _registry gives the CUDA key Triton (else the reference) wherever no host registers one.
PYTHON_ONLY = ()


def argument_names(name: str) -> list:
    """The argument names of kernel op `name`, in order."""
    args = SCHEMAS[name].split(")")[0].lstrip("(")
    return [a.split()[-1] for a in args.split(",") if a.strip()]


def define(library) -> None:
    """Defines every schema in `library` (a torch.library.Library of namespace fastiqa_C)."""
    for name, signature in SCHEMAS.items():
        # no defaults, no keyword-only arguments: the autograd kernels pass arguments by position
        assert "=" not in signature and "*" not in signature, name
        library.define(name + signature)
        if name in WITH_PYTHON_BACKENDS:
            for backend in PYTHON_BACKENDS:
                library.define(f"{name}.{backend}{signature}")
