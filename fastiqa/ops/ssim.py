"""SSIM family (SSIM, MS-SSIM scales, L1+SSIM): the registered ops and backend choice.

Backend contract (fastiqa_C::ssim_fwd / ssim_bwd, backends/reference/_ssim.py, backends/triton/ssim.py):
    fwd(x, y, win_size, win_sigma, c1, c2, padding, want_map, want_l1, weights, need_gx, need_gy)
        -> planes (N, C, 3): per-plane means of S, cs and |x - y| (accumulator dtype),
           map (the SSIM map when want_map, else empty),
           gx, gy: when weights (N, C, 3) are given, the gradients of
           F = sum over planes of weights . planes (else empty)
    bwd(x, y, win_size, win_sigma, c1, c2, padding, weights, dmap, need_gx, need_gy)
        -> gx, gy of F + sum(dmap * S map); recomputes everything from x and y.

The user-facing op fastiqa::ssim_fwd(x, y, ..., reduction, kind, alpha, need_gx, need_gy)
returns (out, cs (N, C), gx, gy): out is the SSIM (kind "ssim"), the loss 1 - SSIM (kind
"ssim_loss", so that loss.backward() hands the forward's gradient over with no pass and no
buffer) or the L1+SSIM loss (1 - alpha) |x - y| + alpha (1 - SSIM) (kind "l1_ssim"), reduced
per `reduction`;
cs the per-plane mean contrast-structure term (MS-SSIM's intermediate scales).
For the scalar reductions, when an input requires grad, the forward computes the
gradient of out in the same pass (need_gx / need_gy); backward then only scales it
by grad_out (per image or per channel for none / per_channel), or hands it over
untouched on the CPU when grad_out is 1 (the first backward only: the buffers live on
ctx, fastiqa/ops/_autograd.py; float16 ones are stored times a power of two and
scaled in float32). Otherwise (map reduction, a gradient
through cs) backward recomputes from x and y: nothing image-sized is saved but
the inputs themselves.
"""
import functools
import math
from typing import Optional, Tuple

import torch
from torch import Tensor

from .._codes import Padding, Reduction, SsimOutput, code
from ..backends import reference
from ..conventions import acc_dtype
from . import _autograd, _dispatch

MEAN, NONE, PER_CHANNEL, MAP = Reduction.MEAN, Reduction.NONE, Reduction.PER_CHANNEL, Reduction.MAP
SSIM, L1_SSIM, SSIM_LOSS = SsimOutput.SSIM, SsimOutput.L1_SSIM, SsimOutput.SSIM_LOSS
KERNEL = "ssim_fwd"  # the compiled op whose presence makes the cpu/cuda backends usable


def _impl(backend: str):
    if backend == "reference":
        return reference.ssim_fwd, reference.ssim_bwd
    if backend in ("cpu", "cuda"):
        return torch.ops.fastiqa_C.ssim_fwd, torch.ops.fastiqa_C.ssim_bwd
    from ..backends.triton import ssim as triton_ssim  # lazy: triton is optional

    return triton_ssim.ssim_fwd, triton_ssim.ssim_bwd


def _output_size(x: Tensor, win_size: int, padding: int):
    h, w = x.shape[-2:]
    return (h - win_size + 1, w - win_size + 1) if padding == Padding.VALID else (h, w)


def _coefficients(kind: int, alpha: float):
    """(d value / d mean S, d value / d mean |x-y|) of one plane's value."""
    return {SSIM: (1.0, 0.0), SSIM_LOSS: (-1.0, 0.0)}.get(kind, (-alpha, 1.0 - alpha))


def _gamma(reduction: int, n: int, c: int) -> float:
    """d out / d (one plane's value) for the scalar reductions (per image for none)."""
    return 1.0 / (n * c) if reduction == MEAN else 1.0 / c if reduction == NONE else 1.0


def _plane_weights(x: Tensor, kind: int, alpha: float, reduction: int, factor, d_cs=None) -> Tensor:
    """(N, C, 3) weights of the gradient: factor (scalar, (N,) or (N, C)) times the plane's
    weight in out, plus d_cs on the cs column."""
    n, c = x.shape[:2]
    acc = acc_dtype(x.dtype)
    ks, kl = _coefficients(kind, alpha)
    g = _gamma(reduction, n, c)
    w = torch.zeros((n, c, 3), dtype=acc, device=x.device)
    if factor is not None:
        f = factor.to(acc) if isinstance(factor, Tensor) else torch.tensor(float(factor), dtype=acc, device=x.device)
        f = f.reshape(n, 1) if f.dim() == 1 else f
        w[..., 0] = f * (ks * g)
        w[..., 2] = f * (kl * g)
    if d_cs is not None:
        w[..., 1] = d_cs.to(acc)
    return w


