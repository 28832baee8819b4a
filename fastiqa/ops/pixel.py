"""Pixel-loss family (L1, MSE, Charbonnier): the registered ops and backend choice.

fastiqa::pixel_fwd(pred, target, weight, ...) -> (out, gscale, grad)
    out     the loss map (reduction none, input dtype) or the reduced loss
            (0-dim, float32 / float64 accumulator dtype: a float16 sum cannot overflow)
    grad    computed in the same pass when an input requires grad (else empty):
            d(out)/d(pred) for none / sum / mean; for weighted_mean, whose divisor is
            known only after the pass, d(sum of w*l)/d(pred)
    gscale  what backward multiplies grad_out by: 1 / divisor for weighted_mean, else 1
fastiqa::pixel_bwd(grad, grad_out, gscale, ...) -> (grad_pred, grad_target)
    one pass: grad_pred = grad * grad_out * gscale, grad_target = -grad_pred

Backward on the CPU in eager mode hands the stored gradient over untouched when
grad_out * gscale == 1 (loss.backward() on a sum/mean loss): no pass, no
allocation. That is safe: with retain_graph=True autograd still holds the saved
buffer and accumulates a copy; without it the buffer is no longer saved.

Both are torch.library custom ops with fake kernels and an autograd formula, so
they run under torch.compile(fullgraph=True), gradcheck and opcheck.
"""
from typing import Optional, Tuple

import torch
from torch import Tensor
from torch.utils._python_dispatch import _get_current_dispatch_mode

from .._codes import LossKind, Reduction, WeightMode, code
from ..backends import reference
from ..conventions import acc_dtype
from . import _dispatch
from ._layout import same_dense_layout

KERNEL = "pixel_fwd"  # the compiled op whose presence makes the cpu/cuda backends usable


def _impl(backend: str):
    if backend == "reference":
        return reference.pixel_fwd, reference.pixel_bwd
    if backend in ("cpu", "cuda"):
        return torch.ops.fastiqa_C.pixel_fwd, torch.ops.fastiqa_C.pixel_bwd
    from ..backends.triton import pixel as triton_pixel  # lazy: triton is optional

    return triton_pixel.pixel_fwd, triton_pixel.pixel_bwd


def _fwd_impl(pred, target, weight, weight_mode, channels, inner, kind, c, reduction, norm_scale,
              need_grad, backend):
    if pred.numel() == 0:
        backend = "reference"
    fwd = _impl(backend)[0]
    return fwd(pred, target, weight, weight_mode, channels, inner, kind, c, reduction, norm_scale, need_grad)


def _bwd_impl(grad, grad_out, gscale, need_pred, need_target, backend):
    if grad.numel() == 0:
        backend = "reference"
    return _impl(backend)[1](grad, grad_out.to(gscale.dtype), gscale, need_pred, need_target)


@torch.library.custom_op("fastiqa::pixel_fwd", mutates_args=())
def pixel_fwd(pred: Tensor, target: Tensor, weight: Optional[Tensor], weight_mode: int,
              channels: int, inner: int, kind: int, c: float, reduction: int,
              norm_scale: float, need_grad: bool, backend: str) -> Tuple[Tensor, Tensor, Tensor]:
    return _fwd_impl(pred, target, weight, weight_mode, channels, inner, kind, c, reduction,
                     norm_scale, need_grad, backend)


@pixel_fwd.register_fake
def _pixel_fwd_fake(pred, target, weight, weight_mode, channels, inner, kind, c, reduction,
                    norm_scale, need_grad, backend):
    acc = acc_dtype(pred.dtype)
    out = torch.empty_like(pred) if reduction == Reduction.NONE else pred.new_empty((), dtype=acc)
    grad = torch.empty_like(pred) if need_grad else pred.new_empty((0,))
    return out, pred.new_empty((), dtype=acc), grad


@torch.library.custom_op("fastiqa::pixel_bwd", mutates_args=())
def pixel_bwd(grad: Tensor, grad_out: Tensor, gscale: Tensor, need_pred: bool, need_target: bool,
              backend: str) -> Tuple[Tensor, Tensor]:
    return _bwd_impl(grad, grad_out, gscale, need_pred, need_target, backend)


@pixel_bwd.register_fake
def _pixel_bwd_fake(grad, grad_out, gscale, need_pred, need_target, backend):
    gp = torch.empty_like(grad) if need_pred else grad.new_empty((0,))
    gt = torch.empty_like(grad) if need_target else grad.new_empty((0,))
    return gp, gt


def _setup_context(ctx, inputs, output):
    reduction, need_grad, backend = inputs[8], inputs[10], inputs[11]
    _, gscale, grad = output
    ctx.reduction, ctx.need_grad, ctx.backend = reduction, need_grad, backend
    ctx.mark_non_differentiable(gscale, grad)
    ctx.set_materialize_grads(False)
    ctx.save_for_backward(grad, gscale)


