"""Triton kernels of the SSIM family on volumes (N, C, D, H, W), a separable 3-D window
(wd, wh, ww taps): the plane kernels that fastiqa/backends/triton/ssim.py calls for 5-D inputs
(same contract as csrc/cpu/ssim_volume.h; the (H, W) blurs are the band-matrix products of
ssim.py, E_r @ X @ E_c^T, every padding the same code).

Forward, two kernels: _depth_kernel blurs x, y, x^2, y^2, xy along depth (one program per
output slice and block of (H, W) positions; zero or reflect padding by index) into five
accumulator-dtype volumes of (N, C, Do, H, W); _plane_kernel then blurs each output slice of
them in (H, W) (one program per OUT x OUT tile of one slice) and writes the SSIM map if asked
plus one (S, cs) partial pair; partials are summed by torch in tile order (bitwise
reproducible). |x - y| is summed by torch.
Gradient, three kernels (nothing saved between forward and backward): the depth blur again;
_adjoint_hw_kernel recomputes the statistics on the M x M output region that reads a
GR x GC source tile of one output slice, forms the four coefficient maps
(csrc/common/ssim_math.h) and applies the (H, W) adjoint blur E_r^T @ M @ E_c into four
(N, C, Do, H, W) volumes; _depth_adjoint_kernel applies the depth adjoint (reflect padding
folded back onto the mirrored slice) and combines them with x and y into the gradients.
COMP (the components l, c, s, csrc/common/ssim_math.h): the plane kernel adds their sums (partials
of 5: S, cs, l, c, s) and the 4 maps S, l, c, s; the gradient keeps five adjoint volumes (dbx and
dby, the variance coefficients of x and y, differ). float64 runs the reference (tl.dot has no
float64 lowering on the GPU).
"""
import torch
import triton
import triton.language as tl

from ..._codes import Padding
from .. import reference
from .ssim_tiles import (
    IN,
    OUT,
    _acc,
    _band,
    _blur,
    _coefficients,
    _component_coefficients,
    _components_out,
    _load_tile,
    _mm,
    _src,
)

_ZERO = tl.constexpr(int(Padding.SAME_ZERO))
BLOCK = 1024  # (H, W) positions per program of the depth kernels
GRAD_M, GRAD_SRC = 32, 64  # gradient: 32 x 32 output regions from 64 x 64 source tiles (as ssim.py)


@triton.jit
def _plane_of(pl, C, Dn):
    """(image, channel, slice) of program plane pl over N * C * Dn slices."""
    nc = pl // Dn
    return nc // C, nc % C, pl % Dn, nc