def _reduce(planes: Tensor, kind: int, alpha: float, reduction: int) -> Tensor:
    if kind == SSIM:
        value = planes[..., 0]
    elif kind == SSIM_LOSS:
        value = 1 - planes[..., 0]
    else:
        value = (1 - alpha) * planes[..., 2] + alpha * (1 - planes[..., 0])
    if reduction == MEAN:
        return value.mean()
    if reduction == NONE:
        return value.mean(1)
    return value.clone(memory_format=torch.contiguous_format)


def _stored_gain(x: Tensor, reduction: int):
    """The power of two float16 forward gradients are stored times: d out/dx of a mean over
    many pixels underflows float16, K * d out/dx (about d(sum of the map)/dx) does not;
    backward applies grad_out / K in float32. 1 for the other dtypes.

    A Python float, except for a symbolic pixel count (the backward traced by torch.compile
    with dynamic shapes): then the same power of two as a float32 tensor computed in the
    graph, so that one graph serves every size (math.log2 would specialise on it)."""
    if x.dtype != torch.float16 or reduction == MAP:
        return 1.0
    n, c, h, w = x.shape
    count = h * w * (n * c if reduction == MEAN else c if reduction == NONE else 1)
    if isinstance(count, int):
        return 2.0 ** math.floor(math.log2(max(count, 1)))
    t = torch.scalar_tensor(count, dtype=torch.float64, device=x.device).clamp_min(1)
    return torch.exp2(torch.floor(torch.log2(t))).to(torch.float32)


def _fwd_impl(x, y, win_size, win_sigma, c1, c2, padding, reduction, kind, alpha, need_gx, need_gy, backend):
    fwd = _impl(backend)[0]
    grad = (need_gx or need_gy) and reduction != MAP
    weights = _plane_weights(x, kind, alpha, reduction, _stored_gain(x, reduction)) if grad else None
    planes, s_map, gx, gy = fwd(x, y, win_size, win_sigma, c1, c2, padding, reduction == MAP, kind == L1_SSIM,
                                weights, need_gx and grad, need_gy and grad)
    out = s_map if reduction == MAP else _reduce(planes, kind, alpha, reduction)
    return out, planes[..., 1].clone(memory_format=torch.contiguous_format), gx, gy


@torch.library.custom_op("fastiqa::ssim_fwd", mutates_args=())
def ssim_fwd(x: Tensor, y: Tensor, win_size: int, win_sigma: float, c1: float, c2: float, padding: int,
             reduction: int, kind: int, alpha: float, need_gx: bool, need_gy: bool,
             backend: str) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    return _fwd_impl(x, y, win_size, win_sigma, c1, c2, padding, reduction, kind, alpha, need_gx, need_gy, backend)


@ssim_fwd.register_fake
def _ssim_fwd_fake(x, y, win_size, win_sigma, c1, c2, padding, reduction, kind, alpha, need_gx, need_gy, backend):
    acc = acc_dtype(x.dtype)
    n, c = x.shape[:2]
    if reduction == MAP:
        out = torch.empty((n, c, *_output_size(x, win_size, padding)), dtype=x.dtype, device=x.device,
                          memory_format=reference.map_memory_format(x))
    else:
        out = x.new_empty({MEAN: (), NONE: (n,), PER_CHANNEL: (n, c)}[reduction], dtype=acc)
    grad = reduction != MAP
    gx = torch.empty_like(x) if need_gx and grad else x.new_empty((0,))
    gy = torch.empty_like(x) if need_gy and grad else x.new_empty((0,))
    return out, x.new_empty((n, c), dtype=acc), gx, gy


@torch.library.custom_op("fastiqa::ssim_bwd", mutates_args=())
def ssim_bwd(x: Tensor, y: Tensor, win_size: int, win_sigma: float, c1: float, c2: float, padding: int,
             weights: Tensor, dmap: Optional[Tensor], need_gx: bool, need_gy: bool,
             backend: str) -> Tuple[Tensor, Tensor]:
    return _impl(backend)[1](x, y, win_size, win_sigma, c1, c2, padding, weights, dmap, need_gx, need_gy)


@ssim_bwd.register_fake
def _ssim_bwd_fake(x, y, win_size, win_sigma, c1, c2, padding, weights, dmap, need_gx, need_gy, backend):
    return (torch.empty_like(x) if need_gx else x.new_empty((0,)),
            torch.empty_like(x) if need_gy else x.new_empty((0,)))


def _setup_context(ctx, inputs, output):
    x, y, win_size, win_sigma, c1, c2, padding, reduction, kind, alpha, need_gx, need_gy, backend = inputs
    _, _, gx, gy = output
    ctx.args = (win_size, win_sigma, c1, c2, padding)
    ctx.reduction, ctx.kind, ctx.alpha, ctx.backend = reduction, kind, alpha, backend
    ctx.mark_non_differentiable(gx, gy)
    ctx.set_materialize_grads(False)
    if _autograd.is_eager(ctx):  # the buffers go to the first backward (op contract, _autograd.py)
        _autograd.keep(ctx, gx, gy)
        ctx.save_for_backward(x, y)
    else:
        ctx.save_for_backward(x, y, gx, gy)


