"""Gram family (Gram matrix, style loss): the registered ops and backend choice.

Features travel as (N, C, K) views (K = H*W) of dense NCHW or channels_last
tensors; no copy is made for either layout. s is the Gram scale: 1/(C*K) when
normalised, 1 for the raw F F^T (piq's convention).

fastiqa::gram_fwd(feat, scale) -> G             (N, C, C), float32 (float64 for float64)
fastiqa::gram_bwd(q, feat, alpha) -> alpha q F  the Gram's backward with q = dG + dG^T
fastiqa::style_fwd(x, y, target_gram, scale, criterion, need_grad) -> (loss, P)
    loss = criterion(s x x^T, s y y^T) (or against target_gram), 0-dim accumulator dtype;
    P = dloss/dD for D = G_x - G_y, (N, C, C), when need_grad (else empty)
fastiqa::style_bwd(x, y, P, grad_out, scale, need_x, need_y) -> (grad_x, grad_y)
    grad_x = s g (P + P^T) x, grad_y = -s g (P + P^T) y, one op for both

Registered with torch.library (custom op + fake kernel + autograd): they run under
torch.compile(fullgraph=True), gradcheck and opcheck. The formulas and the
one-GEMM trick for G_x - G_y are in csrc/common/gram_math.h.
"""
from typing import Optional, Tuple

import torch
from torch import Tensor

from .._codes import Criterion, code
from ..backends import reference
from ..conventions import acc_dtype
from . import _autograd, _dispatch
from ._layout import dense_format, same_dense_layout

KERNEL = "style_fwd"  # the compiled op whose presence makes the cpu/cuda backends usable


def _impl(backend: str):
    if backend == "reference":
        return reference
    if backend in ("cpu", "cuda"):
        return torch.ops.fastiqa_C
    from ..backends.triton import gram as triton_gram  # lazy: triton is optional

    return triton_gram


def _empty(t: Tensor) -> bool:
    return t.numel() == 0


def _exact(t: Tensor):
    """The Python backends (reference, Triton's torch glue) must not be autocast: a
    bmm under CPU/CUDA autocast would run in bfloat16/float16, not float32."""
    return torch.autocast(t.device.type, enabled=False)


# ---------------------------------------------------------------------------- Gram


def _gram_impl(feat, scale, backend):
    if _empty(feat):
        backend = "reference"
    with _exact(feat):
        return _impl(backend).gram_fwd(feat, scale)


@torch.library.custom_op("fastiqa::gram_fwd", mutates_args=())
def gram_fwd(feat: Tensor, scale: float, backend: str) -> Tensor:
    return _gram_impl(feat, scale, backend)


@gram_fwd.register_fake
def _gram_fwd_fake(feat, scale, backend):
    n, c, _ = feat.shape
    return feat.new_empty((n, c, c), dtype=acc_dtype(feat.dtype))


@torch.library.custom_op("fastiqa::gram_bwd", mutates_args=())
def gram_bwd(q: Tensor, feat: Tensor, alpha: float, backend: str) -> Tensor:
    if _empty(feat):
        backend = "reference"
    with _exact(feat):
        return _impl(backend).gram_apply(q, feat, alpha)


@gram_bwd.register_fake
def _gram_bwd_fake(q, feat, alpha, backend):
    return torch.empty_like(feat)


def _gram_setup(ctx, inputs, output):
    feat, scale, backend = inputs
    ctx.scale, ctx.backend = scale, backend
    ctx.save_for_backward(feat)


def _gram_backward(ctx, d_g):
    (feat,) = ctx.saved_tensors
    if d_g is None or not ctx.needs_input_grad[0]:
        return None, None, None
    if _autograd.create_graph():
        (g,) = _autograd.reference_grads(lambda f: (reference.gram_fwd(f, ctx.scale),), (feat,), (True,), (d_g,))
        return g, None, None
    d_g = d_g.to(acc_dtype(feat.dtype))
    q = (d_g + d_g.transpose(1, 2)).contiguous()
    return gram_bwd(q, feat, ctx.scale, ctx.backend), None, None


gram_fwd.register_autograd(_gram_backward, setup_context=_gram_setup)
_EagerGram = _autograd.eager_function("_EagerGram", _gram_impl, _gram_setup, _gram_backward)


# ---------------------------------------------------------------------------- style loss


def _style_impl(x, y, target_gram, scale, criterion, need_grad, backend):
    if _empty(x):
        backend = "reference"
    with _exact(x):
        return _impl(backend).style_fwd(x, y, target_gram, scale, criterion, need_grad)


@torch.library.custom_op("fastiqa::style_fwd", mutates_args=())
def style_fwd(x: Tensor, y: Optional[Tensor], target_gram: Optional[Tensor], scale: float,
              criterion: int, need_grad: bool, backend: str) -> Tuple[Tensor, Tensor]:
    return _style_impl(x, y, target_gram, scale, criterion, need_grad, backend)


@style_fwd.register_fake
def _style_fwd_fake(x, y, target_gram, scale, criterion, need_grad, backend):
    n, c, _ = x.shape
    acc = acc_dtype(x.dtype)
    p = x.new_empty((n, c, c), dtype=acc) if need_grad else x.new_empty((0,), dtype=acc)
    return x.new_empty((), dtype=acc), p


