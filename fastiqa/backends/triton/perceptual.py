"""Triton kernels of the perceptual family (LPIPS / DISTS distance heads, one backbone layer):
the contract of fastiqa/backends/reference/_perceptual.py.

LPIPS: program (n, b) owns BLOCK pixels of image n and loops over the channels: the two
channel norms, then the weighted squared difference of the unit features (forward: one
partial sum per program, summed by torch in a fixed order), or (backward) the two dot
products the normalisation's derivative needs and then both gradients. Each feature is
read two (forward) or three (backward) times per pixel block, from cache after the first.
DISTS: programs (n*c, b) own BLOCK pixels of plane (n, c) and write partial sums (the
means, then the centred second moments: two passes), which torch adds in a fixed order;
S1, S2 and the gradient's per-plane coefficients are (N, C) torch ops; the backward
writes each gradient in one more pass. Any strides (NCHW and
channels_last); accumulation in float32 (float64 for float64 features).
"""
import torch
import triton
import triton.language as tl

from ...conventions import acc_dtype

LPIPS_EPS = 1e-10
DISTS_C1 = 1e-6
DISTS_C2 = 1e-6
BLOCK_P = 128  # pixels per LPIPS program
BLOCK_HW = 1024  # pixels per step of a DISTS plane loop


def _tl(dtype):
    return tl.float64 if dtype == torch.float64 else tl.float32


@triton.jit
def _lpips_pixels(x_ptr, y_ptr, C: tl.constexpr, HW, W, sxn, sxc, sxh, sxw, syn, syc, syh, syw,
                  EPS: tl.constexpr, ACC: tl.constexpr, BLOCK: tl.constexpr):
    """This program's image n and pixel block b (grid: N, pixel blocks): (n, b, mask, h, w,
    offsets in x and y, the two channel norms per pixel r0, r1, and r0 + EPS, r1 + EPS)."""
    n = tl.program_id(0).to(tl.int64)
    b = tl.program_id(1)
    p = b.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = p < HW
    h = p // W
    w = p - h * W
    offx = n * sxn + h * sxh + w * sxw
    offy = n * syn + h * syh + w * syw
    r0 = tl.zeros((BLOCK,), ACC)
    r1 = tl.zeros((BLOCK,), ACC)
    for c in range(0, C):
        x = tl.load(x_ptr + offx + c * sxc, mask=mask, other=0).to(ACC)
        y = tl.load(y_ptr + offy + c * syc, mask=mask, other=0).to(ACC)
        r0 += x * x
        r1 += y * y
    r0 = tl.sqrt(r0)
    r1 = tl.sqrt(r1)
    return n, b, mask, h, w, offx, offy, r0, r1, r0 + EPS, r1 + EPS


@triton.jit
def _lpips_fwd_kernel(x_ptr, y_ptr, w_ptr, part_ptr, C: tl.constexpr, HW, W, sxn, sxc, sxh, sxw, syn, syc, syh,
                      syw, nblocks, EPS: tl.constexpr, ACC: tl.constexpr, BLOCK: tl.constexpr):
    n, b, mask, h, w, offx, offy, r0, r1, s0, s1 = _lpips_pixels(x_ptr, y_ptr, C, HW, W, sxn, sxc, sxh, sxw, syn,
                                                                 syc, syh, syw, EPS, ACC, BLOCK)
    acc = tl.zeros((BLOCK,), ACC)
    for c in range(0, C):
        x = tl.load(x_ptr + offx + c * sxc, mask=mask, other=0).to(ACC)
        y = tl.load(y_ptr + offy + c * syc, mask=mask, other=0).to(ACC)
        wc = tl.load(w_ptr + c).to(ACC)
        d = x / s0 - y / s1
        acc += wc * d * d
    acc = tl.where(mask, acc, 0.0)
    tl.store(part_ptr + n * nblocks + b, tl.sum(acc, axis=0))


