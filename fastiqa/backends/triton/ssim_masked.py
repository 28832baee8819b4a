"""Triton kernels of the masked SSIM (issue 19 item 3): fastiqa_C::ssim_masked_fwd / ssim_masked_bwd
(contract and formulas: fastiqa/backends/reference/_ssim_masked.py), on the banded-matrix blur of
fastiqa/backends/triton/ssim.py (its _band, _blur, _load_tile, _program):

    G*v on a tile = E_r @ V @ E_c^T   for the six products v = m, m x, m y, m x^2, m y^2, m x y,

zero padding adding the weight of the taps that fall outside the image (zeros of weight 1:
pr + pc - pr pc, pr = sum of the vertical taps without a source; exactly 0 inside), so W = G*m
is that of the reference. Forward: one program per OUT x OUT tile of one plane, the map (S, 0
where W = 0) if asked and one partial (m_c S, m_c, m |x - y|, m) per tile, summed by torch in tile
order. Gradient: one program per source tile recomputes the statistics on the M x M output region
that reads it, forms the four coefficient maps times w / W (w = d_planes[0] m_c + d_map) and
applies the adjoint blur E_r^T K E_c; the gradient is m times it, 0 where m = 0.
float64 and volumes run the reference (tl.dot has no float64 lowering; no 3-D kernel here).
"""
import torch
import triton
import triton.language as tl

from ..._codes import Padding
from .. import reference
from .ssim_tiles import IN, OUT, _acc, _band, _blur, _geometry, _grad_tiles, _load_tile, _mm, _program, _src

_ZERO = tl.constexpr(int(Padding.SAME_ZERO))


@triton.jit
def _missing(g_ptr, p0, n, n_out, ROWS: tl.constexpr, WIN: tl.constexpr, OFF: tl.constexpr,
             PADDING: tl.constexpr, ACC: tl.constexpr):
    """Per output row p0 + i: the weight of its taps that have no source pixel (zero padding)."""
    p = p0 + tl.arange(0, ROWS)
    e = tl.zeros([ROWS], ACC)
    if PADDING == _ZERO:
        for k in tl.static_range(WIN):
            _, ok = _src(p + k, n, OFF, PADDING)
            gk = tl.load(g_ptr + k)
            e += tl.where(ok, 0.0, gk)
    return e


@triton.jit
def _masked_stats(xb, yb, mb, g_ptr, p0r, p0c, H, W, Ho, Wo, sxh, sxw, syh, syw, smh, smw,
                  ROWS: tl.constexpr, SRC: tl.constexpr, WIN_R: tl.constexpr, WIN_C: tl.constexpr,
                  OFF_R: tl.constexpr, OFF_C: tl.constexpr, PADDING: tl.constexpr, ACC: tl.constexpr,
                  IEEE: tl.constexpr):
    """(W, mu_x, mu_y, E[x^2], E[y^2], E[xy], ok = W > 0) on the ROWS x ROWS outputs at (p0r, p0c)."""
    s0r = tl.maximum(p0r - OFF_R, 0)
    s0c = tl.maximum(p0c - OFF_C, 0)
    er = _band(g_ptr, p0r, s0r, H, Ho, ROWS, SRC, WIN_R, OFF_R, PADDING, ACC)
    ec = _band(g_ptr + WIN_R, p0c, s0c, W, Wo, ROWS, SRC, WIN_C, OFF_C, PADDING, ACC)
    x, _ = _load_tile(xb, s0r, s0c, H, W, sxh, sxw, SRC, SRC, ACC)
    y, _ = _load_tile(yb, s0r, s0c, H, W, syh, syw, SRC, SRC, ACC)
    m, _ = _load_tile(mb, s0r, s0c, H, W, smh, smw, SRC, SRC, ACC)
    mx = m * x
    my = m * y
    pr = _missing(g_ptr, p0r, H, Ho, ROWS, WIN_R, OFF_R, PADDING, ACC)[:, None]
    pc = _missing(g_ptr + WIN_R, p0c, W, Wo, ROWS, WIN_C, OFF_C, PADDING, ACC)[None, :]
    w = _blur(m, er, ec, IEEE) + (pr + pc - pr * pc)
    ok = w > 0
    inv = tl.where(ok, 1.0 / tl.where(ok, w, 1.0), 0.0)
    return (w, _blur(mx, er, ec, IEEE) * inv, _blur(my, er, ec, IEEE) * inv, _blur(mx * x, er, ec, IEEE) * inv,
            _blur(my * y, er, ec, IEEE) * inv, _blur(mx * y, er, ec, IEEE) * inv, ok)


