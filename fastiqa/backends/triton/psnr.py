"""Triton kernels of the psnr family: same contract as csrc/cpu/psnr_impl.h.

Forward: program (n, b) reads BLOCK samples of image n's cropped region (any
strides: NCHW and channels_last alike), applies the fused quantisation / BT.601
luma, and writes one partial sum of d^2 or |d| (and, when asked, the gradient of
the per-image mean). The (N, blocks) partials are then summed by torch in a fixed
order (no atomics), so the result is bitwise reproducible.
Rounding is round-half-to-even by the 1.5 * 2^23 (2^52 for float64) addition
trick, which needs no libdevice and runs under TRITON_INTERPRET=1 alike.
"""
import torch
import triton
import triton.language as tl

from ..._codes import LossKind
from ...conventions import Y_WEIGHTS
from ._common import store_opposite

_MSE = tl.constexpr(int(LossKind.MSE))  # kind code as a Triton compile-time constant

BLOCK = 4096
NUM_WARPS = 8


@triton.jit
def _quant8(v, qscale, MAGIC: tl.constexpr):
    v = v * qscale
    v = tl.minimum(tl.maximum(v, 0.0), 255.0)
    return (v + MAGIC) - MAGIC


@triton.jit
def _psnr_fwd_kernel(a_ptr, b_ptr, grad_ptr, part_ptr, hh, ww, count, sn, sc, sh, sw, crop, qscale, gmul,
                     WR: tl.constexpr, WG: tl.constexpr, WB: tl.constexpr, KIND: tl.constexpr,
                     LUMA: tl.constexpr, QUANT: tl.constexpr, WRITE_GRAD: tl.constexpr, ACC: tl.constexpr,
                     MAGIC: tl.constexpr, BLOCK: tl.constexpr):
    n = tl.program_id(0).to(tl.int64)
    pid = tl.program_id(1)
    i = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = i < count
    plane = hh * ww
    c = i // plane
    rem = i - c * plane
    h = rem // ww
    w = rem - h * ww
    off = n * sn + (h + crop) * sh + (w + crop) * sw
    if LUMA:
        xr = tl.load(a_ptr + off, mask=mask, other=0).to(ACC)
        xg = tl.load(a_ptr + off + sc, mask=mask, other=0).to(ACC)
        xb = tl.load(a_ptr + off + 2 * sc, mask=mask, other=0).to(ACC)
        yr = tl.load(b_ptr + off, mask=mask, other=0).to(ACC)
        yg = tl.load(b_ptr + off + sc, mask=mask, other=0).to(ACC)
        yb = tl.load(b_ptr + off + 2 * sc, mask=mask, other=0).to(ACC)
        if QUANT:
            xr = _quant8(xr, qscale, MAGIC)
            xg = _quant8(xg, qscale, MAGIC)
            xb = _quant8(xb, qscale, MAGIC)
            yr = _quant8(yr, qscale, MAGIC)
            yg = _quant8(yg, qscale, MAGIC)
            yb = _quant8(yb, qscale, MAGIC)
        d = WR * (xr - yr) + WG * (xg - yg) + WB * (xb - yb)
    else:
        off = off + c * sc
        xa = tl.load(a_ptr + off, mask=mask, other=0).to(ACC)
        ya = tl.load(b_ptr + off, mask=mask, other=0).to(ACC)
        if QUANT:
            xa = _quant8(xa, qscale, MAGIC)
            ya = _quant8(ya, qscale, MAGIC)
        d = xa - ya
    if KIND == _MSE:
        v = d * d
        g = 2.0 * d
    else:
        v = tl.abs(d)
        g = tl.where(d > 0, 1.0, tl.where(d < 0, -1.0, 0.0)).to(ACC)
    v = tl.where(mask, v, 0.0)
    if WRITE_GRAD:
        g = g * gmul
        if LUMA:
            tl.store(grad_ptr + off, (g * WR).to(grad_ptr.dtype.element_ty), mask=mask)
            tl.store(grad_ptr + off + sc, (g * WG).to(grad_ptr.dtype.element_ty), mask=mask)
            tl.store(grad_ptr + off + 2 * sc, (g * WB).to(grad_ptr.dtype.element_ty), mask=mask)
        else:
            tl.store(grad_ptr + off, g.to(grad_ptr.dtype.element_ty), mask=mask)
    tl.store(part_ptr + n * tl.num_programs(1) + pid, tl.sum(v, axis=0))


@triton.jit
def _psnr_bwd_kernel(g_ptr, gx_ptr, gy_ptr, go_ptr, per,
                     WRITE_X: tl.constexpr, WRITE_Y: tl.constexpr, ACC: tl.constexpr, BLOCK: tl.constexpr):
    n = tl.program_id(0).to(tl.int64)
    i = tl.program_id(1).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = i < per
    off = n * per + i
    s = tl.load(go_ptr + n).to(ACC)
    v = tl.load(g_ptr + off, mask=mask, other=0).to(ACC) * s
    store_opposite(gx_ptr, gy_ptr, off, v, mask, WRITE_X, WRITE_Y)


def _acc(dtype):
    if dtype == torch.float64:
        return torch.float64, tl.float64, 6755399441055744.0
    return torch.float32, tl.float32, 12582912.0


def psnr_fwd(pred, target, kind, crop, y_channel, quantize, data_range, need_grad):
    n, c, h, w = pred.shape
    acc_t, acc_tl, magic = _acc(pred.dtype)
    hh, ww = h - 2 * crop, w - 2 * crop
    count = hh * ww * (1 if y_channel else c)
    blocks = triton.cdiv(count, BLOCK)
    partials = torch.empty((n, blocks), dtype=acc_t, device=pred.device)
    if need_grad:
        grad = torch.zeros_like(pred) if crop > 0 else torch.empty_like(pred)
    else:
        grad = pred.new_empty((0,))
    if n > 0:
        _psnr_fwd_kernel[(n, blocks)](
            pred, target, grad if need_grad else pred, partials, hh, ww, count, *pred.stride(), crop,
            255.0 / data_range, 1.0 / count,
            WR=Y_WEIGHTS[0] / 255.0, WG=Y_WEIGHTS[1] / 255.0, WB=Y_WEIGHTS[2] / 255.0, KIND=kind,
            LUMA=y_channel, QUANT=quantize, WRITE_GRAD=need_grad, ACC=acc_tl, MAGIC=magic, BLOCK=BLOCK,
            num_warps=NUM_WARPS)
    stat = partials.sum(dim=1) / count
    if quantize:
        u = data_range / 255.0
        stat = stat * (u * u if kind == LossKind.MSE else u)
    return stat, grad


def psnr_bwd(grad, grad_out, need_grad_pred, need_grad_target):
    n = grad.shape[0]
    acc_t, acc_tl, _ = _acc(grad.dtype)
    gx = torch.empty_like(grad) if need_grad_pred else grad.new_empty((0,))
    gy = torch.empty_like(grad) if need_grad_target else grad.new_empty((0,))
    per = grad.numel() // n if n else 0
    if per and (need_grad_pred or need_grad_target):
        _psnr_bwd_kernel[(n, triton.cdiv(per, BLOCK))](
            grad, gx if need_grad_pred else grad, gy if need_grad_target else grad,
            grad_out.to(acc_t).contiguous(), per,
            WRITE_X=need_grad_pred, WRITE_Y=need_grad_target, ACC=acc_tl, BLOCK=BLOCK, num_warps=NUM_WARPS)
    return gx, gy
