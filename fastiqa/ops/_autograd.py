"""The autograd pattern every op family shares (README.md, "The op contract").

Each family registers its forward as a torch.library custom op (fake kernel and
autograd formula: torch.compile, make_fx, opcheck) and, for plain eager tensors,
applies the same implementation, setup_context and backward through the
torch.autograd.Function that `eager_function` builds: it skips the custom-op
wrapper (tens of microseconds a call) and may hand buffers over.

Rules the backward formulas follow:
  * Gradients computed by the forward are kept on ctx (`keep`), never in
    save_for_backward, on the eager path. The first backward takes them (`take`):
    it hands a buffer over untouched when grad_out is 1 (no pass, no allocation)
    or scales it in place; a later backward of a retained graph finds nothing and
    recomputes from the saved inputs. So no two results, nor a result and a saved
    tensor, ever share memory.
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


def eager_function(name: str, impl: Callable, setup_context: Callable, backward: Callable):
    """A torch.autograd.Function running `impl` with the registered op's setup_context and
    backward; ctx.eager tells them that ctx may hold forward-computed gradients."""

    def forward(ctx, *args):
        out = impl(*args)
        ctx.eager = True
        setup_context(ctx, args, out)
        return out

    def backward_(ctx, *grads):
        return backward(ctx, *grads)

    return type(name, (torch.autograd.Function,),
                {"forward": staticmethod(forward), "backward": staticmethod(backward_), "__doc__": impl.__doc__})


def is_eager(ctx) -> bool:
    return getattr(ctx, "eager", False)


def keep(ctx, *grads) -> None:
    """Stores the forward's gradient buffers for the first backward (eager path only)."""
    ctx.fwd_grads = grads


def take(ctx) -> Optional[tuple]:
    """The forward's gradient buffers, once: None on a later backward (retain_graph)."""
    grads = getattr(ctx, "fwd_grads", None)
    ctx.fwd_grads = None
    return grads


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
