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
allocation. The buffer lives on ctx, not among the saved tensors: the first
backward takes it, a later one of a retained graph recomputes it from the saved
inputs (fastiqa/ops/_autograd.py). float16 mean losses store the sum's gradient
and apply 1/numel with grad_out in float32 (no underflow). create_graph=True
differentiates the reference formulas (double backward).

Both are torch.library custom ops with fake kernels and an autograd formula, so
they run under torch.compile(fullgraph=True), gradcheck and opcheck.
"""
from typing import Optional, Tuple

import torch
from torch import Tensor

from .._codes import LossKind, Reduction, WeightMode, code
from ..backends import reference
from ..conventions import acc_dtype
from . import _autograd, _dispatch
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
    if need_grad and reduction == Reduction.MEAN and pred.dtype == torch.float16:
        # d(mean)/d(pred) = l'/numel underflows float16 for large tensors: store the sum's
        # gradient l' and let backward apply grad_out / numel in float32 (gscale)
        out, gscale, grad = fwd(pred, target, weight, weight_mode, channels, inner, kind, c, Reduction.SUM,
                                norm_scale, need_grad)
        return out / pred.numel(), gscale / pred.numel(), grad
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
    pred, target, weight = inputs[:3]
    reduction, need_grad, backend = inputs[8], inputs[10], inputs[11]
    _, gscale, grad = output
    ctx.args = inputs[3:]
    ctx.reduction, ctx.need_grad, ctx.backend = reduction, need_grad, backend
    ctx.mark_non_differentiable(gscale, grad)
    ctx.set_materialize_grads(False)
    if _autograd.is_eager(ctx):  # the buffer goes to the first backward (op contract, _autograd.py)
        _autograd.keep(ctx, grad, gscale)
        ctx.save_for_backward(pred, target, weight)
    else:
        ctx.save_for_backward(pred, target, weight, grad, gscale)


def _reference_out(pred, target, weight, *args):
    """The op's loss from the reference formulas (differentiable torch ops)."""
    return (reference.pixel_fwd(pred, target, weight, *args[:-2], False)[0],)


def _stored_grad(ctx):
    """(grad, gscale, owned): the forward's buffer (owned: this backward may hand it over),
    or for a retained graph's later backward a recomputed one."""
    if not _autograd.is_eager(ctx):
        return (*ctx.saved_tensors[3:], False)
    kept = _autograd.take(ctx)
    if kept is not None:
        return (*kept, True)
    pred, target, weight = ctx.saved_tensors
    _, gscale, grad = _fwd_impl(pred, target, weight, *ctx.args[:-2], True, ctx.backend)
    return grad, gscale, True


def _backward(ctx, d_out, d_gscale, d_grad):
    none = (None,) * 10
    need_pred, need_target = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
    if d_out is None:
        return None, None, *none
    if not ctx.need_grad:
        raise RuntimeError("fastiqa pixel loss: forward ran without need_grad; cannot differentiate")
    if _autograd.create_graph():
        pred, target, weight = ctx.saved_tensors[:3]
        gp, gt = _autograd.reference_grads(lambda p, t: _reference_out(p, t, weight, *ctx.args), (pred, target),
                                           (need_pred, need_target), (d_out,))
        return gp, gt, *none
    grad, gscale, owned = _stored_grad(ctx)
    if ctx.reduction == Reduction.NONE:  # loss map: the incoming gradient is a map too
        gp = d_out * grad
        return (gp if need_pred else None), (-gp if need_target else None), *none
    eager = _autograd.eager(grad, d_out)
    bwd = _bwd_impl if eager else pixel_bwd
    if owned and need_pred and _autograd.handover_allowed(d_out, grad) and float(d_out) * float(gscale) == 1.0:
        gt = bwd(grad, d_out, gscale, False, True, ctx.backend)[1] if need_target else None
        return grad, gt, *none  # handed over: ctx no longer holds it
    gp, gt = bwd(grad, d_out, gscale, need_pred, need_target, ctx.backend)
    return (gp if need_pred else None), (gt if need_target else None), *none


pixel_fwd.register_autograd(_backward, setup_context=_setup_context)

# Eager mode: the same kernels and backward as the registered op, without the custom-op
# wrapper. Traced code (compile, make_fx, opcheck) always goes through fastiqa::pixel_fwd.
_EagerPixelLoss = _autograd.eager_function("_EagerPixelLoss", _fwd_impl, _setup_context, _backward)


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
    if _autograd.eager(pred, target, weight):
        return _EagerPixelLoss.apply(*args)[0]
    return pixel_fwd(*args)[0]