@triton.jit
def _slice_block(C, Dn, H, W, BLOCK: tl.constexpr):
    """Program (slice, block): (plane pl over N * C * Dn slices, image, channel, slice, plane index,
    the block's (H, W) positions e, e < H * W, their rows and columns)."""
    pl = tl.program_id(0)
    n, c, p, nc = _plane_of(pl, C, Dn)
    e = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    return pl, n, c, p, nc, e, e < H * W, (e // W).to(tl.int64), (e % W).to(tl.int64)


@triton.jit
def _at(n, c, r, col, sn, sc, sh, sw):
    """Offset of (n, c, row r, column col) of a slice (the depth stride added by the caller)."""
    return n.to(tl.int64) * sn + c.to(tl.int64) * sc + r * sh + col * sw


@triton.jit
def _depth_kernel(x_ptr, y_ptr, m_ptr, g_ptr, q_ptr, C, D, H, W, Do, QS,
                  sxn, sxc, sxd, sxh, sxw, syn, syc, syd, syh, syw, smn, smc, smd, smh, smw,
                  WD: tl.constexpr, OFFD: tl.constexpr, PADDING: tl.constexpr, HAS_MASK: tl.constexpr,
                  ACC: tl.constexpr, BLOCK: tl.constexpr):
    """Depth blur of x, y, x^2, y^2, xy for output slice p of one plane into q[0 .. 4]; with
    HAS_MASK (fastiqa/backends/triton/ssim_masked.py) of m x, m y, m x^2, m y^2, m x y and m itself
    into q[5] (zero padding: the padded slices' m is 1, their values 0)."""
    pl, n, c, p, _, e, inb, r, col = _slice_block(C, Do, H, W, BLOCK)
    xo = _at(n, c, r, col, sxn, sxc, sxh, sxw)
    yo = _at(n, c, r, col, syn, syc, syh, syw)
    a0 = tl.zeros([BLOCK], ACC)
    a1 = tl.zeros([BLOCK], ACC)
    a2 = tl.zeros([BLOCK], ACC)
    a3 = tl.zeros([BLOCK], ACC)
    a4 = tl.zeros([BLOCK], ACC)
    a5 = tl.zeros([BLOCK], ACC)
    # the depth index as a block (not a scalar): the interpreters of triton 3.2 ... 3.9 disagree on
    # masks mixing a block with a scalar condition (3.9 refuses the int32 result of m & ok)
    pb = p + tl.zeros([BLOCK], tl.int32)
    for k in tl.static_range(WD):
        s, ok = _src(pb + k, D, OFFD, PADDING)
        gk = tl.load(g_ptr + k)
        mk = inb & ok
        xv = tl.load(x_ptr + xo + s.to(tl.int64) * sxd, mask=mk, other=0).to(ACC)
        yv = tl.load(y_ptr + yo + s.to(tl.int64) * syd, mask=mk, other=0).to(ACC)
        wx = xv
        wy = yv
        if HAS_MASK:
            mv = tl.load(m_ptr + _at(n, c, r, col, smn, smc, smh, smw) + s.to(tl.int64) * smd, mask=mk,
                         other=0).to(ACC)
            if PADDING == _ZERO:
                mv = tl.where(ok, mv, 1.0)
            wx = mv * xv
            wy = mv * yv
            a5 += gk * mv
        a0 += gk * wx
        a1 += gk * wy
        a2 += gk * (wx * xv)
        a3 += gk * (wy * yv)
        a4 += gk * (wx * yv)
    qo = pl.to(tl.int64) * H * W + e
    tl.store(q_ptr + qo, a0, mask=inb)
    tl.store(q_ptr + QS + qo, a1, mask=inb)
    tl.store(q_ptr + 2 * QS + qo, a2, mask=inb)
    tl.store(q_ptr + 3 * QS + qo, a3, mask=inb)
    tl.store(q_ptr + 4 * QS + qo, a4, mask=inb)
    if HAS_MASK:
        tl.store(q_ptr + 5 * QS + qo, a5, mask=inb)


@triton.jit
def _stats(q_ptr, QS, g_ptr, p0r, p0c, H, W, Ho, Wo, ROWS: tl.constexpr, SRC: tl.constexpr,
           WIN_R: tl.constexpr, WIN_C: tl.constexpr, OFF_R: tl.constexpr, OFF_C: tl.constexpr,
           PADDING: tl.constexpr, ACC: tl.constexpr, IEEE: tl.constexpr):
    """The five statistics on the ROWS x ROWS outputs at (p0r, p0c) of one slice of the
    depth-blurred volumes (q_ptr: the slice of the first, QS elements apart)."""
    s0r = tl.maximum(p0r - OFF_R, 0)
    s0c = tl.maximum(p0c - OFF_C, 0)
    er = _band(g_ptr, p0r, s0r, H, Ho, ROWS, SRC, WIN_R, OFF_R, PADDING, ACC)
    ec = _band(g_ptr + WIN_R, p0c, s0c, W, Wo, ROWS, SRC, WIN_C, OFF_C, PADDING, ACC)
    t, _ = _load_tile(q_ptr, s0r, s0c, H, W, W, 1, SRC, SRC, ACC)
    mx = _blur(t, er, ec, IEEE)
    t, _ = _load_tile(q_ptr + QS, s0r, s0c, H, W, W, 1, SRC, SRC, ACC)
    my = _blur(t, er, ec, IEEE)
    t, _ = _load_tile(q_ptr + 2 * QS, s0r, s0c, H, W, W, 1, SRC, SRC, ACC)
    exx = _blur(t, er, ec, IEEE)
    t, _ = _load_tile(q_ptr + 3 * QS, s0r, s0c, H, W, W, 1, SRC, SRC, ACC)
    eyy = _blur(t, er, ec, IEEE)
    t, _ = _load_tile(q_ptr + 4 * QS, s0r, s0c, H, W, W, 1, SRC, SRC, ACC)
    exy = _blur(t, er, ec, IEEE)
    return mx, my, exx, eyy, exy


@triton.jit
def _plane_kernel(q_ptr, g_ptr, k_ptr, map_ptr, part_ptr, H, W, Ho, Wo, QS, smk,
                  WIN_R: tl.constexpr, WIN_C: tl.constexpr, OFF_R: tl.constexpr, OFF_C: tl.constexpr,
                  PADDING: tl.constexpr, WANT_MAP: tl.constexpr, COMP: tl.constexpr, NP: tl.constexpr,
                  ACC: tl.constexpr, IEEE: tl.constexpr, OUT: tl.constexpr, IN: tl.constexpr):
    pl = tl.program_id(0)  # output slice over N * C * Do
    tc = tl.program_id(1)
    tr = tl.program_id(2)
    p0r = tr * OUT
    p0c = tc * OUT
    mx, my, exx, eyy, exy = _stats(q_ptr + pl.to(tl.int64) * H * W, QS, g_ptr, p0r, p0c, H, W, Ho, Wo, OUT, IN,
                                   WIN_R, WIN_C, OFF_R, OFF_C, PADDING, ACC, IEEE)
    c1 = tl.load(k_ptr)
    c2 = tl.load(k_ptr + 1)
    mxy = mx * my
    lum = (2 * mxy + c1) / (mx * mx + my * my + c1)
    cs = (2 * (exy - mxy) + c2) / ((exx - mx * mx) + (eyy - my * my) + c2)
    r = p0r + tl.arange(0, OUT)[:, None]
    q = p0c + tl.arange(0, OUT)[None, :]
    valid = (r < Ho) & (q < Wo)
    s = tl.where(valid, lum * cs, 0.0)
    cs = tl.where(valid, cs, 0.0)
    mb = map_ptr + pl.to(tl.int64) * Ho * Wo + r.to(tl.int64) * Wo + q  # contiguous (N, C, Do, Ho, Wo)
    if WANT_MAP:
        tl.store(mb, s.to(map_ptr.dtype.element_ty), mask=valid)
    tile = tr * tl.num_programs(1) + tc
    base = part_ptr + (pl.to(tl.int64) * tl.num_programs(1) * tl.num_programs(2) + tile) * NP
    tl.store(base, tl.sum(tl.sum(s, axis=1), axis=0))
    tl.store(base + 1, tl.sum(tl.sum(cs, axis=1), axis=0))
    if COMP:  # l, c, s (csrc/common/ssim_math.h ssim_components)
        _components_out(mx, my, exx, eyy, exy, lum, c2, valid, base + 2, mb, smk, WANT_MAP)


@triton.jit
def _store_adjoints(t_ptr, TS, pl, g_ptr, dax, day, dbb, dcc, dby, m0r, m0c, t0r, t0c, H, W, Ho, Wo,
                    WIN_R: tl.constexpr, WIN_C: tl.constexpr, OFF_R: tl.constexpr, OFF_C: tl.constexpr,
                    PADDING: tl.constexpr, COMP: tl.constexpr, ACC: tl.constexpr, IEEE: tl.constexpr,
                    M: tl.constexpr):
    """(H, W) adjoint E_r^T K E_c of the four coefficient maps K of the M x M output region at
    (m0r, m0c) onto the source tile at (t0r, t0c), whose first M - win + 1 rows / columns are this
    program's, into slice pl of t (4 maps TS elements apart; COMP: dby the fifth, else unused)."""
    GR: tl.constexpr = M - WIN_R + 1
    GC: tl.constexpr = M - WIN_C + 1
    er = _band(g_ptr, m0r, t0r, H, Ho, M, M, WIN_R, OFF_R, PADDING, ACC)
    ec = _band(g_ptr + WIN_R, m0c, t0c, W, Wo, M, M, WIN_C, OFF_C, PADDING, ACC)
    ert = tl.trans(er)
    rr = t0r + tl.arange(0, M)[:, None]
    qq = t0c + tl.arange(0, M)[None, :]
    own = (rr < H) & (qq < W) & (tl.arange(0, M)[:, None] < GR) & (tl.arange(0, M)[None, :] < GC)
    to = t_ptr + pl.to(tl.int64) * H * W + rr.to(tl.int64) * W + qq
    tl.store(to, _mm(ert, _mm(dax, ec, IEEE), IEEE), mask=own)
    tl.store(to + TS, _mm(ert, _mm(day, ec, IEEE), IEEE), mask=own)
    tl.store(to + 2 * TS, _mm(ert, _mm(dbb, ec, IEEE), IEEE), mask=own)
    tl.store(to + 3 * TS, _mm(ert, _mm(dcc, ec, IEEE), IEEE), mask=own)
    if COMP:  # dF/dy's variance coefficient
        tl.store(to + 4 * TS, _mm(ert, _mm(dby, ec, IEEE), IEEE), mask=own)


@triton.jit
def _adjoint_hw_kernel(q_ptr, g_ptr, k_ptr, w_ptr, dmap_ptr, t_ptr, C, H, W, Do, Ho, Wo, QS, TS,
                       sdn, sdc, sdd, sdh, sdw, sdk,
                       WIN_R: tl.constexpr, WIN_C: tl.constexpr, OFF_R: tl.constexpr, OFF_C: tl.constexpr,
                       PADDING: tl.constexpr, HAS_DMAP: tl.constexpr, COMP: tl.constexpr, NW: tl.constexpr,
                       ACC: tl.constexpr, IEEE: tl.constexpr, M: tl.constexpr, SRC: tl.constexpr):
    GR: tl.constexpr = M - WIN_R + 1  # this program's source rows
    GC: tl.constexpr = M - WIN_C + 1  # and columns
    pl = tl.program_id(0)  # output slice over N * C * Do
    n, c, p, nc = _plane_of(pl, C, Do)
    t0r = tl.program_id(2) * GR
    t0c = tl.program_id(1) * GC
    m0r = t0r + OFF_R - (WIN_R - 1)
    m0c = t0c + OFF_C - (WIN_C - 1)
    mx, my, exx, eyy, exy = _stats(q_ptr + pl.to(tl.int64) * H * W, QS, g_ptr, m0r, m0c, H, W, Ho, Wo, M, SRC,
                                   WIN_R, WIN_C, OFF_R, OFF_C, PADDING, ACC, IEEE)
    c1 = tl.load(k_ptr)
    c2 = tl.load(k_ptr + 1)
    ws = tl.load(w_ptr + nc * NW) * tl.load(k_ptr + 2)
    wc = tl.load(w_ptr + nc * NW + 1) * tl.load(k_ptr + 2)
    r = m0r + tl.arange(0, M)[:, None]
    q = m0c + tl.arange(0, M)[None, :]
    valid = (r >= 0) & (r < Ho) & (q >= 0) & (q < Wo)
    wsm = tl.zeros([M, M], ACC) + ws
    db_ = dmap_ptr + n.to(tl.int64) * sdn + c.to(tl.int64) * sdc + p.to(tl.int64) * sdd \
        + r.to(tl.int64) * sdh + q.to(tl.int64) * sdw
    if HAS_DMAP:
        wsm += tl.load(db_, mask=valid, other=0).to(ACC)
    mxy = mx * my
    mxx = mx * mx
    myy = my * my
    inv_b1 = 1.0 / (mxx + myy + c1)
    inv_b2 = 1.0 / ((exx - mxx) + (eyy - myy) + c2)
    lum = (2 * mxy + c1) * inv_b1
    cs = (2 * (exy - mxy) + c2) * inv_b2
    if COMP:  # ssim_components_grad of csrc/common/ssim_math.h
        dax, day, dbb, dby, dcc = _component_coefficients(mx, my, exx, eyy, exy, lum, cs, inv_b1, inv_b2, c2, wsm,
                                                          wc, w_ptr + nc * NW, tl.load(k_ptr + 2), db_, sdk, valid,
                                                          HAS_DMAP, M, ACC)
    else:
        dax, day, dbb, dcc = _coefficients(mx, my, lum, cs, inv_b1, inv_b2, wsm, wc)
        dby = dbb
    dax = tl.where(valid, dax, 0.0)
    day = tl.where(valid, day, 0.0)
    dbb = tl.where(valid, dbb, 0.0)
    dcc = tl.where(valid, dcc, 0.0)
    _store_adjoints(t_ptr, TS, pl, g_ptr, dax, day, dbb, dcc, tl.where(valid, dby, 0.0), m0r, m0c, t0r, t0c, H, W, Ho,
                    Wo, WIN_R, WIN_C, OFF_R, OFF_C, PADDING, COMP, ACC, IEEE, M)


@triton.jit
def _depth_adjoint_kernel(x_ptr, y_ptr, g_ptr, k_ptr, w_ptr, t_ptr, m_ptr, gx_ptr, gy_ptr, C, D, H, W, Do, TS,
                          sxn, sxc, sxd, sxh, sxw, syn, syc, syd, syh, syw, smn, smc, smd, smh, smw,
                          sgn, sgc, sgd, sgh, sgw,
                          WD: tl.constexpr, OFFD: tl.constexpr, MIRRORS: tl.constexpr, ACC: tl.constexpr,
                          HAS_MASK: tl.constexpr, WRITE_X: tl.constexpr, WRITE_Y: tl.constexpr, COMP: tl.constexpr,
                          NW: tl.constexpr, BLOCK: tl.constexpr):
    """The depth adjoint of t's four maps (COMP: five, dby the fifth) onto source slice s, combined with
    x and y into the gradients (times the mask m for the masked SSIM, fastiqa/backends/triton/ssim_masked.py)."""
    pl, n, c, s, nc, e, m, r, col = _slice_block(C, D, H, W, BLOCK)  # source slice over N * C * D
    a0 = tl.zeros([BLOCK], ACC)
    a1 = tl.zeros([BLOCK], ACC)
    a2 = tl.zeros([BLOCK], ACC)
    a3 = tl.zeros([BLOCK], ACC)
    a4 = tl.zeros([BLOCK], ACC)  # COMP: dF/dy's variance coefficient
    # the padded slices that read s: s + OFFD, and (reflect, MIRRORS = 3) the mirrored ones; s as a
    # block (see _depth_kernel)
    sb = s + tl.zeros([BLOCK], tl.int32)
    for t in tl.static_range(MIRRORS):
        if t == 0:
            u = sb + OFFD
            ok_t = sb >= 0
        elif t == 1:
            u = OFFD - sb
            ok_t = (sb >= 1) & (sb <= OFFD)
        else:
            u = OFFD + 2 * (D - 1) - sb
            ok_t = (sb >= D - 1 - OFFD) & (sb <= D - 2)
        for k in tl.static_range(WD):
            pp = u - k
            ok = ok_t & (pp >= 0) & (pp < Do)
            gk = tl.load(g_ptr + k)
            to = t_ptr + (nc * Do + pp).to(tl.int64) * H * W + e
            mk = m & ok
            a0 += gk * tl.load(to, mask=mk, other=0)
            a1 += gk * tl.load(to + TS, mask=mk, other=0)
            a2 += gk * tl.load(to + 2 * TS, mask=mk, other=0)
            a3 += gk * tl.load(to + 3 * TS, mask=mk, other=0)
            if COMP:
                a4 += gk * tl.load(to + 4 * TS, mask=mk, other=0)
    xv = tl.load(x_ptr + n.to(tl.int64) * sxn + c.to(tl.int64) * sxc + s.to(tl.int64) * sxd + r * sxh + col * sxw,
                 mask=m, other=0).to(ACC)
    yv = tl.load(y_ptr + n.to(tl.int64) * syn + c.to(tl.int64) * syc + s.to(tl.int64) * syd + r * syh + col * syw,
                 mask=m, other=0).to(ACC)
    d = xv - yv
    wl = tl.load(w_ptr + nc * NW + 2) * tl.load(k_ptr + 3)
    sign = tl.where(d > 0, 1.0, tl.where(d < 0, -1.0, 0.0)).to(ACC) * wl
    go = n.to(tl.int64) * sgn + c.to(tl.int64) * sgc + s.to(tl.int64) * sgd + r * sgh + col * sgw
    gxv = a0 + 2 * xv * a2 + yv * a3 + sign
    gyv = a1 + 2 * yv * (a4 if COMP else a2) + xv * a3 - sign
    if HAS_MASK:
        mv = tl.load(m_ptr + n.to(tl.int64) * smn + c.to(tl.int64) * smc + s.to(tl.int64) * smd + r * smh
                     + col * smw, mask=m, other=0).to(ACC)
        gxv = mv * gxv
        gyv = mv * gyv
    if WRITE_X:
        tl.store(gx_ptr + go, gxv.to(gx_ptr.dtype.element_ty), mask=m)
    if WRITE_Y:
        tl.store(gy_ptr + go, gyv.to(gy_ptr.dtype.element_ty), mask=m)


def _geometry(x, win_size, padding):
    """(output sizes (Do, Ho, Wo), offsets (D, H, W))."""
    if padding == Padding.VALID:
        return tuple(s - k + 1 for s, k in zip(x.shape[2:], win_size)), (0, 0, 0)
    return tuple(x.shape[2:]), tuple(k // 2 for k in win_size)


def _setup(x, win_size, win_sigma, c1, c2, padding):
    """(depth window, (H, W) windows concatenated, [c1, c2, 1 / output voxels, 1 / input voxels])
    in the accumulator dtype."""
    acc_t, _ = _acc(x.dtype)
    out, _ = _geometry(x, win_size, padding)
    gd, gh, gw = reference.windows(win_size, win_sigma, 3, acc_t, x.device)
    k = torch.tensor([c1, c2, 1.0 / (out[0] * out[1] * out[2]), 1.0 / x[0, 0].numel()], dtype=acc_t, device=x.device)
    return gd, torch.cat([gh, gw]), k


def _depth_blur(x, y, gd, win_size, padding):
    """The depth-blurred x, y, x^2, y^2, xy: (5, N, C, Do, H, W) in the accumulator dtype."""
    n, c, d, h, w = x.shape
    acc_t, acc_tl = _acc(x.dtype)
    (do, _, _), (offd, _, _) = _geometry(x, win_size, padding)
    q = torch.empty((5, n, c, do, h, w), dtype=acc_t, device=x.device)
    _depth_kernel[(n * c * do, triton.cdiv(h * w, BLOCK))](
        x, y, x, gd, q, c, d, h, w, do, q.stride(0), *x.stride(), *y.stride(), *x.stride(),
        WD=win_size[0], OFFD=offd, PADDING=padding, HAS_MASK=False, ACC=acc_tl, BLOCK=BLOCK, num_warps=4)
    return q


def planes_fwd(pred, target, win_size, win_sigma, c1, c2, padding, want_map, want_l1, components, d_planes,
               need_grad_pred, need_grad_target):
    if pred.dtype == torch.float64:
        return reference.planes_fwd(pred, target, win_size, win_sigma, c1, c2, padding, want_map, want_l1,
                                    components, d_planes, need_grad_pred, need_grad_target)
    n, c, d, h, w = pred.shape
    acc_t, acc_tl = _acc(pred.dtype)
    (do, ho, wo), (_, offh, offw) = _geometry(pred, win_size, padding)
    gd, ghw, k = _setup(pred, win_size, win_sigma, c1, c2, padding)
    q = _depth_blur(pred, target, gd, win_size, padding)
    nm, np_ = (4, 5) if components else (1, 2)  # the components' maps S, l, c, s: (4 N, ...) viewed as (4, N, ...)
    s_map = torch.empty((nm * n, c, do, ho, wo), dtype=pred.dtype, device=pred.device) if want_map \
        else pred.new_empty((0,))
    grid = (n * c * do, triton.cdiv(w, OUT), triton.cdiv(h, OUT))
    partials = torch.empty((n * c * do, grid[1] * grid[2], np_), dtype=acc_t, device=pred.device)
    smk = n * s_map.stride(0) if want_map else 0  # the components' maps apart
    _plane_kernel[grid](
        q, ghw, k, s_map if want_map else q, partials, h, w, ho, wo, q.stride(0), smk,
        WIN_R=win_size[1], WIN_C=win_size[2], OFF_R=offh, OFF_C=offw, PADDING=padding, WANT_MAP=want_map,
        COMP=components, NP=np_, ACC=acc_tl, IEEE=acc_tl == tl.float32, OUT=OUT, IN=IN, num_warps=8)
    sums = partials.view(n, c, -1, np_).sum(2) / (do * ho * wo)
    if want_l1:
        l1 = (pred.to(acc_t) - target.to(acc_t)).abs().mean((2, 3, 4))
    else:
        l1 = torch.zeros((n, c), dtype=acc_t, device=pred.device)
    planes = torch.cat([sums[..., :2], l1[..., None], sums[..., 2:]], -1)  # S, cs, |x-y| (, l, c, s)
    if want_map and components:
        s_map = s_map.view(4, n, c, do, ho, wo)
    if d_planes is None or not (need_grad_pred or need_grad_target):
        return planes, s_map, pred.new_empty((0,)), pred.new_empty((0,))
    gx, gy = _grads(pred, target, win_size, win_sigma, c1, c2, padding, d_planes, None, need_grad_pred,
                    need_grad_target, q)
    return planes, s_map, gx, gy


def _grads(x, y, win_size, win_sigma, c1, c2, padding, weights, dmap, need_gx, need_gy, q=None):
    n, c, d, h, w = x.shape
    gx = torch.empty_like(x) if need_gx else x.new_empty((0,))
    gy = torch.empty_like(x) if need_gy else x.new_empty((0,))
    if not (need_gx or need_gy):
        return gx, gy
    acc_t, acc_tl = _acc(x.dtype)
    (do, ho, wo), (offd, offh, offw) = _geometry(x, win_size, padding)
    gd, ghw, k = _setup(x, win_size, win_sigma, c1, c2, padding)
    if q is None:
        q = _depth_blur(x, y, gd, win_size, padding)
    weights = weights.contiguous()
    comp = weights.shape[-1] == 6  # the components: (N, C, 6) weights, (4, N, C, Do, Ho, Wo) dmap
    t = torch.empty((5 if comp else 4, n, c, do, h, w), dtype=acc_t, device=x.device)
    dm = dmap if dmap is not None else x
    sd = (*dm.stride()[1:], dm.stride(0)) if comp and dmap is not None else (*dm.stride(), 0)
    grid = (n * c * do, triton.cdiv(w, GRAD_M - win_size[2] + 1), triton.cdiv(h, GRAD_M - win_size[1] + 1))
    _adjoint_hw_kernel[grid](
        q, ghw, k, weights, dm, t, c, h, w, do, ho, wo, q.stride(0), t.stride(0), *sd,
        WIN_R=win_size[1], WIN_C=win_size[2], OFF_R=offh, OFF_C=offw, PADDING=padding, HAS_DMAP=dmap is not None,
        COMP=comp, NW=weights.shape[-1], ACC=acc_tl, IEEE=acc_tl == tl.float32, M=GRAD_M, SRC=GRAD_SRC,
        num_warps=8)
    ref = gx if need_gx else gy
    _depth_adjoint_kernel[(n * c * d, triton.cdiv(h * w, BLOCK))](
        x, y, gd, k, weights, t, x, gx if need_gx else ref, gy if need_gy else ref, c, d, h, w, do, t.stride(0),
        *x.stride(), *y.stride(), *x.stride(), *ref.stride(),
        WD=win_size[0], OFFD=offd, MIRRORS=3 if padding == Padding.SAME_REFLECT else 1, ACC=acc_tl,
        HAS_MASK=False, WRITE_X=need_gx, WRITE_Y=need_gy, COMP=comp, NW=weights.shape[-1], BLOCK=BLOCK, num_warps=4)
    return gx, gy


def planes_bwd(pred, target, win_size, win_sigma, c1, c2, padding, d_planes, d_map, need_grad_pred,
               need_grad_target):
    if pred.dtype == torch.float64:
        return reference.planes_bwd(pred, target, win_size, win_sigma, c1, c2, padding, d_planes, d_map,
                                    need_grad_pred, need_grad_target)
    return _grads(pred, target, win_size, win_sigma, c1, c2, padding, d_planes, d_map, need_grad_pred,
                  need_grad_target)
