"""PSNR family (per-image MSE / MAE, the statistic behind PSNR): fake kernels and autograd
of fastiqa_C::psnr_fwd / psnr_bwd (schemas: fastiqa/_kernel_schemas.py).

psnr_fwd(pred, target, kind, crop, y_channel, quantize, data_range, need_grad) -> (stat, grad)
    stat    (N,) per-image mean of d^2 (kind MSE) or |d| (kind L1: MAE) in the input's
            units, in the accumulator dtype (float32; float64 for float64) after the
            optional fused steps: quantize (round to the data_range's 8-bit grid),
            y_channel (BT.601 luma of RGB), crop (pixels dropped from every border).
            No converted or cropped copy is made.
    grad    d(stat_n)/d pred in pred's shape and layout, written in the same pass when
            need_grad and quantize is off (else empty)
psnr_bwd(grad, grad_out, need_grad_pred, need_grad_target) -> (grad_pred, grad_target)
    grad_pred[n] = grad[n] * grad_out[n], grad_target = -grad_pred, one pass.

The quantised statistic is piecewise constant: its gradient is zero (as autograd of
torch.round gives), returned without a kernel pass. PSNR itself (10 log10(R^2 / mse)) is
a few scalar torch ops on the (N,) result (fastiqa/functional/_psnr.py).
"""
import torch

from ..backends import reference
from ..conventions import acc_dtype
from . import _autograd, _registry


def _fwd_fake(pred, target, kind, crop, y_channel, quantize, data_range, need_grad):
    stat = pred.new_empty((pred.shape[0],), dtype=acc_dtype(pred.dtype))
    grad = torch.empty_like(pred) if need_grad else pred.new_empty((0,))
    return stat, grad


def _bwd_fake(grad, grad_out, need_grad_pred, need_grad_target):
    gp = torch.empty_like(grad) if need_grad_pred else grad.new_empty((0,))
    gt = torch.empty_like(grad) if need_grad_target else grad.new_empty((0,))
    return gp, gt


def _setup_context(ctx, inputs, output):
    pred, target = inputs[:2]
    _, grad = output
    ctx.args = inputs[2:7]
    ctx.quantize, ctx.need_grad = inputs[5], inputs[7]
    ctx.mark_non_differentiable(grad)
    ctx.set_materialize_grads(False)
    # grad is only read by backward (psnr_bwd writes new tensors): saving it is safe
    ctx.save_for_backward(pred, target, grad)


def _backward(ctx, d_stat, d_grad):
    none = (None,) * 6
    need_p, need_t = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
    if d_stat is None or not (need_p or need_t):
        return None, None, *none
    pred, target, grad = ctx.saved_tensors
    if ctx.quantize:  # piecewise constant: zero gradient, no pass
        return (torch.zeros_like(pred) if need_p else None), (torch.zeros_like(target) if need_t else None), *none
    if not ctx.need_grad:
        raise RuntimeError("fastiqa psnr: forward ran without need_grad; cannot differentiate")
    if _autograd.create_graph():
        ref = lambda a, b: (reference.psnr_fwd(a, b, *ctx.args, False)[0],)  # noqa: E731
        gp, gt = _autograd.reference_grads(ref, (pred, target), (need_p, need_t), (d_stat,))
        return gp, gt, *none
    bwd = getattr(torch.ops.fastiqa_C.psnr_bwd, ctx.overload)
    gp, gt = bwd(grad, d_stat.to(acc_dtype(grad.dtype)).contiguous(), need_p, need_t)
    return (gp if need_p else None), (gt if need_t else None), *none


_registry.register("psnr_fwd", _fwd_fake, reference.psnr_fwd, "fastiqa.backends.triton.psnr",
                   backward=_backward, setup_context=_setup_context)
_registry.register("psnr_bwd", _bwd_fake, reference.psnr_bwd, "fastiqa.backends.triton.psnr")
