"""Perceptual family (LPIPS / DISTS distance heads, one backbone layer per call): fake kernels
and autograd of fastiqa_C::lpips_head_fwd / lpips_head_bwd / dists_head_fwd / dists_head_bwd
(schemas: fastiqa/_kernel_schemas.py; contract: fastiqa/backends/reference/_perceptual.py).

<metric>_head_fwd(pred, target, weight) -> value (N,), accumulator dtype
<metric>_head_bwd(pred, target, weight, grad_out, need_grad_pred, need_grad_target) -> (grad_pred, grad_target)

The backward recomputes from the saved features (one pass per gradient; nothing image-sized
is kept but the inputs autograd keeps anyway). weight is a constant: it gets no gradient.
Kernels: csrc/cpu/perceptual_impl.h on CPU tensors (compiled, per ISA level) and
csrc/cuda/perceptual.cu on CUDA tensors; Triton and the reference by backend=.
"""
import torch

from ..backends import reference
from ..conventions import acc_dtype
from . import _autograd, _registry


def _fwd_fake(pred, target, weight):
    return pred.new_empty((pred.shape[0],), dtype=acc_dtype(pred.dtype))


def _bwd_fake(pred, target, weight, grad_out, need_grad_pred, need_grad_target):
    gp = torch.empty_like(pred) if need_grad_pred else pred.new_empty((0,))
    gt = torch.empty_like(target) if need_grad_target else target.new_empty((0,))
    return gp, gt


def _setup_context(ctx, inputs, output):
    ctx.set_materialize_grads(False)
    ctx.save_for_backward(*inputs)


def _backward_of(bwd_name, reference_fwd):
    def backward(ctx, d_value):
        need_p, need_t = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        if d_value is None or not (need_p or need_t):
            return None, None, None
        pred, target, weight = ctx.saved_tensors
        if _autograd.create_graph():
            ref = lambda a, b: (reference_fwd(a, b, weight),)  # noqa: E731
            gp, gt = _autograd.reference_grads(ref, (pred, target), (need_p, need_t), (d_value,))
            return gp, gt, None
        bwd = getattr(getattr(torch.ops.fastiqa_C, bwd_name), ctx.overload)
        gp, gt = bwd(pred, target, weight, d_value.to(acc_dtype(pred.dtype)).contiguous(), need_p, need_t)
        return (gp if need_p else None), (gt if need_t else None), None
    return backward


for _metric in ("lpips", "dists"):
    _fwd, _bwd = f"{_metric}_head_fwd", f"{_metric}_head_bwd"
    _registry.register(_fwd, _fwd_fake, getattr(reference, _fwd), "fastiqa.backends.triton.perceptual",
                       backward=_backward_of(_bwd, getattr(reference, _fwd)), setup_context=_setup_context)
    _registry.register(_bwd, _bwd_fake, getattr(reference, _bwd), "fastiqa.backends.triton.perceptual")
