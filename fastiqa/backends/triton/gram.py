"""Triton kernels of the gram family: same contract as csrc/cpu/gram_impl.h.

Forward: one program per (image, upper-triangle tile (ti <= tj), K split) computes
    acc = F_x[ti] F_x[tj]^T - F_y[ti] F_y[tj]^T          (style; the Gram alone: no y)
with tl.dot accumulating in float32 (float64 for float64); only the upper block
triangle is computed since G is symmetric. The long K = H*W reduction is split
across programs (partials (S, N, C, C)); a finalize program per tile sums the S
partials in fixed order, applies the scale, and either writes the Gram tile and
its mirror, or evaluates the criterion on D = G_x - G_y (or G_x - T) for the tile
and its mirror, writes dloss/dD there and one partial loss. torch sums the loss
partials in order: no atomics, bitwise reproducible.

Backward: one program per (image, C tile, K tile) computes alpha * Q[rows] F[:, cols]
with Q = s g (P + P^T) (float32), for x and for y.

Precision: float32 features use input_precision="ieee" (exact float32 products;
tf32 would cost ~1e-3 relative error); float16/bfloat16 use their tensor-core dot
with float32 accumulation, Q cast to the feature dtype in backward. float64
features run the reference (plain torch) path: tl.dot has no float64 lowering
for NVIDIA GPUs (checked with tests/gpu/triton_compile_check.py).
"""
import os

import torch
import triton
import triton.language as tl

from ..._codes import Criterion
from .. import reference as _reference

_CR_L1 = tl.constexpr(int(Criterion.L1))  # criterion codes as Triton compile-time constants
_CR_L2 = tl.constexpr(int(Criterion.L2))

_INTERPRET = os.environ.get("TRITON_INTERPRET", "0") == "1"
BC = 64 if _INTERPRET else 64
BK = 256 if _INTERPRET else 64
NUM_WARPS = 4
TARGET_PROGRAMS = 1 if _INTERPRET else 264  # about 2 waves on an H100/H200


@triton.jit
def _dot(a, b, acc, IEEE: tl.constexpr, UP: tl.constexpr):
    if UP:  # the interpreter's bfloat16 tl.dot reads the raw bits: widen first (tests only)
        a = a.to(tl.float32)
        b = b.to(tl.float32)
    if IEEE:
        r = tl.dot(a, b, acc, input_precision="ieee")
    else:
        r = tl.dot(a, b, acc)
    return r


@triton.jit
def _tile(tab_ptr, ntri, BC: tl.constexpr):
    """This program's image n, its upper-triangle tile (ti, tj) (table entry pid % ntri of
    tab_ptr; grid axis 0: N * ntri programs) and the tile's channel indices ci, cj."""
    pid = tl.program_id(0)
    t = pid % ntri
    ti = tl.load(tab_ptr + 2 * t)
    tj = tl.load(tab_ptr + 2 * t + 1)
    return pid // ntri, ti, tj, ti * BC + tl.arange(0, BC), tj * BC + tl.arange(0, BC)


@triton.jit
def _tiles_kernel(x_ptr, y_ptr, tab_ptr, part_ptr, N, C, K, sN, sC, sK, ntri, kper,
                  HAS_Y: tl.constexpr, ACC: tl.constexpr, IEEE: tl.constexpr, UP: tl.constexpr,
                  BC: tl.constexpr, BK: tl.constexpr):
    s = tl.program_id(1)
    n, _, _, ci, cj = _tile(tab_ptr, ntri, BC)
    mi = ci < C
    mj = cj < C
    kb = s * kper
    base = n.to(tl.int64) * sN
    acc = tl.zeros([BC, BC], dtype=ACC)
    acc_y = tl.zeros([BC, BC], dtype=ACC)  # separate: negating 16-bit tiles is not exact everywhere
    # while, not range(): the interpreter cannot take runtime loop bounds (splits are
    # BK-aligned; the last one is masked at K)
    k0 = kb
    while k0 < kb + kper:
        ks = k0 + tl.arange(0, BK)
        mk = ks < K
        oi = base + ci[:, None].to(tl.int64) * sC + ks[None, :].to(tl.int64) * sK
        oj = base + cj[None, :].to(tl.int64) * sC + ks[:, None].to(tl.int64) * sK
        xi = tl.load(x_ptr + oi, mask=mi[:, None] & mk[None, :], other=0)
        xj = tl.load(x_ptr + oj, mask=mj[None, :] & mk[:, None], other=0)  # (BK, BC): F_x[tj]^T
        acc = _dot(xi, xj, acc, IEEE, UP)
        if HAS_Y:
            yi = tl.load(y_ptr + oi, mask=mi[:, None] & mk[None, :], other=0)
            yj = tl.load(y_ptr + oj, mask=mj[None, :] & mk[:, None], other=0)
            acc_y = _dot(yi, yj, acc_y, IEEE, UP)
        k0 += BK
    if HAS_Y:
        acc = acc - acc_y
    out = part_ptr + ((s * N + n).to(tl.int64) * C * C) + ci[:, None] * C + cj[None, :]
    tl.store(out, acc, mask=mi[:, None] & mj[None, :])


