"""Masked SSIM (issue 19 item 3): fake kernels and autograd of fastiqa_C::ssim_masked_fwd /
ssim_masked_bwd (schemas: fastiqa/_kernel_schemas.py; contract and formulas:
fastiqa/backends/reference/_ssim_masked.py).

ssim_masked_fwd(pred, target, mask, ..., want_map) -> (planes (N, C, 4), map): the op returns
per-plane sums, and the reductions (weighted means, losses) are plain torch ops on them
(fastiqa/functional/_ssim_masked.py), so autograd brings d planes and d map to the backward,
which recomputes from pred, target and mask with ssim_masked_bwd (nothing image-sized saved
but the inputs). The mask gets no gradient (it is not differentiable; the functional layer
refuses a mask that requires grad).
"""
import torch

from ..backends import reference
from ..conventions import acc_dtype
from . import _autograd, _registry
from .ssim import _output_size


def _fwd_fake(pred, target, mask, win_size, win_sigma, c1, c2, padding, want_map):
    n, c = pred.shape[:2]
    planes = pred.new_empty((n, c, 4), dtype=acc_dtype(pred.dtype))
    if not want_map:
        return planes, pred.new_empty((0,))
    return planes, torch.empty((n, c, *_output_size(pred, win_size, padding)), dtype=pred.dtype,
                               device=pred.device, memory_format=reference.map_memory_format(pred))


def _bwd_fake(pred, target, mask, win_size, win_sigma, c1, c2, padding, d_planes, d_map, need_grad_pred,
              need_grad_target):
    return (torch.empty_like(pred) if need_grad_pred else pred.new_empty((0,)),
            torch.empty_like(pred) if need_grad_target else pred.new_empty((0,)))


def _setup_context(ctx, inputs, outputs):
    ctx.args = inputs[3:8]  # win_size, win_sigma, c1, c2, padding
    ctx.save_for_backward(*inputs[:3])


def _reference_outputs(pred, target, mask, win_size, win_sigma, c1, c2, padding):
    """(planes, map) from the reference formulas (differentiable torch ops)."""
    from ..backends.reference._ssim_masked import _planes  # the formulas, not the no-grad op

    return _planes(pred, target, mask, win_size, win_sigma, c1, c2, padding)


def _backward(ctx, d_planes, d_map):
    none = (None,) * 7
    need_p, need_t = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
    if (d_planes is None and d_map is None) or not (need_p or need_t):
        return None, None, None, *none
    pred, target, mask = ctx.saved_tensors
    if d_map is not None and d_map.numel() == 0:
        d_map = None
    if _autograd.create_graph():
        ref = lambda a, b: _reference_outputs(a, b, mask, *ctx.args)  # noqa: E731
        gp, gt = _autograd.reference_grads(ref, (pred, target), (need_p, need_t), (d_planes, d_map))
        return gp, gt, None, *none
    if d_planes is None:
        d_planes = pred.new_zeros((*pred.shape[:2], 4), dtype=acc_dtype(pred.dtype))
    bwd = getattr(torch.ops.fastiqa_C.ssim_masked_bwd, ctx.overload)
    gp, gt = bwd(pred, target, mask, *ctx.args, d_planes.to(acc_dtype(pred.dtype)).contiguous(), d_map, need_p,
                 need_t)
    return (gp if need_p else None), (gt if need_t else None), None, *none


_registry.register("ssim_masked_fwd", _fwd_fake, reference.ssim_masked_fwd, "fastiqa.backends.triton.ssim_masked",
                   backward=_backward, setup_context=_setup_context)
_registry.register("ssim_masked_bwd", _bwd_fake, reference.ssim_masked_bwd, "fastiqa.backends.triton.ssim_masked")


# The components (ssim(..., mask=..., return_components=True)): a forward op (the compiled CPU kernel where
# built, else the reference; no Triton kernel: the reference runs for CUDA tensors) whose backward is autograd
# of the reference formulas (not fused).
def _components_fake(pred, target, mask, win_size, win_sigma, c1, c2, padding, want_map):
    n, c = pred.shape[:2]
    planes = pred.new_empty((n, c, 5), dtype=acc_dtype(pred.dtype))
    if not want_map:
        return planes, pred.new_empty((0,))
    return planes, pred.new_empty((4, n, c, *_output_size(pred, win_size, padding)))


def _components_backward(ctx, d_planes, d_maps):
    none = (None,) * 7
    need_p, need_t = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
    if (d_planes is None and d_maps is None) or not (need_p or need_t):
        return None, None, None, *none
    pred, target, mask = ctx.saved_tensors
    if d_maps is not None and d_maps.numel() == 0:
        d_maps = None
    from ..backends.reference._ssim_masked import components_planes

    ref = lambda a, b: components_planes(a, b, mask, *ctx.args)  # noqa: E731
    gp, gt = _autograd.reference_grads(ref, (pred, target), (need_p, need_t), (d_planes, d_maps))
    if not _autograd.create_graph():
        gp, gt = (g.detach() if g is not None else None for g in (gp, gt))
    return gp, gt, None, *none


_registry.register("ssim_masked_components_fwd", _components_fake, reference.ssim_masked_components_fwd, None,
                   backward=_components_backward, setup_context=_setup_context)