def _scale(grad: Tensor, factor: Tensor, reduction: int, inplace: bool) -> Tensor:
    """grad * factor (0-dim, (N,) or (N, C)) in float32, rounded once to grad's dtype."""
    if reduction == NONE:
        factor = factor.view(-1, 1, 1, 1)
    elif reduction == PER_CHANNEL:
        factor = factor.view(*factor.shape, 1, 1)
    return _autograd.scaled(grad, factor, inplace)


def _reference_outputs(x, y, win_size, win_sigma, c1, c2, padding, reduction, kind, alpha):
    """(out, cs) of the op from the reference formulas (differentiable torch ops)."""
    planes, s_map, _, _ = reference.ssim_fwd(x, y, win_size, win_sigma, c1, c2, padding, reduction == MAP,
                                             kind == L1_SSIM, None, False, False)
    out = s_map if reduction == MAP else _reduce(planes, kind, alpha, reduction)
    return out, planes[..., 1]


def _stored_grads(ctx):
    """(gx, gy, owned): the forward's gradients of out (owned: this backward may hand them
    over or scale them in place), or (empty, empty, False) when backward must recompute."""
    if not _autograd.is_eager(ctx):
        return (*ctx.saved_tensors[2:], False)
    kept = _autograd.take(ctx)
    return (*kept, True) if kept is not None else (ctx.saved_tensors[0].new_empty((0,)),) * 2 + (False,)


def _backward(ctx, d_out, d_cs, d_gx, d_gy):
    none = (None,) * 11
    need_x, need_y = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
    if (d_out is None and d_cs is None) or not (need_x or need_y):
        return None, None, *none
    x, y = ctx.saved_tensors[:2]
    if _autograd.create_graph():
        ref = lambda a, b: _reference_outputs(a, b, *ctx.args, ctx.reduction, ctx.kind, ctx.alpha)  # noqa: E731
        gx, gy = _autograd.reference_grads(ref, (x, y), (need_x, need_y), (d_out, d_cs))
        return gx, gy, *none
    gx, gy, owned = _stored_grads(ctx)
    have = (gx.numel() > 0 or not need_x) and (gy.numel() > 0 or not need_y)
    if have and d_cs is None and ctx.reduction != MAP:
        # the forward computed gain * d out/dx: scale it by grad_out / gain
        gain = _stored_gain(x, ctx.reduction)
        if owned and gain == 1.0 and ctx.reduction == MEAN and _autograd.handover_allowed(d_out, x) \
                and float(d_out) == 1.0:
            return (gx if need_x else None), (gy if need_y else None), *none  # handed over
        factor = d_out.to(acc_dtype(x.dtype)) / gain
        return ((_scale(gx, factor, ctx.reduction, owned) if need_x else None),
                (_scale(gy, factor, ctx.reduction, owned) if need_y else None), *none)
    dmap = None
    factor = None
    if d_out is not None:
        if ctx.reduction == MAP:
            dmap = d_out.to(x.dtype)
        else:
            factor = d_out
    weights = _plane_weights(x, ctx.kind, ctx.alpha, ctx.reduction, factor, d_cs)
    bwd = _impl(ctx.backend)[1] if _autograd.eager(x, y, weights, dmap) else \
        functools.partial(ssim_bwd, backend=ctx.backend)
    rx, ry = bwd(x, y, *ctx.args, weights, dmap, need_x, need_y)
    return (rx if need_x else None), (ry if need_y else None), *none


ssim_fwd.register_autograd(_backward, setup_context=_setup_context)
_EagerSsim = _autograd.eager_function("_EagerSsim", _fwd_impl, _setup_context, _backward)


def ssim(x: Tensor, y: Tensor, win_size: int, win_sigma: float, c1: float, c2: float, padding: str,
         reduction: str, kind: str = "ssim", alpha: float = 0.0, backend: Optional[str] = None,
         grad_in_forward: bool = True) -> Tuple[Tensor, Tensor]:
    """Validated arguments in, (out, per-plane cs) out (see fastiqa.functional for the user API).

    grad_in_forward=False (MS-SSIM) leaves the gradient to backward, which then
    recomputes it with the weights autograd brings to out and cs."""
    name = _dispatch.choose(x.device, KERNEL, backend)
    grad = grad_in_forward and torch.is_grad_enabled()
    args = (x, y, int(win_size), float(win_sigma), float(c1), float(c2), code(Padding, padding, "padding"),
            code(Reduction, reduction, "reduction"), code(SsimOutput, kind, "kind"), float(alpha),
            grad and x.requires_grad, grad and y.requires_grad, name)
    op = _EagerSsim.apply if _autograd.eager(x, y) else ssim_fwd
    out, cs, _, _ = op(*args)
    return out, cs