@triton.jit
def _criterion(d, CR: tl.constexpr):
    if CR == _CR_L1:
        v = tl.abs(d)
        g = tl.where(d > 0, 1.0, tl.where(d < 0, -1.0, 0.0)).to(d.dtype)
    elif CR == _CR_L2:
        v = d * d
        g = 2.0 * d
    else:
        v = d * d
        g = d
    return v, g


@triton.jit
def _finalize_kernel(part_ptr, tab_ptr, t_ptr, out_ptr, loss_ptr, N, C, S, ntri, tN, scale, gmul,
                     MODE: tl.constexpr, CR: tl.constexpr, NEED_P: tl.constexpr,
                     ACC: tl.constexpr, BC: tl.constexpr):
    # MODE 0: Gram (out = G); 1: style with y (out = P); 2: style with a target Gram (out = P)
    n, ti, tj, ci, cj = _tile(tab_ptr, ntri, BC)
    m = (ci[:, None] < C) & (cj[None, :] < C)
    mt = (cj[:, None] < C) & (ci[None, :] < C)
    up = ci[:, None] * C + cj[None, :]      # tile (ti, tj)
    lo = cj[:, None] * C + ci[None, :]      # tile (tj, ti), indexed [j, i]
    acc = tl.zeros([BC, BC], dtype=ACC)
    s = 0
    while s < S:  # fixed order over the K splits
        acc += tl.load(part_ptr + (s * N + n).to(tl.int64) * C * C + up, mask=m, other=0)
        s += 1
    acc = acc * scale
    if ti == tj:  # exactly symmetric diagonal tiles
        acc = 0.5 * (acc + tl.trans(acc))
    accT = tl.trans(acc)
    nb = n.to(tl.int64) * C * C
    if MODE == 0:
        tl.store(out_ptr + nb + up, acc, mask=m)
        tl.store(out_ptr + nb + lo, accT, mask=mt)
    else:
        if MODE == 2:
            tb = (n % tN).to(tl.int64) * C * C
            d = acc - tl.load(t_ptr + tb + up, mask=m, other=0)
            dT = accT - tl.load(t_ptr + tb + lo, mask=mt, other=0)
        else:
            d = acc
            dT = accT
        v, g = _criterion(d, CR)
        total = tl.sum(tl.sum(tl.where(m, v, 0.0), axis=1), axis=0)
        if NEED_P:
            tl.store(out_ptr + nb + up, g * gmul, mask=m)
        if ti != tj:
            vT, gT = _criterion(dT, CR)
            total += tl.sum(tl.sum(tl.where(mt, vT, 0.0), axis=1), axis=0)
            if NEED_P:
                tl.store(out_ptr + nb + lo, gT * gmul, mask=mt)
        tl.store(loss_ptr + tl.program_id(0), total)


@triton.jit
def _apply_kernel(q_ptr, f_ptr, o_ptr, C, K, sN, sC, sK, qN, alpha,
                  ACC: tl.constexpr, IEEE: tl.constexpr, UP: tl.constexpr, BC: tl.constexpr,
                  BK: tl.constexpr):
    n = tl.program_id(0)
    ci = tl.program_id(1) * BC + tl.arange(0, BC)
    ks = tl.program_id(2) * BK + tl.arange(0, BK)
    mi = ci < C
    mk = ks < K
    qb = (n % qN).to(tl.int64) * C * C
    fb = n.to(tl.int64) * sN
    acc = tl.zeros([BC, BK], dtype=ACC)
    c0 = 0
    while c0 < C:
        cc = c0 + tl.arange(0, BC)
        mc = cc < C
        q = tl.load(q_ptr + qb + ci[:, None] * C + cc[None, :], mask=mi[:, None] & mc[None, :], other=0)
        f = tl.load(f_ptr + fb + cc[:, None].to(tl.int64) * sC + ks[None, :].to(tl.int64) * sK,
                    mask=mc[:, None] & mk[None, :], other=0)
        acc = _dot(q.to(f.dtype), f, acc, IEEE, UP)
        c0 += BC
    acc = acc * alpha
    o = o_ptr + fb + ci[:, None].to(tl.int64) * sC + ks[None, :].to(tl.int64) * sK
    tl.store(o, acc.to(o_ptr.dtype.element_ty), mask=mi[:, None] & mk[None, :])


def _acc(dtype):
    return (torch.float64, tl.float64) if dtype == torch.float64 else (torch.float32, tl.float32)


