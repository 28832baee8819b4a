"""SSIM family (SSIM, 1 - SSIM, L1+SSIM, MS-SSIM's cs): fake kernels and autograd of
fastiqa_C::ssim_fwd / ssim_bwd (schemas: fastiqa/_kernel_schemas.py; contract:
csrc/host/ssim_op.h and its Python copy fastiqa/backends/ssim_compose.py).

ssim_fwd(pred, target, ..., reduction, output, alpha, need_grad_pred, need_grad_target)
    -> (out, cs, gscale, grad_pred, grad_target)
For the scalar reductions, when an input requires grad, the forward computes the gradient
of out in the same pass (times 1 / gscale: float16 gradients are stored times a power of
two); backward then only scales it by grad_out * gscale (per image or per channel for
none / per_channel), or hands it over untouched on the CPU when that factor is 1 (the
first backward only, fastiqa/ops/_autograd.py). Otherwise (map reduction, a gradient
through cs: MS-SSIM, the components: output COMPONENTS, out (4, ...) = S, l, c, s) backward
recomputes from pred and target with ssim_bwd: nothing image-sized is saved but the inputs
themselves.
"""
import torch

from .._codes import Padding, Reduction, SsimOutput
from ..backends import reference
from ..backends.ssim_compose import reduce_planes
from ..conventions import acc_dtype
from . import _autograd, _registry

MEAN, NONE, PER_CHANNEL, MAP = Reduction.MEAN, Reduction.NONE, Reduction.PER_CHANNEL, Reduction.MAP


def _output_size(x, win_size, padding: int):
    """The map's spatial size: win_size holds one window size per spatial axis."""
    sides = x.shape[2:]
    return tuple(s - w + 1 for s, w in zip(sides, win_size)) if padding == Padding.VALID else tuple(sides)


def _fwd_fake(pred, target, win_size, win_sigma, c1, c2, padding, reduction, output, alpha, need_grad_pred,
              need_grad_target):
    acc = acc_dtype(pred.dtype)
    n, c = pred.shape[:2]
    comp = output == SsimOutput.COMPONENTS  # S, l, c, s stacked on a leading axis of 4
    if reduction == MAP:
        out = torch.empty((4 * n if comp else n, c, *_output_size(pred, win_size, padding)), dtype=pred.dtype,
                          device=pred.device, memory_format=reference.map_memory_format(pred))
        out = out.view(4, n, *out.shape[1:]) if comp else out
    else:
        shape = {MEAN: (), NONE: (n,), PER_CHANNEL: (n, c)}[reduction]
        out = pred.new_empty(((4,) if comp else ()) + shape, dtype=acc)
    grad = reduction != MAP and not comp
    gp = torch.empty_like(pred) if need_grad_pred and grad else pred.new_empty((0,))
    gt = torch.empty_like(pred) if need_grad_target and grad else pred.new_empty((0,))
    return out, pred.new_empty((n, c), dtype=acc), pred.new_empty((), dtype=acc), gp, gt


def _bwd_fake(pred, target, win_size, win_sigma, c1, c2, padding, reduction, output, alpha, grad_out, grad_cs,
              need_grad_pred, need_grad_target):
    return (torch.empty_like(pred) if need_grad_pred else pred.new_empty((0,)),
            torch.empty_like(pred) if need_grad_target else pred.new_empty((0,)))


def _setup_context(ctx, inputs, outputs):
    pred, target = inputs[:2]
    _, _, gscale, gp, gt = outputs
    ctx.args = inputs[2:10]  # win_size, win_sigma, c1, c2, padding, reduction, output, alpha
    ctx.mark_non_differentiable(gscale, gp, gt)
    ctx.set_materialize_grads(False)
    _autograd.save(ctx, (pred, target, gscale), (gp, gt))


def _reference_outputs(pred, target, win_size, win_sigma, c1, c2, padding, reduction, output, alpha):
    """(out, cs) of the op from the reference formulas (differentiable torch ops)."""
    planes, s_map, _, _ = reference.planes_fwd(pred, target, win_size, win_sigma, c1, c2, padding, reduction == MAP,
                                               output == SsimOutput.L1_SSIM, output == SsimOutput.COMPONENTS, None,
                                               False, False)
    out = s_map if reduction == MAP else reduce_planes(planes, output, alpha, reduction)
    return out, planes[..., 1]


def _scale(grad, factor, reduction: int, inplace: bool):
    """grad * factor (0-dim, (N,) or (N, C)) in float32, rounded once to grad's dtype."""
    spatial = (1,) * (grad.dim() - 2)  # images or volumes
    if reduction == NONE:
        factor = factor.view(-1, 1, *spatial)
    elif reduction == PER_CHANNEL:
        factor = factor.view(*factor.shape, *spatial)
    return _autograd.scaled(grad, factor, inplace)


def _backward(ctx, d_out, d_cs, d_gscale, d_gp, d_gt):
    none = (None,) * 10
    need_p, need_t = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
    if (d_out is None and d_cs is None) or not (need_p or need_t):
        return None, None, *none
    pred, target, gscale = ctx.saved_tensors[:3]
    reduction = ctx.args[5]
    if _autograd.create_graph():
        ref = lambda a, b: _reference_outputs(a, b, *ctx.args)  # noqa: E731
        gp, gt = _autograd.reference_grads(ref, (pred, target), (need_p, need_t), (d_out, d_cs))
        return gp, gt, *none
    grads, owned = _autograd.stored(ctx)
    gp, gt = grads if grads is not None else (pred.new_empty((0,)),) * 2
    have = (gp.numel() > 0 or not need_p) and (gt.numel() > 0 or not need_t)
    if have and d_cs is None and reduction != MAP:  # the forward computed d out / d pred / gscale
        if owned and reduction == MEAN and _autograd.handover_allowed(d_out, pred) \
                and float(d_out) * float(gscale) == 1.0:
            return (gp if need_p else None), (gt if need_t else None), *none  # handed over
        factor = d_out.to(gscale.dtype) * gscale
        return ((_scale(gp, factor, reduction, owned) if need_p else None),
                (_scale(gt, factor, reduction, owned) if need_t else None), *none)
    bwd = getattr(torch.ops.fastiqa_C.ssim_bwd, ctx.overload)
    rp, rt = bwd(pred, target, *ctx.args, d_out, d_cs, need_p, need_t)
    return (rp if need_p else None), (rt if need_t else None), *none


_registry.register("ssim_fwd", _fwd_fake, reference.ssim_fwd, "fastiqa.backends.triton.ssim",
                   backward=_backward, setup_context=_setup_context)
_registry.register("ssim_bwd", _bwd_fake, reference.ssim_bwd, "fastiqa.backends.triton.ssim")
