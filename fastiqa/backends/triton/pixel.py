"""Triton kernels of the pixel-loss family: same contract as csrc/cpu/pixel_impl.h.

Forward: one program per BLOCK elements reads pred, target (and weight), writes
the loss map (reduction none) and/or the elementwise gradient, and one pair of
partial sums; the partials are then summed by torch in a fixed order (no
atomics), so results are bitwise reproducible.
"""
import torch
import triton
import triton.language as tl

from ..._codes import LossKind, Reduction, WeightMode
from ._common import store_opposite

# codes as Triton compile-time constants (fastiqa/_codes.py)
_L1 = tl.constexpr(int(LossKind.L1))
_MSE = tl.constexpr(int(LossKind.MSE))
_W_FULL = tl.constexpr(int(WeightMode.FULL))
_W_PLANE = tl.constexpr(int(WeightMode.PLANE))

BLOCK = 4096
NUM_WARPS = 8


@triton.jit
def _pixel_fwd_kernel(a_ptr, b_ptr, w_ptr, map_ptr, grad_ptr, part_ptr, n, channels, inner, c, gmul,
                      KIND: tl.constexpr, WMODE: tl.constexpr, WRITE_MAP: tl.constexpr,
                      WRITE_GRAD: tl.constexpr, ACC: tl.constexpr, IS_F64: tl.constexpr,
                      BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    offs = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    d = tl.load(a_ptr + offs, mask=mask, other=0).to(ACC) - tl.load(b_ptr + offs, mask=mask, other=0).to(ACC)
    if KIND == _L1:  # L1: |d|, sign(d)
        v = tl.abs(d)
        g = tl.where(d > 0, 1.0, tl.where(d < 0, -1.0, 0.0)).to(ACC)
    elif KIND == _MSE:  # MSE: d^2, 2d
        v = d * d
        g = 2.0 * d
    else:  # Charbonnier: sqrt(d^2 + c), d / sqrt(d^2 + c)
        if IS_F64:
            s = tl.sqrt(d * d + c)
            g = d / s
        else:  # correctly rounded, as the CPU kernel (tl.sqrt is approximate on GPUs)
            s = tl.sqrt_rn(d * d + c)
            g = tl.div_rn(d, s)
        v = s
    wsum = tl.sum(tl.zeros([BLOCK], ACC), axis=0)
    if WMODE != 0:
        if WMODE == _W_FULL:
            widx = offs
        elif WMODE == _W_PLANE:  # NCHW input, (N,1,...) weight
            widx = (offs // (channels * inner)) * inner + offs % inner
        else:  # channels-last input, (N,1,...) weight
            widx = offs // channels
        w = tl.load(w_ptr + widx, mask=mask, other=0).to(ACC)
        v = v * w
        g = g * w
        wsum = tl.sum(w, axis=0)
    v = tl.where(mask, v, 0.0)
    if WRITE_MAP:
        tl.store(map_ptr + offs, v.to(map_ptr.dtype.element_ty), mask=mask)
    if WRITE_GRAD:
        tl.store(grad_ptr + offs, (g * gmul).to(grad_ptr.dtype.element_ty), mask=mask)
    tl.store(part_ptr + 2 * pid, tl.sum(v, axis=0))
    tl.store(part_ptr + 2 * pid + 1, wsum)


@triton.jit
def _pixel_bwd_kernel(g_ptr, gp_ptr, gt_ptr, go_ptr, gscale_ptr, n,
                      WRITE_P: tl.constexpr, WRITE_T: tl.constexpr, ACC: tl.constexpr,
                      BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    offs = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    scale = tl.load(go_ptr).to(ACC) * tl.load(gscale_ptr).to(ACC)
    v = tl.load(g_ptr + offs, mask=mask, other=0).to(ACC) * scale
    store_opposite(gp_ptr, gt_ptr, offs, v, mask, WRITE_P, WRITE_T)


def _acc(dtype):
    return (torch.float64, tl.float64) if dtype == torch.float64 else (torch.float32, tl.float32)


def pixel_fwd(pred, target, weight, weight_mode, channels, inner, kind, c, reduction, norm_scale, need_grad):
    n = pred.numel()
    acc_t, acc_tl = _acc(pred.dtype)
    grid = (triton.cdiv(n, BLOCK),)
    partials = torch.empty((grid[0], 2), dtype=acc_t, device=pred.device)
    out_map = torch.empty_like(pred) if reduction == Reduction.NONE else None
    grad = torch.empty_like(pred) if need_grad else pred.new_empty((0,))
    gmul = 1.0 / n if reduction == Reduction.MEAN else 1.0  # mean: store the gradient of the mean itself
    _pixel_fwd_kernel[grid](
        pred, target, weight if weight is not None else pred, out_map if out_map is not None else pred,
        grad if need_grad else pred, partials, n, max(channels, 1), max(inner, 1), float(c), gmul,
        KIND=kind, WMODE=weight_mode, WRITE_MAP=reduction == Reduction.NONE, WRITE_GRAD=need_grad,
        ACC=acc_tl, IS_F64=pred.dtype == torch.float64, BLOCK=BLOCK, num_warps=NUM_WARPS)
    total, wtotal = partials.sum(dim=0).unbind(0)
    one = torch.ones((), dtype=acc_t, device=pred.device)
    if reduction == Reduction.NONE:
        return out_map, one, grad
    if reduction == Reduction.SUM:
        return total.clone(), one, grad
    if reduction == Reduction.MEAN:
        return total / n, one, grad
    denom = wtotal * norm_scale if weight is not None else torch.full((), float(n), dtype=acc_t, device=pred.device)
    return total / denom, 1.0 / denom, grad


def pixel_bwd(grad, grad_out, gscale, need_grad_pred, need_grad_target):
    n = grad.numel()
    acc_t, acc_tl = _acc(grad.dtype)
    gp = torch.empty_like(grad) if need_grad_pred else grad.new_empty((0,))
    gt = torch.empty_like(grad) if need_grad_target else grad.new_empty((0,))
    if n:
        _pixel_bwd_kernel[(triton.cdiv(n, BLOCK),)](
            grad, gp if need_grad_pred else grad, gt if need_grad_target else grad,
            grad_out.to(acc_t).reshape(()), gscale, n, WRITE_P=need_grad_pred, WRITE_T=need_grad_target,
            ACC=acc_tl, BLOCK=BLOCK, num_warps=NUM_WARPS)
    return gp, gt
