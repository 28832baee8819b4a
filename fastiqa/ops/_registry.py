"""Registers what an op family adds to its schemas (fastiqa/_kernel_schemas.py), once for
every overload, and picks the overload a call runs.

    register(op, fake, reference=..., triton=..., backward=..., setup_context=...)

  * the fake kernel (torch.compile, make_fx, opcheck) and the autograd formula on the
    default overload and on <op>.reference / <op>.triton;
  * the Python backends on their overloads (CompositeExplicitAutograd: any device), and on
    the default overload for a device key that has no compiled kernel (CPU: the reference;
    CUDA: Triton when it can run, else the reference), so that a call of the default
    overload always reaches a kernel through the dispatcher;
  * the Python backends run with autocast off, as the compiled kernels do (an op has no
    autocast rule: a bmm inside the reference would otherwise run in bfloat16).

The backward formula receives the overload it serves as ctx.overload (the backward op of
the same backend is getattr(torch.ops.fastiqa_C.<bwd>, ctx.overload)).

The autograd kernel is torch.library.register_autograd's, less its per-call fill_defaults
(our schemas have no defaults and no keyword-only arguments; fill_defaults rebuilds the
schema's argument list per argument: ~30 us a call, as much as a small loss itself).
"""
import functools
import importlib
from typing import Callable, Optional

import torch
from torch.autograd import forward_ad as _fw_ad
from torch.utils._python_dispatch import _get_current_dispatch_mode

from .. import _ext, _kernel_schemas
from . import _dispatch

OVERLOADS = ("default",) + _kernel_schemas.PYTHON_BACKENDS
FAKES = {}  # op -> its fake kernel (tests/test_kernel_schemas.py checks the names)
AUTOGRAD = set()  # the ops that have an autograd formula


def _no_autocast(fn: Callable) -> Callable:
    @functools.wraps(fn)
    def run(*args):
        device = next((a.device.type for a in args if isinstance(a, torch.Tensor)), "cpu")
        with torch.autocast(device, enabled=False):
            return fn(*args)
    return run


def _lazy(module: str, name: str) -> Callable:
    """module.name, imported on the first call (triton is optional and slow to import)."""
    def run(*args):
        return getattr(importlib.import_module(module), name)(*args)
    run.__name__ = name
    return run


_transforms_active = torch._C._are_functorch_transforms_active
_JVP = getattr(getattr(torch._C._functorch, "TransformType", None), "Jvp", None)
_interpreters = getattr(torch._C._functorch, "get_interpreter_stack", None)
_any_requires_grad = getattr(torch._C, "_any_requires_grad", None) or \
    (lambda *a: any(isinstance(t, torch.Tensor) and t.requires_grad for t in a))


def _forward_ad_in_use(args) -> bool:
    """True when an argument carries a forward-mode tangent (a dual tensor of an active
    torch.autograd.forward_ad level, or a functorch jvp / jacfwd transform is running). The ops
    have no forward-mode formula: below the autograd key the result would carry no tangent,
    which reads as a zero derivative."""
    if _fw_ad._current_level >= 0 and any(
            isinstance(a, torch.Tensor) and _fw_ad.unpack_dual(a).tangent is not None for a in args):
        return True
    if _transforms_active() and _JVP is not None and _interpreters is not None:
        return any(i.key() == _JVP for i in _interpreters() or ())
    return False


def _no_forward_ad(op: str):
    raise RuntimeError(f"fastiqa_C::{op} has no forward-mode derivative (dual tensors, torch.func.jvp / jacfwd): "
                       "differentiate in reverse mode (loss.backward(), torch.autograd.grad)")


