"""The autograd pattern every op family shares (README.md, "The op contract").

Each family registers a fake kernel and an autograd formula on its forward op and on
every overload of it (fastiqa/ops/_registry.py): torch.compile, make_fx and opcheck see
one opaque op, eager calls go function -> op -> dispatcher -> kernel.

Rules the backward formulas follow:
  * Gradients computed by the forward are kept on ctx (`save`), never in
    save_for_backward, when the forward ran eagerly on plain tensors. The first backward
    takes them (`stored`): it hands a buffer over untouched when grad_out is 1 (no pass,
    no allocation) or scales it in place; a later backward of a retained graph finds
    nothing and recomputes from the saved inputs. So no two results, nor a result and a
    saved tensor, ever share memory. Traced (compiled) forwards save them as tensors.
  * create_graph=True (grad mode on inside backward) returns the gradient of the
    family's reference formulas, built from differentiable torch ops
    (`reference_grads`): a correct second derivative on every backend, never a
    gradient silently cut from the graph.
  * grad_out multiplies in the accumulator precision and the product is rounded
    once to the gradient's dtype (`scaled`): a float16 gradient times GradScaler's
    65536 never passes through a float16 65536.
"""
from typing import Callable, Optional, Sequence

import torch
from torch import Tensor
from torch.utils._python_dispatch import _get_current_dispatch_mode

HALF = (torch.float16, torch.bfloat16)


def eager(*tensors) -> bool:
    """Plain tensors outside any tracing (torch.compile, make_fx, fake tensors)."""
    return (not torch.compiler.is_compiling() and _get_current_dispatch_mode() is None
            and all(type(t) is torch.Tensor for t in tensors if t is not None))


def save(ctx, saved: tuple, fwd_grads: tuple) -> None:
    """save_for_backward(saved); the forward's gradient buffers on ctx for the first backward
    when the forward ran eagerly on plain tensors, else saved as tensors too."""
    ctx.n_saved = len(saved)
    ctx.eager = eager(*saved, *fwd_grads)
    if ctx.eager:
        ctx.fwd_grads = fwd_grads
        ctx.save_for_backward(*saved)
    else:
        ctx.save_for_backward(*saved, *fwd_grads)


def stored(ctx) -> tuple:
    """(fwd_grads, owned): the forward's gradient buffers (owned: this backward may hand them
    over or scale them in place), or (None, False) when an earlier backward took them
    (retain_graph: recompute)."""
    if not ctx.eager:
        return ctx.saved_tensors[ctx.n_saved:], False
    grads, ctx.fwd_grads = ctx.fwd_grads, None
    return grads, grads is not None


def handover_allowed(grad_out: Tensor, *others) -> bool:
    """A buffer may be handed over only outside tracing, on the CPU (where reading the
    scalar grad_out costs no device synchronisation)."""
    return eager(grad_out, *others) and grad_out.device.type == "cpu" and grad_out.numel() == 1


def scaled(g: Tensor, factor, inplace: bool = False) -> Tensor:
    """g * factor computed in float32/float64 and rounded once to g's dtype.

    factor: a Python number or an accumulator-dtype tensor broadcastable to g. On the CPU
    a half tensor times a float32 tensor computes in float32 (ATen's opmath); elsewhere
    half gradients are widened explicitly so that 65536 is never a float16."""
    if isinstance(factor, Tensor) and g.dtype in HALF and g.device.type != "cpu":
        out = g.float() * factor.float()
        return g.copy_(out) if inplace else out.to(g.dtype)
    if inplace:
        return g.mul_(factor)
    r = g * factor
    return r if r.dtype == g.dtype else r.to(g.dtype)


def reference_grads(reference_fwd: Callable, inputs: Sequence, needs: Sequence[bool],
                    grad_outs: Sequence[Optional[Tensor]]) -> list:
    """Backward under create_graph=True: the gradients of reference_fwd(*inputs) (a tuple of
    outputs matching grad_outs, built from differentiable torch ops) w.r.t. the inputs that
    need one, with their graph, so that a second backward differentiates them correctly."""
    wrt = [t for t, n in zip(inputs, needs) if n]
    with torch.enable_grad():
        outs = reference_fwd(*inputs)
    pairs = [(o, g) for o, g in zip(outs, grad_outs) if g is not None and o.requires_grad]
    got = iter(torch.autograd.grad([o for o, _ in pairs], wrt, [g.to(o.dtype) for o, g in pairs],
                                   create_graph=True, allow_unused=True) if pairs and wrt else ())
    result = []
    for t, n in zip(inputs, needs):
        g = next(got, None) if n else None
        result.append(torch.zeros_like(t) if n and g is None else g)
    return result


def create_graph() -> bool:
    """True inside a backward run with create_graph=True (autograd enables grad mode then)."""
    return torch.is_grad_enabled()