def _eager(*tensors) -> bool:
    """Plain tensors outside any tracing (torch.compile, make_fx, fake tensors)."""
    return (not torch.compiler.is_compiling() and _get_current_dispatch_mode() is None
            and all(type(t) is torch.Tensor for t in tensors))


def _eager_cpu(*tensors) -> bool:
    return _eager(*tensors) and all(t.device.type == "cpu" for t in tensors)


def _backward(ctx, d_out, d_gscale, d_grad):
    none = (None,) * 10
    need_pred, need_target = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
    if d_out is None:
        return None, None, *none
    if not ctx.need_grad:
        raise RuntimeError("fastiqa pixel loss: forward ran without need_grad; cannot differentiate")
    grad, gscale = ctx.saved_tensors
    if ctx.reduction == 0:  # loss map: the incoming gradient is a map too
        gp = d_out * grad
        return (gp if need_pred else None), (-gp if need_target else None), *none
    bwd = _bwd_impl if _eager(grad, d_out) else pixel_bwd
    if need_pred and _eager_cpu(grad, d_out) and float(d_out) * float(gscale) == 1.0:
        gt = bwd(grad, d_out, gscale, False, True, ctx.backend)[1] if need_target else None
        return grad, gt, *none
    gp, gt = bwd(grad, d_out, gscale, need_pred, need_target, ctx.backend)
    return (gp if need_pred else None), (gt if need_target else None), *none


pixel_fwd.register_autograd(_backward, setup_context=_setup_context)


class _EagerPixelLoss(torch.autograd.Function):
    """Eager mode: the same kernels and backward as the registered op, without the
    custom-op Python wrapper (tens of microseconds a call). Traced code (compile,
    make_fx, opcheck) always goes through fastiqa::pixel_fwd."""

    @staticmethod
    def forward(ctx, *args):
        out = _fwd_impl(*args)
        _setup_context(ctx, args, out)
        return out

    @staticmethod
    def backward(ctx, d_out, d_gscale, d_grad):
        return _backward(ctx, d_out, d_gscale, d_grad)


def _prepare_weight(weight: Tensor, pred: Tensor):
    """Lays the weight against pred's flat memory: (mode, weight, channels, inner)."""
    if weight.shape == pred.shape:
        (_, weight) = same_dense_layout(pred, weight)
        return WeightMode.FULL, weight, 1, 1
    if pred.dim() >= 3 and weight.dim() == pred.dim() and weight.shape[1] == 1 \
            and weight.shape[0] == pred.shape[0] and weight.shape[2:] == pred.shape[2:]:
        channels = pred.shape[1]
        inner = 1
        for s in pred.shape[2:]:
            inner *= s
        weight = weight.contiguous()
        if pred.is_contiguous():
            return WeightMode.PLANE, weight, channels, max(inner, 1)
        return WeightMode.PIXEL, weight, channels, max(inner, 1)  # pred is channels-last dense
    # any other broadcastable shape: materialise once in pred's layout
    full = torch.empty_like(pred, dtype=weight.dtype).copy_(weight.expand_as(pred))
    return WeightMode.FULL, full, 1, 1


def pixel_loss(pred: Tensor, target: Tensor, weight: Optional[Tensor], kind: str, c: float,
               reduction: str, norm_scale: float = 1.0, backend: Optional[str] = None) -> Tensor:
    """Validated arguments in, loss out (see fastiqa.functional for the user API)."""
    if weight is not None and weight.requires_grad:
        # the fused op treats the weight as a constant; a learned weight map takes the
        # plain PyTorch path so that it still receives its gradient
        acc = acc_dtype(pred.dtype)
        d = pred.to(acc) - target.to(acc)
        loss = d.abs() if kind == "l1" else d * d if kind == "mse" else torch.sqrt(d * d + c)
        if reduction == "weighted_mean":
            w = weight.to(acc)
            return (loss * w).sum() / (w.expand_as(loss).sum() * norm_scale)
        out = reference.reduce_weighted(loss, weight.to(acc), reduction)
        return out.to(pred.dtype) if reduction == "none" else out
    if weight is None and reduction == "weighted_mean":
        reduction = "mean"  # all weights 1
    name = _dispatch.choose(pred.device, KERNEL, backend)
    pred, target = same_dense_layout(pred, target)
    mode, channels, inner = WeightMode.NO_WEIGHT, 1, 1
    if weight is not None:
        mode, weight, channels, inner = _prepare_weight(weight, pred)
    need_grad = torch.is_grad_enabled() and (pred.requires_grad or target.requires_grad)
    args = (pred, target, weight, mode, channels, inner, code(LossKind, kind, "kind"), float(c),
            code(Reduction, reduction, "reduction"), float(norm_scale), need_grad, name)
    if _eager(pred, target):
        return _EagerPixelLoss.apply(*args)[0]
    return pixel_fwd(*args)[0]