@triton.jit
def _lpips_bwd_kernel(x_ptr, y_ptr, w_ptr, go_ptr, gx_ptr, gy_ptr, C: tl.constexpr, HW, W, sxn, sxc, sxh, sxw,
                      syn, syc, syh, syw, gxn, gxc, gxh, gxw, gyn, gyc, gyh, gyw, EPS: tl.constexpr,
                      WRITE_X: tl.constexpr, WRITE_Y: tl.constexpr, ACC: tl.constexpr, BLOCK: tl.constexpr):
    n, b, mask, h, w, offx, offy, r0, r1, s0, s1 = _lpips_pixels(x_ptr, y_ptr, C, HW, W, sxn, sxc, sxh, sxw, syn,
                                                                 syc, syh, syw, EPS, ACC, BLOCK)
    dot0 = tl.zeros((BLOCK,), ACC)
    dot1 = tl.zeros((BLOCK,), ACC)
    for c in range(0, C):
        x = tl.load(x_ptr + offx + c * sxc, mask=mask, other=0).to(ACC)
        y = tl.load(y_ptr + offy + c * syc, mask=mask, other=0).to(ACC)
        wd = tl.load(w_ptr + c).to(ACC) * (x / s0 - y / s1)
        dot0 += wd * x
        dot1 += wd * y
    k = 2.0 * tl.load(go_ptr + n).to(ACC) / HW
    safe0 = tl.where(r0 > 0, r0, 1.0)
    safe1 = tl.where(r1 > 0, r1, 1.0)
    t0 = tl.where(r0 > 0, dot0 / (s0 * s0 * safe0), 0.0)  # the normalisation's term, 0 at ||f|| = 0
    t1 = tl.where(r1 > 0, dot1 / (s1 * s1 * safe1), 0.0)
    for c in range(0, C):
        x = tl.load(x_ptr + offx + c * sxc, mask=mask, other=0).to(ACC)
        y = tl.load(y_ptr + offy + c * syc, mask=mask, other=0).to(ACC)
        wd = tl.load(w_ptr + c).to(ACC) * (x / s0 - y / s1)
        if WRITE_X:
            g = k * (wd / s0 - x * t0)
            tl.store(gx_ptr + n * gxn + c * gxc + h * gxh + w * gxw, g.to(gx_ptr.dtype.element_ty), mask=mask)
        if WRITE_Y:
            g = -k * (wd / s1 - y * t1)
            tl.store(gy_ptr + n * gyn + c * gyc + h * gyh + w * gyw, g.to(gy_ptr.dtype.element_ty), mask=mask)


def _launch_args(t):
    return t.stride(0), t.stride(1), t.stride(2), t.stride(3)


def lpips_head_fwd(pred, target, weight):
    n, c, hh, ww = pred.shape
    acc = acc_dtype(pred.dtype)
    hw = hh * ww
    nblocks = triton.cdiv(hw, BLOCK_P)
    part = torch.empty((n, nblocks), dtype=acc, device=pred.device)
    w = weight.to(acc).contiguous()
    _lpips_fwd_kernel[(n, nblocks)](pred, target, w, part, c, hw, ww, *_launch_args(pred), *_launch_args(target),
                                    nblocks, EPS=LPIPS_EPS, ACC=_tl(acc), BLOCK=BLOCK_P)
    return part.sum(1) / hw


def _bwd_setup(pred, target, need_grad_pred, need_grad_target):
    """(N, C, H, W, accumulator dtype, grad_pred, grad_target): the shape and the gradient
    buffers of a head's backward (empty where not asked for)."""
    gx = torch.empty_like(pred) if need_grad_pred else pred.new_empty((0,))
    gy = torch.empty_like(target) if need_grad_target else target.new_empty((0,))
    return (*pred.shape, acc_dtype(pred.dtype), gx, gy)