@triton.jit
def _masked_fwd_kernel(x_ptr, y_ptr, m_ptr, g_ptr, k_ptr, map_ptr, part_ptr, C, H, W, Ho, Wo,
                       sxn, sxc, sxh, sxw, syn, syc, syh, syw, smn, smc, smh, smw, spn, spc, sph, spw,
                       WIN_R: tl.constexpr, WIN_C: tl.constexpr, OFF_R: tl.constexpr, OFF_C: tl.constexpr,
                       PADDING: tl.constexpr, WANT_MAP: tl.constexpr, ACC: tl.constexpr, IEEE: tl.constexpr,
                       OUT: tl.constexpr, IN: tl.constexpr):
    tc, tr, pl, n, c, xb, yb = _program(x_ptr, y_ptr, C, sxn, sxc, syn, syc)
    mb = m_ptr + n.to(tl.int64) * smn + c.to(tl.int64) * smc
    p0r = tr * OUT
    p0c = tc * OUT
    w, mx, my, exx, eyy, exy, ok = _masked_stats(xb, yb, mb, g_ptr, p0r, p0c, H, W, Ho, Wo, sxh, sxw, syh, syw,
                                                 smh, smw, OUT, IN, WIN_R, WIN_C, OFF_R, OFF_C, PADDING, ACC, IEEE)
    c1 = tl.load(k_ptr)
    c2 = tl.load(k_ptr + 1)
    mxy = mx * my
    mxx = mx * mx
    myy = my * my
    s = (2 * mxy + c1) / (mxx + myy + c1) * ((2 * (exy - mxy) + c2) / ((exx - mxx) + (eyy - myy) + c2))
    r = p0r + tl.arange(0, OUT)[:, None]
    q = p0c + tl.arange(0, OUT)[None, :]
    valid = (r < Ho) & (q < Wo)
    s = tl.where(valid & ok, s, 0.0)
    mc, _ = _load_tile(mb, p0r + (WIN_R // 2 - OFF_R), p0c + (WIN_C // 2 - OFF_C), H, W, smh, smw, OUT, OUT, ACC)
    mc = tl.where(valid, mc, 0.0)
    if WANT_MAP:
        mp = map_ptr + n.to(tl.int64) * spn + c.to(tl.int64) * spc + r.to(tl.int64) * sph + q.to(tl.int64) * spw
        tl.store(mp, s.to(map_ptr.dtype.element_ty), mask=valid)
    tile = tr * tl.num_programs(0) + tc
    base = part_ptr + (pl.to(tl.int64) * tl.num_programs(0) * tl.num_programs(1) + tile) * 4
    tl.store(base, tl.sum(tl.sum(mc * s, axis=1), axis=0))
    tl.store(base + 1, tl.sum(tl.sum(mc, axis=1), axis=0))
    xo, inside = _load_tile(xb, p0r, p0c, H, W, sxh, sxw, OUT, OUT, ACC)
    yo, _ = _load_tile(yb, p0r, p0c, H, W, syh, syw, OUT, OUT, ACC)
    mo, _ = _load_tile(mb, p0r, p0c, H, W, smh, smw, OUT, OUT, ACC)
    tl.store(base + 2, tl.sum(tl.sum(tl.where(inside, mo * tl.abs(xo - yo), 0.0), axis=1), axis=0))
    tl.store(base + 3, tl.sum(tl.sum(mo, axis=1), axis=0))


@triton.jit
def _masked_grad_kernel(x_ptr, y_ptr, m_ptr, g_ptr, k_ptr, w_ptr, dmap_ptr, gx_ptr, gy_ptr, C, H, W, Ho, Wo,
                        sxn, sxc, sxh, sxw, syn, syc, syh, syw, smn, smc, smh, smw, sdn, sdc, sdh, sdw,
                        sgn, sgc, sgh, sgw,
                        WIN_R: tl.constexpr, WIN_C: tl.constexpr, OFF_R: tl.constexpr, OFF_C: tl.constexpr,
                        PADDING: tl.constexpr, HAS_DMAP: tl.constexpr, WRITE_X: tl.constexpr,
                        WRITE_Y: tl.constexpr, ACC: tl.constexpr, IEEE: tl.constexpr, M: tl.constexpr,
                        SRC: tl.constexpr):
    GR: tl.constexpr = M - WIN_R + 1  # this program's source rows
    GC: tl.constexpr = M - WIN_C + 1  # and columns
    tc, tr, pl, n, c, xb, yb = _program(x_ptr, y_ptr, C, sxn, sxc, syn, syc)
    mb = m_ptr + n.to(tl.int64) * smn + c.to(tl.int64) * smc
    t0r = tr * GR
    t0c = tc * GC
    m0r = t0r + OFF_R - (WIN_R - 1)
    m0c = t0c + OFF_C - (WIN_C - 1)
    w, mx, my, exx, eyy, exy, ok = _masked_stats(xb, yb, mb, g_ptr, m0r, m0c, H, W, Ho, Wo, sxh, sxw, syh, syw,
                                                 smh, smw, M, SRC, WIN_R, WIN_C, OFF_R, OFF_C, PADDING, ACC, IEEE)
    c1 = tl.load(k_ptr)
    c2 = tl.load(k_ptr + 1)
    r = m0r + tl.arange(0, M)[:, None]
    q = m0c + tl.arange(0, M)[None, :]
    valid = (r >= 0) & (r < Ho) & (q >= 0) & (q < Wo) & ok
    mc, _ = _load_tile(mb, m0r + (WIN_R // 2 - OFF_R), m0c + (WIN_C // 2 - OFF_C), H, W, smh, smw, M, M, ACC)
    ws = tl.where(valid, mc * tl.load(w_ptr + pl * 4), 0.0)
    if HAS_DMAP:
        db_ = dmap_ptr + n.to(tl.int64) * sdn + c.to(tl.int64) * sdc + r.to(tl.int64) * sdh + q.to(tl.int64) * sdw
        ws += tl.load(db_, mask=valid, other=0).to(ACC)
    wl = tl.load(w_ptr + pl * 4 + 2)
    inv_w = tl.where(valid, 1.0 / tl.where(valid, w, 1.0), 0.0)
    ws = ws * inv_w  # d S / d (G*(m v)) = d S / d E[v] / W
    mxy = mx * my
    mxx = mx * mx
    myy = my * my
    b1 = mxx + myy + c1
    b2 = (exx - mxx) + (eyy - myy) + c2
    lum = (2 * mxy + c1) / b1
    cs = (2 * (exy - mxy) + c2) / b2
    s = lum * cs
    wlum = ws * lum
    dax = tl.where(valid, ws * (2 * cs * (my - mx * lum) / b1) + wlum * 2 * (mx * cs - my) / b2, 0.0)
    day = tl.where(valid, ws * (2 * cs * (mx - my * lum) / b1) + wlum * 2 * (my * cs - mx) / b2, 0.0)
    dbb = tl.where(valid, -(ws * s) / b2, 0.0)
    dcc = tl.where(valid, 2 * wlum / b2, 0.0)
    er = _band(g_ptr, m0r, t0r, H, Ho, M, M, WIN_R, OFF_R, PADDING, ACC)
    ec = _band(g_ptr + WIN_R, m0c, t0c, W, Wo, M, M, WIN_C, OFF_C, PADDING, ACC)
    ert = tl.trans(er)
    xs, inside = _load_tile(xb, t0r, t0c, H, W, sxh, sxw, M, M, ACC)
    ys, _ = _load_tile(yb, t0r, t0c, H, W, syh, syw, M, M, ACC)
    ms, _ = _load_tile(mb, t0r, t0c, H, W, smh, smw, M, M, ACC)
    tb = _mm(ert, _mm(dbb, ec, IEEE), IEEE)
    tcc = _mm(ert, _mm(dcc, ec, IEEE), IEEE)
    d = xs - ys
    sign = tl.where(d > 0, 1.0, tl.where(d < 0, -1.0, 0.0)).to(ACC) * wl
    rr = t0r + tl.arange(0, M)[:, None]
    qq = t0c + tl.arange(0, M)[None, :]
    own = inside & (tl.arange(0, M)[:, None] < GR) & (tl.arange(0, M)[None, :] < GC)
    off = n.to(tl.int64) * sgn + c.to(tl.int64) * sgc + rr.to(tl.int64) * sgh + qq.to(tl.int64) * sgw
    if WRITE_X:
        gx = ms * (_mm(ert, _mm(dax, ec, IEEE), IEEE) + 2 * xs * tb + ys * tcc + sign)
        tl.store(gx_ptr + off, gx.to(gx_ptr.dtype.element_ty), mask=own)
    if WRITE_Y:
        gy = ms * (_mm(ert, _mm(day, ec, IEEE), IEEE) + 2 * ys * tb + xs * tcc - sign)
        tl.store(gy_ptr + off, gy.to(gy_ptr.dtype.element_ty), mask=own)


def _constants(x, win_size, win_sigma, c1, c2, acc_t):
    return (torch.cat(reference.windows(win_size, win_sigma, 2, acc_t, x.device)),
            torch.tensor([c1, c2], dtype=acc_t, device=x.device))


def ssim_masked_fwd(pred, target, mask, win_size, win_sigma, c1, c2, padding, want_map):
    if pred.dtype == torch.float64 or pred.dim() == 5:
        return reference.ssim_masked_fwd(pred, target, mask, win_size, win_sigma, c1, c2, padding, want_map)
    n, c, h, w = pred.shape
    acc_t, acc_tl = _acc(pred.dtype)
    ho, wo, off_r, off_c = _geometry(pred, win_size, padding)
    g, k = _constants(pred, win_size, win_sigma, c1, c2, acc_t)
    s_map = torch.empty((n, c, ho, wo), dtype=pred.dtype, device=pred.device,
                        memory_format=reference.map_memory_format(pred)) if want_map else pred.new_empty((0,))
    grid = (triton.cdiv(w, OUT), triton.cdiv(h, OUT), n * c)
    partials = torch.empty((n * c, grid[0] * grid[1], 4), dtype=acc_t, device=pred.device)
    ms = s_map.stride() if want_map else (0, 0, 0, 0)
    _masked_fwd_kernel[grid](
        pred, target, mask, g, k, s_map if want_map else pred, partials, c, h, w, ho, wo, *pred.stride(),
        *target.stride(), *mask.stride(), *ms,
        WIN_R=win_size[0], WIN_C=win_size[1], OFF_R=off_r, OFF_C=off_c, PADDING=padding, WANT_MAP=want_map,
        ACC=acc_tl, IEEE=acc_tl == tl.float32, OUT=OUT, IN=IN, num_warps=8)
    return partials.sum(1).view(n, c, 4), s_map


def ssim_masked_bwd(pred, target, mask, win_size, win_sigma, c1, c2, padding, d_planes, d_map, need_grad_pred,
                    need_grad_target):
    if pred.dtype == torch.float64 or pred.dim() == 5:
        return reference.ssim_masked_bwd(pred, target, mask, win_size, win_sigma, c1, c2, padding, d_planes, d_map,
                                         need_grad_pred, need_grad_target)
    n, c, h, w = pred.shape
    acc_t, acc_tl = _acc(pred.dtype)
    ho, wo, off_r, off_c = _geometry(pred, win_size, padding)
    g, k = _constants(pred, win_size, win_sigma, c1, c2, acc_t)
    gx = torch.empty_like(pred) if need_grad_pred else pred.new_empty((0,))
    gy = torch.empty_like(pred) if need_grad_target else pred.new_empty((0,))
    if not (need_grad_pred or need_grad_target):
        return gx, gy
    ref = gx if need_grad_pred else gy
    m, src = _grad_tiles(win_size)
    d = d_map if d_map is not None else pred
    grid = (triton.cdiv(w, m - win_size[1] + 1), triton.cdiv(h, m - win_size[0] + 1), n * c)
    _masked_grad_kernel[grid](
        pred, target, mask, g, k, d_planes.to(acc_t).contiguous(), d, gx if need_grad_pred else ref,
        gy if need_grad_target else ref, c, h, w, ho, wo, *pred.stride(), *target.stride(), *mask.stride(),
        *d.stride(), *ref.stride(),
        WIN_R=win_size[0], WIN_C=win_size[1], OFF_R=off_r, OFF_C=off_c, PADDING=padding, HAS_DMAP=d_map is not None,
        WRITE_X=need_grad_pred, WRITE_Y=need_grad_target, ACC=acc_tl, IEEE=acc_tl == tl.float32, M=m, SRC=src,
        num_warps=8)
    return gx, gy