@torch.library.custom_op("fastiqa::style_bwd", mutates_args=())
def style_bwd(x: Tensor, y: Tensor, p: Tensor, grad_out: Tensor, scale: float, need_x: bool,
              need_y: bool, backend: str) -> Tuple[Tensor, Tensor]:
    if _empty(x):
        backend = "reference"
    with _exact(x):
        return _impl(backend).style_bwd(x, y, p, grad_out.to(p.dtype), scale, need_x, need_y)


@style_bwd.register_fake
def _style_bwd_fake(x, y, p, grad_out, scale, need_x, need_y, backend):
    gx = torch.empty_like(x) if need_x else x.new_empty((0,))
    gy = torch.empty_like(y) if need_y else x.new_empty((0,))
    return gx, gy


def _style_setup(ctx, inputs, output):
    x, y, target_gram, scale, _, need_grad, backend = inputs
    _, p = output
    ctx.scale, ctx.backend, ctx.need_grad, ctx.criterion = scale, backend, need_grad, inputs[4]
    ctx.has_y = y is not None
    ctx.target_batch = None if target_gram is None else target_gram.shape[0]
    ctx.mark_non_differentiable(p)
    ctx.set_materialize_grads(False)
    ctx.save_for_backward(x, y if y is not None else x, p, target_gram)


def _style_backward(ctx, d_loss, d_p):
    none = (None,) * 4
    need_x = ctx.needs_input_grad[0]
    need_y = ctx.has_y and ctx.needs_input_grad[1]
    need_t = ctx.target_batch is not None and ctx.needs_input_grad[2]
    if d_loss is None:
        return None, None, None, *none
    if not ctx.need_grad:
        raise RuntimeError("fastiqa style loss: forward ran without need_grad; cannot differentiate")
    x, y, p, target_gram = ctx.saved_tensors
    if _autograd.create_graph():
        ref = lambda a, b, t: (reference.style_fwd(a, b if ctx.has_y else None, t, ctx.scale, ctx.criterion,  # noqa: E731
                                                   False)[0],)
        gx, gy, gt = _autograd.reference_grads(ref, (x, y, target_gram), (need_x, need_y, need_t), (d_loss,))
        return gx, gy, gt, *none
    gx = gy = gt = None
    if need_x or need_y:
        gx, gy = style_bwd(x, y, p, d_loss, ctx.scale, need_x, need_y, ctx.backend)
    if need_t:  # D = G_x - T: dloss/dT = -P (summed over a broadcast batch)
        gt = -d_loss.to(p.dtype) * p
        if ctx.target_batch == 1:
            gt = gt.sum(0, keepdim=True)
    return (gx if need_x else None), (gy if need_y else None), gt, *none


style_fwd.register_autograd(_style_backward, setup_context=_style_setup)
_EagerStyle = _autograd.eager_function("_EagerStyle", _style_impl, _style_setup, _style_backward)


# ---------------------------------------------------------------------------- entry points


@_dispatch.constant_result
def _choose(device_type: str, backend: Optional[str]) -> str:
    # constant for a process (what was built, FASTIQA_BACKEND): torch.compile takes the
    # result as a constant instead of tracing the dispatcher queries behind it
    return _dispatch.choose(torch.device(device_type), KERNEL, backend)



def features(feat: Tensor) -> Tensor:
    """(N, C, H, W) -> dense (N, C, H*W) view (copy only for layouts that are not dense)."""
    if dense_format(feat) not in (torch.contiguous_format, torch.channels_last):
        feat = feat.contiguous()
    return feat.flatten(2)


def gram(feat: Tensor, scale: float, backend: Optional[str] = None) -> Tensor:
    """Validated (N, C, H, W) features in, (N, C, C) accumulator-dtype Gram out."""
    name = _choose(feat.device.type, backend)
    f3 = features(feat)
    return (_EagerGram.apply if _autograd.eager(f3) else gram_fwd)(f3, float(scale), name)


def style(x: Tensor, y: Optional[Tensor], target_gram: Optional[Tensor], scale: float,
          criterion: str, backend: Optional[str] = None) -> Tensor:
    """Validated arguments in, the 0-dim loss out (accumulator dtype)."""
    name = _choose(x.device.type, backend)
    if y is not None:
        x, y = same_dense_layout(x, y)
        if dense_format(x) not in (torch.contiguous_format, torch.channels_last):
            x, y = x.contiguous(), y.contiguous()
        x3, y3 = x.flatten(2), y.flatten(2)
        grads = x.requires_grad or y.requires_grad
    else:
        x3, y3 = features(x), None
        target_gram = target_gram.to(acc_dtype(x.dtype))
        if target_gram.dim() == 2:
            target_gram = target_gram.unsqueeze(0)
        target_gram = target_gram.contiguous()
        grads = x.requires_grad or target_gram.requires_grad
    need_grad = torch.is_grad_enabled() and grads
    args = (x3, y3, target_gram, float(scale), code(Criterion, criterion, "criterion"), need_grad, name)
    loss, _ = (_EagerStyle.apply if _autograd.eager(x3, y3, target_gram) else style_fwd)(*args)
    return loss


__all__ = ["gram", "style", "features", "KERNEL"]