def lpips_head_bwd(pred, target, weight, grad_out, need_grad_pred, need_grad_target):
    n, c, hh, ww, acc, gx, gy = _bwd_setup(pred, target, need_grad_pred, need_grad_target)
    hw = hh * ww
    if not (need_grad_pred or need_grad_target):
        return gx, gy
    w = weight.to(acc).contiguous()
    go = grad_out.to(acc).contiguous()
    gxs = _launch_args(gx) if need_grad_pred else (0, 0, 0, 0)
    gys = _launch_args(gy) if need_grad_target else (0, 0, 0, 0)
    _lpips_bwd_kernel[(n, triton.cdiv(hw, BLOCK_P))](
        pred, target, w, go, gx if need_grad_pred else pred, gy if need_grad_target else target, c, hw, ww,
        *_launch_args(pred), *_launch_args(target), *gxs, *gys, EPS=LPIPS_EPS, WRITE_X=need_grad_pred,
        WRITE_Y=need_grad_target, ACC=_tl(acc), BLOCK=BLOCK_P)
    return gx, gy


@triton.jit
def _plane_block(x_ptr, y_ptr, C, HW, W, sxn, sxc, sxh, sxw, syn, syc, syh, syw, ACC: tl.constexpr,
                 BLOCK: tl.constexpr):
    """This program's plane pid = n * C + c, pixel block b, the block's coordinates h, w and mask,
    and x, y there in ACC (grid: N * C planes, pixel blocks of one plane)."""
    pid = tl.program_id(0).to(tl.int64)
    b = tl.program_id(1)
    n = pid // C
    c = pid - n * C
    p = b.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = p < HW
    h = p // W
    w = p - h * W
    x = tl.load(x_ptr + n * sxn + c * sxc + h * sxh + w * sxw, mask=mask, other=0).to(ACC)
    y = tl.load(y_ptr + n * syn + c * syc + h * syh + w * syw, mask=mask, other=0).to(ACC)
    return pid, b, n, c, h, w, mask, x, y


@triton.jit
def _dists_sums_kernel(x_ptr, y_ptr, mx_ptr, my_ptr, part_ptr, C, HW, W, sxn, sxc, sxh, sxw, syn, syc, syh, syw,
                       nblocks, CENTRED: tl.constexpr, ACC: tl.constexpr, BLOCK: tl.constexpr):
    """Partial sums over BLOCK pixels of plane (n, c): x, y (CENTRED off) or, about the
    plane's means, (x - mx)^2, (y - my)^2, (x - mx)(y - my) (CENTRED on)."""
    pid, b, n, c, h, w, mask, x, y = _plane_block(x_ptr, y_ptr, C, HW, W, sxn, sxc, sxh, sxw, syn, syc, syh, syw,
                                                  ACC, BLOCK)
    out = part_ptr + (pid * nblocks + b) * 3
    if CENTRED:
        dx = tl.where(mask, x - tl.load(mx_ptr + pid), 0.0)
        dy = tl.where(mask, y - tl.load(my_ptr + pid), 0.0)
        tl.store(out, tl.sum(dx * dx, axis=0))
        tl.store(out + 1, tl.sum(dy * dy, axis=0))
        tl.store(out + 2, tl.sum(dx * dy, axis=0))
    else:
        tl.store(out, tl.sum(x, axis=0))
        tl.store(out + 1, tl.sum(y, axis=0))
        tl.store(out + 2, 0.0)