def _autograd_kernel(op: torch._ops.OpOverload, overload: str, backward: Callable, setup_context: Callable):
    """The Autograd-key kernel of `op`: an autograd.Function whose forward redispatches below
    autograd and calls setup_context(ctx, inputs, output); backward(ctx, *grads)."""
    any_requires_grad = _any_requires_grad

    # bound once: this kernel runs on every call of the op, grad or not (~1 us of lookups a call)
    redispatch, below, after = op._handle.redispatch_boxed, torch._C._AutoDispatchBelowAutograd, \
        torch._C._after_autograd_keyset
    grad_enabled = torch.is_grad_enabled

    def forward(ctx, *args):
        keyset = args[-1]
        args = args[:-1]
        with below():
            out = redispatch(keyset & after, *args)
        ctx.overload = overload
        setup_context(ctx, args, out)
        return out

    def backward_(ctx, *grads):
        needs = ctx.needs_input_grad
        ctx.needs_input_grad = needs[:-1]
        try:
            return (*backward(ctx, *grads), None)
        finally:
            ctx.needs_input_grad = needs

    fn = type(f"{op._opname}_{overload}_autograd", (torch.autograd.Function,),
              {"forward": staticmethod(forward), "backward": staticmethod(backward_)})

    # Function.apply's C part: Function.apply adds only the unwrapping of dead functorch wrappers
    # (~2 us for 12 arguments), which the dispatcher's functorch fallback has done before the
    # Autograd key; under an active transform (vmap, grad, ...) the full apply runs
    c_apply = super(torch.autograd.Function, fn).apply
    transforms_active = torch._C._are_functorch_transforms_active

    def kernel(keyset, *args):
        if _forward_ad_in_use(args):
            _no_forward_ad(op._opname)
        if grad_enabled() and any_requires_grad(*args):
            return fn.apply(*args, keyset) if transforms_active() else c_apply(*args, keyset)
        with below():
            return redispatch(keyset & after, *args)

    return kernel


def register(op: str, fake: Callable, reference: Callable, triton: Optional[str] = None,
             backward: Optional[Callable] = None, setup_context: Optional[Callable] = None) -> None:
    """triton: the module that defines `op` (imported lazily), or None."""
    lib = _ext.LIBRARY
    FAKES[op] = fake
    if backward is not None:
        AUTOGRAD.add(op)
    impls = {"reference": reference, "triton": _lazy(triton, op) if triton else reference}
    for overload in OVERLOADS:
        qualname = f"fastiqa_C::{op}" + ("" if overload == "default" else f".{overload}")
        torch.library.register_fake(qualname, fake, lib=lib)
        if backward is not None:
            packet = getattr(torch.ops.fastiqa_C, op)
            kernel = _autograd_kernel(getattr(packet, overload), overload, backward, setup_context)
            lib.impl(op if overload == "default" else f"{op}.{overload}", kernel, "Autograd", with_keyset=True)
        if overload != "default":
            lib.impl(f"{op}.{overload}", _no_autocast(impls[overload]), "CompositeExplicitAutograd")
    if not _ext.has_kernel(op, "CPU"):
        lib.impl(op, _no_autocast(reference), "CPU")
    if not _ext.has_kernel(op, "CUDA"):
        usable = triton is not None and _dispatch.triton_installed() and not _dispatch.triton_too_old()
        lib.impl(op, _no_autocast(impls["triton"] if usable else reference), "CUDA")


_below = torch._C._AutoDispatchBelowAutograd
_grad_enabled = torch.is_grad_enabled
_dispatch_mode = _get_current_dispatch_mode


def call(overload: torch._ops.OpOverload, *args):
    """overload(*args) for an overload that op() chose. Where no autograd graph can be recorded
    (grad mode off, or no argument requires grad), in plain eager mode, it is called below the
    autograd key: its Autograd-key kernel (_autograd_kernel) would only redispatch there, after
    boxing the call into Python and back (~4 us a call). Traced calls (torch.compile, make_fx,
    a dispatch mode) and functorch transforms take the dispatcher's whole way."""
    if torch.compiler.is_compiling() or (_grad_enabled() and _any_requires_grad(*args)) \
            or _transforms_active() or _dispatch_mode() is not None or _fw_ad._current_level >= 0:
        return overload(*args)
    with _below():
        return overload(*args)


def op(name: str, device: torch.device, backend: Optional[str] = None, *tensors):
    """The overload of fastiqa_C::<name> that runs for tensors on `device` (backend= or
    FASTIQA_BACKEND forces one: fastiqa/ops/_dispatch.py). Empty tensors always take the
    reference (the compiled and Triton kernels assume at least one element)."""
    chosen = _dispatch.choose(device, name, backend)  # first: a backend that cannot run is an error
    packet = getattr(torch.ops.fastiqa_C, name)
    if any(t is not None and t.numel() == 0 for t in tensors):
        return packet.reference
    return packet.default if chosen in ("cpu", "cuda") else getattr(packet, chosen)