def _ieee(dtype):
    return dtype in (torch.float32, torch.float64)


def _up(dtype):
    return _INTERPRET and dtype == torch.bfloat16


_TABLES = {}


def _tile_table(ntiles, device):
    key = (ntiles, str(device))
    tab = _TABLES.get(key)
    if tab is None:
        pairs = [(i, j) for i in range(ntiles) for j in range(i, ntiles)]
        tab = torch.tensor(pairs, dtype=torch.int32, device=device).reshape(-1)
        _TABLES[key] = tab
    return tab


def _products(x, y):
    """Upper-triangle tile partials (S, N, C, C) and the launch geometry."""
    n, c, k = x.shape
    acc_t, acc_tl = _acc(x.dtype)
    ntiles = triton.cdiv(c, BC)
    ntri = ntiles * (ntiles + 1) // 2
    splits = max(1, min(triton.cdiv(k, 4 * BK), triton.cdiv(TARGET_PROGRAMS, n * ntri)))
    kper = triton.cdiv(triton.cdiv(k, splits), BK) * BK
    splits = triton.cdiv(k, kper)
    part = torch.empty((splits, n, c, c), dtype=acc_t, device=x.device)
    tab = _tile_table(ntiles, x.device)
    _tiles_kernel[(n * ntri, splits)](
        x, y if y is not None else x, tab, part, n, c, k, x.stride(0), x.stride(1), x.stride(2), ntri,
        kper, HAS_Y=y is not None, ACC=acc_tl, IEEE=_ieee(x.dtype), UP=_up(x.dtype), BC=BC, BK=BK, num_warps=NUM_WARPS)
    return part, tab, ntri, splits


def gram_fwd(feat, scale):
    if feat.dtype == torch.float64:
        return _reference.gram_fwd(feat, scale)
    n, c, _ = feat.shape
    acc_t, acc_tl = _acc(feat.dtype)
    part, tab, ntri, splits = _products(feat, None)
    g = torch.empty((n, c, c), dtype=acc_t, device=feat.device)
    _finalize_kernel[(n * ntri,)](part, tab, part, g, part, n, c, splits, ntri, 1, float(scale), 1.0,
                                  MODE=0, CR=0, NEED_P=True, ACC=acc_tl, BC=BC, num_warps=NUM_WARPS)
    return g


def gram_apply(q, feat, alpha):
    if feat.dtype == torch.float64:
        return _reference.gram_apply(q, feat, alpha)
    n, c, k = feat.shape
    _, acc_tl = _acc(feat.dtype)
    out = torch.empty_like(feat)
    q = q.contiguous()
    grid = (n, triton.cdiv(c, BC), triton.cdiv(k, BK))
    _apply_kernel[grid](q, feat, out, c, k, feat.stride(0), feat.stride(1), feat.stride(2), q.shape[0],
                        float(alpha), ACC=acc_tl, IEEE=_ieee(feat.dtype), UP=_up(feat.dtype), BC=BC, BK=BK,
                        num_warps=NUM_WARPS)
    return out


def style_fwd(pred, target, target_gram, scale, criterion, need_grad):
    if pred.dtype == torch.float64:
        return _reference.style_fwd(pred, target, target_gram, scale, criterion, need_grad)
    n, c, _ = pred.shape
    acc_t, acc_tl = _acc(pred.dtype)
    part, tab, ntri, splits = _products(pred, target)
    count = n * c * c
    p = torch.empty((n, c, c), dtype=acc_t, device=pred.device) if need_grad else pred.new_empty((0,), dtype=acc_t)
    losses = torch.empty((n * ntri,), dtype=acc_t, device=pred.device)
    mode = 1 if target is not None else 2
    t = target_gram if target_gram is not None else part
    gmul = 1.0 / count if criterion != 2 else 1.0
    _finalize_kernel[(n * ntri,)](part, tab, t, p if need_grad else part, losses, n, c, splits, ntri,
                                  t.shape[0] if target_gram is not None else 1, float(scale), gmul,
                                  MODE=mode, CR=criterion, NEED_P=need_grad, ACC=acc_tl, BC=BC,
                                  num_warps=NUM_WARPS)
    total = losses.sum()
    if criterion == Criterion.FRO:
        loss = torch.sqrt(total)
        if need_grad:
            p = p * torch.where(loss > 0, 1.0 / loss, torch.zeros_like(loss))
        return loss, p
    return total / count, p


def style_bwd(pred, target, p, grad_out, scale, need_grad_pred, need_grad_target):
    q = (p + p.transpose(1, 2)) * (grad_out.to(p.dtype) * scale)
    gx = gram_apply(q, pred, 1.0) if need_grad_pred else pred.new_empty((0,))
    gy = gram_apply(q, target, -1.0) if need_grad_target else pred.new_empty((0,))
    return gx, gy
