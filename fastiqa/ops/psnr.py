"""PSNR family (per-image MSE / MAE, the statistic behind PSNR): registered ops
and backend choice.

fastiqa::psnr_fwd(x, y, kind, crop, y_channel, quantize, data_range, need_grad)
    -> (stat, grad)
    stat    (N,) per-image mean of d^2 (kind 0, MSE) or |d| (kind 1, MAE) in the
            input's units, in the accumulator dtype (float32; float64 for float64)
            after the optional fused steps: quantize (round to the data_range's
            8-bit grid), y_channel (BT.601 luma of RGB), crop (pixels dropped from
            every border). No converted or cropped copy is made.
    grad    d(stat_n)/dx in x's shape and layout, written in the same pass when an
            input requires grad and quantize is off (else empty)
fastiqa::psnr_bwd(grad, grad_out, need_x, need_y) -> (grad_x, grad_y)
    grad_x[n] = grad[n] * grad_out[n], grad_y = -grad_x, one pass.

The quantised statistic is piecewise constant: its gradient is zero (as autograd
of torch.round gives), returned without a kernel pass.
PSNR itself (10 log10(R^2 / mse)) is a few scalar torch ops on the (N,) result,
so autograd, torch.compile and autocast see one custom op per call.
"""
import functools
from typing import Tuple

import torch
from torch import Tensor

from .._codes import LossKind
from ..backends import reference
from ..conventions import acc_dtype
from . import _autograd, _dispatch
from ._layout import same_dense_layout

KINDS = {"mse": LossKind.MSE, "mae": LossKind.L1}  # per-image MSE / MAE (MAE is the L1 code)
KERNEL = "psnr_fwd"  # the compiled op whose presence makes the cpu/cuda backends usable


def _impl(backend: str):
    if backend == "reference":
        return reference.psnr_fwd, reference.psnr_bwd
    if backend in ("cpu", "cuda"):
        return torch.ops.fastiqa_C.psnr_fwd, torch.ops.fastiqa_C.psnr_bwd
    from ..backends.triton import psnr as triton_psnr  # lazy: triton is optional

    return triton_psnr.psnr_fwd, triton_psnr.psnr_bwd


def _fwd_impl(x, y, kind, crop, y_channel, quantize, data_range, need_grad, backend):
    if x.numel() == 0:
        backend = "reference"
    return _impl(backend)[0](x, y, kind, crop, y_channel, quantize, data_range, need_grad)


@torch.library.custom_op("fastiqa::psnr_fwd", mutates_args=())
def psnr_fwd(x: Tensor, y: Tensor, kind: int, crop: int, y_channel: bool, quantize: bool,
             data_range: float, need_grad: bool, backend: str) -> Tuple[Tensor, Tensor]:
    return _fwd_impl(x, y, kind, crop, y_channel, quantize, data_range, need_grad, backend)


@psnr_fwd.register_fake
def _psnr_fwd_fake(x, y, kind, crop, y_channel, quantize, data_range, need_grad, backend):
    stat = x.new_empty((x.shape[0],), dtype=acc_dtype(x.dtype))
    grad = torch.empty_like(x) if need_grad else x.new_empty((0,))
    return stat, grad


def _bwd_impl(grad, grad_out, need_x, need_y, backend):
    if grad.numel() == 0:
        backend = "reference"
    return _impl(backend)[1](grad, grad_out.to(acc_dtype(grad.dtype)).contiguous(), need_x, need_y)


@torch.library.custom_op("fastiqa::psnr_bwd", mutates_args=())
def psnr_bwd(grad: Tensor, grad_out: Tensor, need_x: bool, need_y: bool, backend: str) -> Tuple[Tensor, Tensor]:
    return _bwd_impl(grad, grad_out, need_x, need_y, backend)


@psnr_bwd.register_fake
def _psnr_bwd_fake(grad, grad_out, need_x, need_y, backend):
    gx = torch.empty_like(grad) if need_x else grad.new_empty((0,))
    gy = torch.empty_like(grad) if need_y else grad.new_empty((0,))
    return gx, gy


def _setup_context(ctx, inputs, output):
    x, y = inputs[0], inputs[1]
    quantize, need_grad, backend = inputs[5], inputs[7], inputs[8]
    _, grad = output
    ctx.args = inputs[2:]
    ctx.quantize, ctx.need_grad, ctx.backend = quantize, need_grad, backend
    ctx.mark_non_differentiable(grad)
    ctx.set_materialize_grads(False)
    # grad is only read by backward (psnr_bwd writes new tensors): saving it is safe
    ctx.save_for_backward(x, y, grad)


def _reference_stat(x, y, *args):
    """The op's statistic from the reference formulas (differentiable torch ops)."""
    return (reference.psnr_fwd(x, y, *args[:-2], False)[0],)


def _backward(ctx, d_stat, d_grad):
    none = (None,) * 7
    need_x, need_y = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
    if d_stat is None or not (need_x or need_y):
        return None, None, *none
    x, y, grad = ctx.saved_tensors
    if ctx.quantize:  # piecewise constant: zero gradient, no pass
        return (torch.zeros_like(x) if need_x else None), (torch.zeros_like(y) if need_y else None), *none
    if not ctx.need_grad:
        raise RuntimeError("fastiqa psnr: forward ran without need_grad; cannot differentiate")
    if _autograd.create_graph():
        gx, gy = _autograd.reference_grads(lambda a, b: _reference_stat(a, b, *ctx.args), (x, y),
                                           (need_x, need_y), (d_stat,))
        return gx, gy, *none
    bwd = functools.partial(_bwd_impl if _autograd.eager(grad, d_stat) else psnr_bwd, backend=ctx.backend)
    gx, gy = bwd(grad, d_stat, need_x, need_y)
    return (gx if need_x else None), (gy if need_y else None), *none


psnr_fwd.register_autograd(_backward, setup_context=_setup_context)
_EagerPsnr = _autograd.eager_function("_EagerPsnr", _fwd_impl, _setup_context, _backward)


def per_image_stat(x: Tensor, y: Tensor, kind: str, data_range: float, y_channel: bool,
                   crop: int, quantize: bool, backend=None) -> Tensor:
    """Validated (N, C, H, W) arguments in, (N,) per-image MSE or MAE out."""
    name = _dispatch.choose(x.device, KERNEL, backend)
    x, y = same_dense_layout(x, y)
    need_grad = torch.is_grad_enabled() and (x.requires_grad or y.requires_grad) and not quantize
    if need_grad and x.dtype == torch.float16:
        # the stored d(stat_n)/dx = l'/count underflows float16 for large images: differentiate
        # float32 copies (autograd rounds the gradient to float16 once, after grad_out)
        x, y = x.float(), y.float()
    args = (x, y, int(KINDS[kind]), int(crop), bool(y_channel), bool(quantize), float(data_range), need_grad, name)
    stat, _ = (_EagerPsnr.apply if _autograd.eager(x, y) else psnr_fwd)(*args)
    return stat