def _dists_stats(pred, target):
    """(mx, my, vx, vy, cov), each (N, C) in the accumulator dtype: two passes (means, then
    centred second moments), partial sums per pixel block added by torch in a fixed order."""
    n, c, hh, ww = pred.shape
    acc = acc_dtype(pred.dtype)
    hw = hh * ww
    nblocks = triton.cdiv(hw, BLOCK_HW)
    part = torch.empty((n * c, nblocks, 3), dtype=acc, device=pred.device)
    args = (c, hw, ww, *_launch_args(pred), *_launch_args(target), nblocks)
    _dists_sums_kernel[(n * c, nblocks)](pred, target, part, part, part, *args, CENTRED=False, ACC=_tl(acc),
                                         BLOCK=BLOCK_HW)
    sums = part.sum(1) / hw
    mx, my = sums[:, 0].contiguous(), sums[:, 1].contiguous()
    _dists_sums_kernel[(n * c, nblocks)](pred, target, mx, my, part, *args, CENTRED=True, ACC=_tl(acc),
                                         BLOCK=BLOCK_HW)
    m2 = part.sum(1) / hw
    return [t.view(n, c) for t in (mx, my, m2[:, 0], m2[:, 1], m2[:, 2])]


def dists_head_fwd(pred, target, weight):
    acc = acc_dtype(pred.dtype)
    mx, my, vx, vy, cov = _dists_stats(pred, target)
    w = weight.to(acc)
    s1 = (2 * mx * my + DISTS_C1) / (mx * mx + my * my + DISTS_C1)
    s2 = (2 * cov + DISTS_C2) / (vx + vy + DISTS_C2)
    return (w[0] * s1 + w[1] * s2).sum(1)


@triton.jit
def _dists_grad_kernel(x_ptr, y_ptr, coef_ptr, g_ptr, C, HW, W, sxn, sxc, sxh, sxw, syn, syc, syh, syw,
                       gn, gc, gh, gw, ACC: tl.constexpr, BLOCK: tl.constexpr):
    """g = k0 + k1 (x - mx) + k2 (y - my) per pixel of plane (n, c), coef (N*C, 5): k0 k1 k2 mx my."""
    pid, b, n, c, h, w, mask, x, y = _plane_block(x_ptr, y_ptr, C, HW, W, sxn, sxc, sxh, sxw, syn, syc, syh, syw,
                                                  ACC, BLOCK)
    k = coef_ptr + pid * 5
    g = tl.load(k) + tl.load(k + 1) * (x - tl.load(k + 3)) + tl.load(k + 2) * (y - tl.load(k + 4))
    tl.store(g_ptr + n * gn + c * gc + h * gh + w * gw, g.to(g_ptr.dtype.element_ty), mask=mask)


def dists_head_bwd(pred, target, weight, grad_out, need_grad_pred, need_grad_target):
    n, c, hh, ww, acc, gx, gy = _bwd_setup(pred, target, need_grad_pred, need_grad_target)
    hw = hh * ww
    if not (need_grad_pred or need_grad_target):
        return gx, gy
    mx, my, vx, vy, cov = _dists_stats(pred, target)
    w = weight.to(acc)
    go = grad_out.to(acc).view(-1, 1) / hw
    a, b = w[0] * go, w[1] * go
    den1 = mx * mx + my * my + DISTS_C1
    num1 = 2 * mx * my + DISTS_C1
    den2 = vx + vy + DISTS_C2
    ds2_dv = -(2 * cov + DISTS_C2) / (den2 * den2)  # d S2 / d vx = d S2 / d vy
    ds2_dcov = 2 / den2
    nblocks = triton.cdiv(hw, BLOCK_HW)
    for want, g, f, m, m_other, src, other in ((need_grad_pred, gx, pred, mx, my, pred, target),
                                               (need_grad_target, gy, target, my, mx, target, pred)):
        if not want:
            continue
        k0 = a * (2 * m_other * den1 - num1 * 2 * m) / (den1 * den1)  # alpha dS1/dm
        coef = torch.stack([k0, b * ds2_dv * 2, b * ds2_dcov, m, m_other], -1).reshape(n * c, 5).contiguous()
        _dists_grad_kernel[(n * c, nblocks)](src, other, coef, g, c, hw, ww, *_launch_args(src), *_launch_args(other),
                                             *_launch_args(g), ACC=_tl(acc), BLOCK=BLOCK_HW)
    return gx, gy
