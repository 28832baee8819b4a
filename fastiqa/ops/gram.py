"""Gram family (Gram matrix, style loss): fake kernels and autograd of fastiqa_C::gram_fwd /
gram_apply / style_fwd / style_bwd (schemas: fastiqa/_kernel_schemas.py).

Features travel as (N, C, K) views (K = H*W) of dense NCHW or channels_last tensors; no
copy is made for either layout (`features`). s is the Gram scale: 1/(C*K) when
normalised, 1 for the raw F F^T (piq's convention).

gram_fwd(feat, scale) -> G                 (N, C, C), float32 (float64 for float64)
gram_apply(q, feat, alpha) -> alpha q F    the Gram's backward with q = dG + dG^T
style_fwd(pred, target, target_gram, scale, criterion, need_grad) -> (loss, P)
    loss = criterion(s x x^T, s y y^T) (or against target_gram), 0-dim accumulator dtype;
    P = dloss/dD for D = G_x - G_y, (N, C, C), when need_grad (else empty)
style_bwd(pred, target, P, grad_out, scale, need_grad_pred, need_grad_target)
    grad_pred = s g (P + P^T) x, grad_target = -s g (P + P^T) y, one op for both
The formulas and the one-GEMM trick for G_x - G_y are in csrc/common/gram_math.h.
"""
import torch
from torch import Tensor

from ..backends import reference
from ..conventions import acc_dtype
from . import _autograd, _registry
from ._layout import dense_format

TRITON = "fastiqa.backends.triton.gram"


def features(feat: Tensor) -> Tensor:
    """(N, C, H, W) -> dense (N, C, H*W) view (copy only for layouts that are not dense)."""
    if dense_format(feat) not in (torch.contiguous_format, torch.channels_last):
        feat = feat.contiguous()
    return feat.flatten(2)


# ---------------------------------------------------------------------------- Gram


def _gram_fake(feat, scale):
    n, c, _ = feat.shape
    return feat.new_empty((n, c, c), dtype=acc_dtype(feat.dtype))


def _apply_fake(q, feat, alpha):
    return torch.empty_like(feat)


def _gram_setup(ctx, inputs, output):
    feat, scale = inputs
    ctx.scale = scale
    ctx.save_for_backward(feat)


def _gram_backward(ctx, d_g):
    (feat,) = ctx.saved_tensors
    if d_g is None or not ctx.needs_input_grad[0]:
        return None, None
    if _autograd.create_graph():
        (g,) = _autograd.reference_grads(lambda f: (reference.gram_fwd(f, ctx.scale),), (feat,), (True,), (d_g,))
        return g, None
    d_g = d_g.to(acc_dtype(feat.dtype))
    q = (d_g + d_g.transpose(1, 2)).contiguous()
    return getattr(torch.ops.fastiqa_C.gram_apply, ctx.overload)(q, feat, ctx.scale), None


_registry.register("gram_fwd", _gram_fake, reference.gram_fwd, TRITON, backward=_gram_backward,
                   setup_context=_gram_setup)
_registry.register("gram_apply", _apply_fake, reference.gram_apply, TRITON)


# ---------------------------------------------------------------------------- style loss


def _style_fake(pred, target, target_gram, scale, criterion, need_grad):
    n, c, _ = pred.shape
    acc = acc_dtype(pred.dtype)
    p = pred.new_empty((n, c, c), dtype=acc) if need_grad else pred.new_empty((0,), dtype=acc)
    return pred.new_empty((), dtype=acc), p


def _style_bwd_fake(pred, target, p, grad_out, scale, need_grad_pred, need_grad_target):
    gp = torch.empty_like(pred) if need_grad_pred else pred.new_empty((0,))
    gt = torch.empty_like(target) if need_grad_target else pred.new_empty((0,))
    return gp, gt


def _style_setup(ctx, inputs, output):
    pred, target, target_gram, scale, criterion, need_grad = inputs
    _, p = output
    ctx.scale, ctx.need_grad, ctx.criterion = scale, need_grad, criterion
    ctx.has_target = target is not None
    ctx.target_batch = None if target_gram is None else target_gram.shape[0]
    ctx.mark_non_differentiable(p)
    ctx.set_materialize_grads(False)
    ctx.save_for_backward(pred, target if target is not None else pred, p, target_gram)


def _style_backward(ctx, d_loss, d_p):
    none = (None,) * 3
    need_p = ctx.needs_input_grad[0]
    need_t = ctx.has_target and ctx.needs_input_grad[1]
    need_g = ctx.target_batch is not None and ctx.needs_input_grad[2]
    if d_loss is None:
        return None, None, None, *none
    if not ctx.need_grad:
        raise RuntimeError("fastiqa style loss: forward ran without need_grad; cannot differentiate")
    pred, target, p, target_gram = ctx.saved_tensors
    if _autograd.create_graph():
        ref = lambda a, b, t: (reference.style_fwd(a, b if ctx.has_target else None, t, ctx.scale,  # noqa: E731
                                                   ctx.criterion, False)[0],)
        gp, gt, gg = _autograd.reference_grads(ref, (pred, target, target_gram), (need_p, need_t, need_g), (d_loss,))
        return gp, gt, gg, *none
    gp = gt = gg = None
    if need_p or need_t:
        bwd = getattr(torch.ops.fastiqa_C.style_bwd, ctx.overload)
        gp, gt = bwd(pred, target, p, d_loss.to(p.dtype), ctx.scale, need_p, need_t)
    if need_g:  # D = G_x - T: dloss/dT = -P (summed over a broadcast batch)
        gg = -d_loss.to(p.dtype) * p
        if ctx.target_batch == 1:
            gg = gg.sum(0, keepdim=True)
    return (gp if need_p else None), (gt if need_t else None), gg, *none


_registry.register("style_fwd", _style_fake, reference.style_fwd, TRITON, backward=_style_backward,
                   setup_context=_style_setup)
_registry.register("style_bwd", _style_bwd_fake, reference.style_bwd, TRITON)
