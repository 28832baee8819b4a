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
Volumes (N, C, D, H, W): ssim_volume.py's _depth_kernel (HAS_MASK) blurs the six products along the depth (the mask
padded with ones, the images with zeros, as in 2-D) into (6, N, C, Do, H, W) accumulator-dtype
volumes; each output slice then takes the 2-D path on them (_masked_stats_q: the same banded
products, W, the normalisation) in _masked_vol_fwd_kernel and _masked_vol_adjoint_kernel, and the
depth adjoint is fastiqa/backends/triton/ssim_volume.py's, times m (HAS_MASK). The L1 sums of
l1_ssim_loss are two torch reductions.
float64 runs the reference (tl.dot has no float64 lowering on the GPU).
"""
import torch
import triton
import triton.language as tl

from ..._codes import Padding
from .. import reference
from . import ssim_volume as SV
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
    w, ok, inv = _weight(g_ptr, _blur(m, er, ec, IEEE), p0r, p0c, H, W, Ho, Wo, ROWS, WIN_R, WIN_C, OFF_R, OFF_C,
                         PADDING, ACC)
    return (w, _blur(mx, er, ec, IEEE) * inv, _blur(my, er, ec, IEEE) * inv, _blur(mx * x, er, ec, IEEE) * inv,
            _blur(my * y, er, ec, IEEE) * inv, _blur(mx * y, er, ec, IEEE) * inv, ok)


@triton.jit
def _weight(g_ptr, gm, p0r, p0c, H, W, Ho, Wo, ROWS: tl.constexpr, WIN_R: tl.constexpr, WIN_C: tl.constexpr,
            OFF_R: tl.constexpr, OFF_C: tl.constexpr, PADDING: tl.constexpr, ACC: tl.constexpr):
    """(W, W > 0, 1 / W or 0) from G*m over the image (gm): zero padding adds the taps outside."""
    pr = _missing(g_ptr, p0r, H, Ho, ROWS, WIN_R, OFF_R, PADDING, ACC)[:, None]
    pc = _missing(g_ptr + WIN_R, p0c, W, Wo, ROWS, WIN_C, OFF_C, PADDING, ACC)[None, :]
    w = gm + (pr + pc - pr * pc)
    ok = w > 0
    return w, ok, tl.where(ok, 1.0 / tl.where(ok, w, 1.0), 0.0)


@triton.jit
def _masked_stats_q(q_ptr, QS, g_ptr, p0r, p0c, H, W, Ho, Wo, ROWS: tl.constexpr, SRC: tl.constexpr,
                    WIN_R: tl.constexpr, WIN_C: tl.constexpr, OFF_R: tl.constexpr, OFF_C: tl.constexpr,
                    PADDING: tl.constexpr, ACC: tl.constexpr, IEEE: tl.constexpr):
    """_masked_stats of one slice of the depth-blurred products (q_ptr: the slice of m x; m y,
    m x^2, m y^2, m x y, m follow, QS elements apart: ssim_volume.py's _depth_kernel with HAS_MASK);
    each tile blurred as soon as it is loaded (shared memory for one)."""
    s0r = tl.maximum(p0r - OFF_R, 0)
    s0c = tl.maximum(p0c - OFF_C, 0)
    er = _band(g_ptr, p0r, s0r, H, Ho, ROWS, SRC, WIN_R, OFF_R, PADDING, ACC)
    ec = _band(g_ptr + WIN_R, p0c, s0c, W, Wo, ROWS, SRC, WIN_C, OFF_C, PADDING, ACC)
    t, _ = _load_tile(q_ptr + 5 * QS, s0r, s0c, H, W, W, 1, SRC, SRC, ACC)
    w, ok, inv = _weight(g_ptr, _blur(t, er, ec, IEEE), p0r, p0c, H, W, Ho, Wo, ROWS, WIN_R, WIN_C, OFF_R, OFF_C,
                         PADDING, ACC)
    t, _ = _load_tile(q_ptr, s0r, s0c, H, W, W, 1, SRC, SRC, ACC)
    mx = _blur(t, er, ec, IEEE) * inv
    t, _ = _load_tile(q_ptr + QS, s0r, s0c, H, W, W, 1, SRC, SRC, ACC)
    my = _blur(t, er, ec, IEEE) * inv
    t, _ = _load_tile(q_ptr + 2 * QS, s0r, s0c, H, W, W, 1, SRC, SRC, ACC)
    exx = _blur(t, er, ec, IEEE) * inv
    t, _ = _load_tile(q_ptr + 3 * QS, s0r, s0c, H, W, W, 1, SRC, SRC, ACC)
    eyy = _blur(t, er, ec, IEEE) * inv
    t, _ = _load_tile(q_ptr + 4 * QS, s0r, s0c, H, W, W, 1, SRC, SRC, ACC)
    return w, mx, my, exx, eyy, _blur(t, er, ec, IEEE) * inv, ok


@triton.jit
def _ssim_of(mx, my, exx, eyy, exy, c1, c2):
    mxy = mx * my
    mxx = mx * mx
    myy = my * my
    return (2 * mxy + c1) / (mxx + myy + c1) * ((2 * (exy - mxy) + c2) / ((exx - mxx) + (eyy - myy) + c2))


@triton.jit
def _masked_coefficients(mx, my, exx, eyy, exy, ws, valid, c1, c2):
    """The four coefficient maps of the adjoint blur (ws: d loss / d S, already over W)."""
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
    return dax, day, dbb, dcc


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
    s = _ssim_of(mx, my, exx, eyy, exy, c1, c2)
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
    dax, day, dbb, dcc = _masked_coefficients(mx, my, exx, eyy, exy, ws, valid, c1, c2)
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


@triton.jit
def _masked_vol_fwd_kernel(q_ptr, m_ptr, g_ptr, k_ptr, map_ptr, part_ptr, C, H, W, Do, Ho, Wo, QS, CD,
                           smn, smc, smd, smh, smw, spn, spc, spd, sph, spw,
                           WIN_R: tl.constexpr, WIN_C: tl.constexpr, OFF_R: tl.constexpr, OFF_C: tl.constexpr,
                           PADDING: tl.constexpr, WANT_MAP: tl.constexpr, ACC: tl.constexpr, IEEE: tl.constexpr,
                           OUT: tl.constexpr, IN: tl.constexpr):
    """One OUT x OUT tile of output slice p: the map and the partials (m_c S, m_c); CD = the window
    centre's depth offset (wd // 2 - offd)."""
    pl = tl.program_id(0)  # output slice over N * C * Do
    n, c, p, _ = SV._plane_of(pl, C, Do)
    p0r = tl.program_id(2) * OUT
    p0c = tl.program_id(1) * OUT
    w, mx, my, exx, eyy, exy, ok = _masked_stats_q(q_ptr + pl.to(tl.int64) * H * W, QS, g_ptr, p0r, p0c, H, W, Ho,
                                                   Wo, OUT, IN, WIN_R, WIN_C, OFF_R, OFF_C, PADDING, ACC, IEEE)
    s = _ssim_of(mx, my, exx, eyy, exy, tl.load(k_ptr), tl.load(k_ptr + 1))
    r = p0r + tl.arange(0, OUT)[:, None]
    q = p0c + tl.arange(0, OUT)[None, :]
    valid = (r < Ho) & (q < Wo)
    s = tl.where(valid & ok, s, 0.0)
    mb = m_ptr + n.to(tl.int64) * smn + c.to(tl.int64) * smc + (p + CD).to(tl.int64) * smd
    mc, _ = _load_tile(mb, p0r + (WIN_R // 2 - OFF_R), p0c + (WIN_C // 2 - OFF_C), H, W, smh, smw, OUT, OUT, ACC)
    mc = tl.where(valid, mc, 0.0)
    if WANT_MAP:
        mp = map_ptr + n.to(tl.int64) * spn + c.to(tl.int64) * spc + p.to(tl.int64) * spd \
            + r.to(tl.int64) * sph + q.to(tl.int64) * spw
        tl.store(mp, s.to(map_ptr.dtype.element_ty), mask=valid)
    tile = tl.program_id(2) * tl.num_programs(1) + tl.program_id(1)
    base = part_ptr + (pl.to(tl.int64) * tl.num_programs(1) * tl.num_programs(2) + tile) * 2
    tl.store(base, tl.sum(tl.sum(mc * s, axis=1), axis=0))
    tl.store(base + 1, tl.sum(tl.sum(mc, axis=1), axis=0))


@triton.jit
def _masked_vol_adjoint_kernel(q_ptr, m_ptr, g_ptr, k_ptr, w_ptr, dmap_ptr, t_ptr, C, H, W, Do, Ho, Wo, QS, TS,
                               CD, smn, smc, smd, smh, smw, sdn, sdc, sdd, sdh, sdw,
                               WIN_R: tl.constexpr, WIN_C: tl.constexpr, OFF_R: tl.constexpr,
                               OFF_C: tl.constexpr, PADDING: tl.constexpr, HAS_DMAP: tl.constexpr,
                               ACC: tl.constexpr, IEEE: tl.constexpr, M: tl.constexpr, SRC: tl.constexpr):
    """The (H, W) adjoint of output slice p's coefficient maps onto its source tile, into t
    (4, N * C * Do, H, W): as _masked_grad_kernel, before the depth adjoint and the product with m."""
    GR: tl.constexpr = M - WIN_R + 1
    GC: tl.constexpr = M - WIN_C + 1
    pl = tl.program_id(0)
    n, c, p, nc = SV._plane_of(pl, C, Do)
    t0r = tl.program_id(2) * GR
    t0c = tl.program_id(1) * GC
    m0r = t0r + OFF_R - (WIN_R - 1)
    m0c = t0c + OFF_C - (WIN_C - 1)
    w, mx, my, exx, eyy, exy, ok = _masked_stats_q(q_ptr + pl.to(tl.int64) * H * W, QS, g_ptr, m0r, m0c, H, W, Ho,
                                                   Wo, M, SRC, WIN_R, WIN_C, OFF_R, OFF_C, PADDING, ACC, IEEE)
    r = m0r + tl.arange(0, M)[:, None]
    q = m0c + tl.arange(0, M)[None, :]
    valid = (r >= 0) & (r < Ho) & (q >= 0) & (q < Wo) & ok
    mb = m_ptr + n.to(tl.int64) * smn + c.to(tl.int64) * smc + (p + CD).to(tl.int64) * smd
    mc, _ = _load_tile(mb, m0r + (WIN_R // 2 - OFF_R), m0c + (WIN_C // 2 - OFF_C), H, W, smh, smw, M, M, ACC)
    ws = tl.where(valid, mc * tl.load(w_ptr + nc * 4), 0.0)
    if HAS_DMAP:
        db_ = dmap_ptr + n.to(tl.int64) * sdn + c.to(tl.int64) * sdc + p.to(tl.int64) * sdd \
            + r.to(tl.int64) * sdh + q.to(tl.int64) * sdw
        ws += tl.load(db_, mask=valid, other=0).to(ACC)
    ws = ws * tl.where(valid, 1.0 / tl.where(valid, w, 1.0), 0.0)
    dax, day, dbb, dcc = _masked_coefficients(mx, my, exx, eyy, exy, ws, valid, tl.load(k_ptr), tl.load(k_ptr + 1))
    SV._store_adjoints(t_ptr, TS, pl, g_ptr, dax, day, dbb, dcc, dbb, m0r, m0c, t0r, t0c, H, W, Ho, Wo, WIN_R, WIN_C,
                       OFF_R, OFF_C, PADDING, False, ACC, IEEE, M)


def _constants(x, win_size, win_sigma, c1, c2, acc_t):
    return (torch.cat(reference.windows(win_size, win_sigma, 2, acc_t, x.device)),
            torch.tensor([c1, c2], dtype=acc_t, device=x.device))


def _volume_setup(x, y, mask, win_size, win_sigma, c1, c2, padding):
    """(geometry, acc dtypes, (H, W) windows, [c1, c2], the depth-blurred products q)."""
    n, c, d, h, w = x.shape
    acc_t, acc_tl = _acc(x.dtype)
    (do, ho, wo), (offd, offh, offw) = SV._geometry(x, win_size, padding)
    gd, gh, gw = reference.windows(win_size, win_sigma, 3, acc_t, x.device)
    q = torch.empty((6, n, c, do, h, w), dtype=acc_t, device=x.device)
    SV._depth_kernel[(n * c * do, triton.cdiv(h * w, SV.BLOCK))](
        x, y, mask, gd, q, c, d, h, w, do, q.stride(0), *x.stride(), *y.stride(), *mask.stride(),
        WD=win_size[0], OFFD=offd, PADDING=padding, HAS_MASK=True, ACC=acc_tl, BLOCK=SV.BLOCK, num_warps=4)
    k = torch.tensor([c1, c2], dtype=acc_t, device=x.device)
    return (do, ho, wo), (offd, offh, offw), acc_t, acc_tl, gd, torch.cat([gh, gw]), k, q


def _volume_fwd(pred, target, mask, win_size, win_sigma, c1, c2, padding, want_map):
    n, c, d, h, w = pred.shape
    (do, ho, wo), (offd, offh, offw), acc_t, acc_tl, _, ghw, k, q = _volume_setup(
        pred, target, mask, win_size, win_sigma, c1, c2, padding)
    s_map = torch.empty((n, c, do, ho, wo), dtype=pred.dtype, device=pred.device) if want_map \
        else pred.new_empty((0,))
    grid = (n * c * do, triton.cdiv(w, OUT), triton.cdiv(h, OUT))
    partials = torch.empty((n * c * do, grid[1] * grid[2], 2), dtype=acc_t, device=pred.device)
    ms = s_map.stride() if want_map else (0,) * 5
    _masked_vol_fwd_kernel[grid](
        q, mask, ghw, k, s_map if want_map else q, partials, c, h, w, do, ho, wo, q.stride(0),
        win_size[0] // 2 - offd, *mask.stride(), *ms,
        WIN_R=win_size[1], WIN_C=win_size[2], OFF_R=offh, OFF_C=offw, PADDING=padding, WANT_MAP=want_map,
        ACC=acc_tl, IEEE=acc_tl == tl.float32, OUT=OUT, IN=IN, num_warps=8)
    m = mask.to(acc_t)
    dims = (2, 3, 4)
    l1 = (m * (pred.to(acc_t) - target.to(acc_t)).abs()).sum(dims)
    sums = partials.view(n, c, -1, 2).sum(2)
    return torch.cat([sums, l1[..., None], m.sum(dims)[..., None]], -1), s_map


def _volume_bwd(pred, target, mask, win_size, win_sigma, c1, c2, padding, d_planes, d_map, need_gx, need_gy):
    n, c, d, h, w = pred.shape
    gx = torch.empty_like(pred) if need_gx else pred.new_empty((0,))
    gy = torch.empty_like(pred) if need_gy else pred.new_empty((0,))
    if not (need_gx or need_gy):
        return gx, gy
    (do, ho, wo), (offd, offh, offw), acc_t, acc_tl, gd, ghw, k, q = _volume_setup(
        pred, target, mask, win_size, win_sigma, c1, c2, padding)
    dp = d_planes.to(acc_t).reshape(n * c, 4).contiguous()
    t = torch.empty((4, n, c, do, h, w), dtype=acc_t, device=pred.device)
    dm = d_map if d_map is not None else pred
    m_, _ = _grad_tiles(win_size[1:])
    grid = (n * c * do, triton.cdiv(w, m_ - win_size[2] + 1), triton.cdiv(h, m_ - win_size[1] + 1))
    _masked_vol_adjoint_kernel[grid](
        q, mask, ghw, k, dp, dm, t, c, h, w, do, ho, wo, q.stride(0), t.stride(0), win_size[0] // 2 - offd,
        *mask.stride(), *dm.stride(),
        WIN_R=win_size[1], WIN_C=win_size[2], OFF_R=offh, OFF_C=offw, PADDING=padding, HAS_DMAP=d_map is not None,
        ACC=acc_tl, IEEE=acc_tl == tl.float32, M=m_, SRC=m_ * 2, num_warps=8)
    # the volume kernels' depth adjoint reads the L1 weight as w[nc, 2] * k[3]: the masked sum's
    # weight d_planes[..., 2] (its normalisation is in fastiqa/functional/_ssim_masked.py)
    wl = torch.zeros((n * c, 3), dtype=acc_t, device=pred.device)
    wl[:, 2] = dp[:, 2]
    kd = torch.tensor([c1, c2, 0.0, 1.0], dtype=acc_t, device=pred.device)
    ref = gx if need_gx else gy
    SV._depth_adjoint_kernel[(n * c * d, triton.cdiv(h * w, SV.BLOCK))](
        pred, target, gd, kd, wl, t, mask, gx if need_gx else ref, gy if need_gy else ref, c, d, h, w, do,
        t.stride(0), *pred.stride(), *target.stride(), *mask.stride(), *ref.stride(),
        WD=win_size[0], OFFD=offd, MIRRORS=3 if padding == Padding.SAME_REFLECT else 1, ACC=acc_tl,
        HAS_MASK=True, WRITE_X=need_gx, WRITE_Y=need_gy, COMP=False, NW=3, BLOCK=SV.BLOCK, num_warps=4)
    return gx, gy


def ssim_masked_fwd(pred, target, mask, win_size, win_sigma, c1, c2, padding, want_map):
    if pred.dtype == torch.float64:
        return reference.ssim_masked_fwd(pred, target, mask, win_size, win_sigma, c1, c2, padding, want_map)
    if pred.dim() == 5:
        return _volume_fwd(pred, target, mask, win_size, win_sigma, c1, c2, padding, want_map)
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
    if pred.dtype == torch.float64:
        return reference.ssim_masked_bwd(pred, target, mask, win_size, win_sigma, c1, c2, padding, d_planes, d_map,
                                         need_grad_pred, need_grad_target)
    if pred.dim() == 5:
        return _volume_bwd(pred, target, mask, win_size, win_sigma, c1, c2, padding, d_planes, d_map, need_grad_pred,
                           need_grad_target)
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
