"""The tile helpers of the Triton SSIM kernels, shared by the images' (fastiqa/backends/triton/ssim.py),
the volumes' (ssim_volume.py) and the masked SSIM's (ssim_masked.py): padded coordinates, the banded blur
matrices, tile loads, the coefficient maps of the gradient (the components' too), tile geometry (see ssim.py's
docstring)."""
import torch
import triton
import triton.language as tl

from ..._codes import Padding

_REFLECT = tl.constexpr(int(Padding.SAME_REFLECT))  # padding code as a Triton compile-time constant

OUT = 32  # forward output tile
IN = 64   # forward source tile: OUT + win - 1 <= IN for win <= 33


@triton.jit
def _src(u, n, OFF: tl.constexpr, PADDING: tl.constexpr):
    """Padded coordinate -> (source index, valid)."""
    s = u - OFF
    if PADDING == _REFLECT:
        s = tl.where(s < 0, -s, s)
        s = tl.where(s >= n, 2 * (n - 1) - s, s)
    return s, (s >= 0) & (s < n)


@triton.jit
def _band(g_ptr, p0, s0, n, n_out, ROWS: tl.constexpr, COLS: tl.constexpr, WIN: tl.constexpr,
          OFF: tl.constexpr, PADDING: tl.constexpr, ACC: tl.constexpr):
    """E[i, a] = sum_k g[k] [src(p0 + i + k) == s0 + a] for output rows p0 + i < n_out."""
    i = tl.arange(0, ROWS)[:, None]
    a = tl.arange(0, COLS)[None, :]
    p = p0 + i
    e = tl.zeros([ROWS, COLS], ACC)
    for k in tl.static_range(WIN):
        s, ok = _src(p + k, n, OFF, PADDING)
        gk = tl.load(g_ptr + k)
        e += tl.where(ok & (s == s0 + a) & (p >= 0) & (p < n_out), gk, 0.0)
    return e


@triton.jit
def _mm(a, b, IEEE: tl.constexpr):
    if IEEE:
        return tl.dot(a, b, input_precision="ieee")
    return tl.dot(a, b)


@triton.jit
def _blur(q, er, ec, IEEE: tl.constexpr):
    return _mm(er, _mm(q, tl.trans(ec), IEEE), IEEE)


@triton.jit
def _load_tile(ptr, r0, c0, H, W, sh, sw, ROWS: tl.constexpr, COLS: tl.constexpr, ACC: tl.constexpr):
    r = r0 + tl.arange(0, ROWS)[:, None]
    c = c0 + tl.arange(0, COLS)[None, :]
    m = (r >= 0) & (r < H) & (c >= 0) & (c < W)
    return tl.load(ptr + r.to(tl.int64) * sh + c.to(tl.int64) * sw, mask=m, other=0).to(ACC), m


@triton.jit
def _program(x_ptr, y_ptr, C, sxn, sxc, syn, syc):
    """This program's tile column and row, plane, image, channel, and the plane's x and y bases
    (grid: column tiles, row tiles, N * C planes)."""
    pl = tl.program_id(2)
    n = pl // C
    c = pl % C
    xb = x_ptr + n.to(tl.int64) * sxn + c.to(tl.int64) * sxc
    yb = y_ptr + n.to(tl.int64) * syn + c.to(tl.int64) * syc
    return tl.program_id(0), tl.program_id(1), pl, n, c, xb, yb


@triton.jit
def _coefficients(mx, my, lum, cs, inv_b1, inv_b2, wsm, wc):
    """The four coefficient maps of the SSIM's gradient (ssim_value_grad of csrc/common/ssim_math.h):
    d F / d (mu_x, mu_y, E[x^2] and E[y^2], E[xy]) for weights wsm on S and wc on cs."""
    wlum = wsm * lum + wc
    dax = wsm * (2 * cs * (my - mx * lum) * inv_b1) + wlum * 2 * (mx * cs - my) * inv_b2
    day = wsm * (2 * cs * (mx - my * lum) * inv_b1) + wlum * 2 * (my * cs - mx) * inv_b2
    s = lum * cs
    return dax, day, -(wsm * s + wc * cs) * inv_b2, 2 * wlum * inv_b2


@triton.jit
def _sigmas(mx, my, exx, eyy):
    """sigma_x, sigma_y = sqrt(max(variance, 0)) (csrc/common/ssim_math.h)."""
    return tl.sqrt(tl.maximum(exx - mx * mx, 0.0)), tl.sqrt(tl.maximum(eyy - my * my, 0.0))


@triton.jit
def _components_out(mx, my, exx, eyy, exy, lum, c2, valid, part, mb, smk, WANT_MAP: tl.constexpr):
    """The components' forward (ssim_components of csrc/common/ssim_math.h) on a tile: the sums of
    l (lum), c, s over the valid positions at part, part + 1, part + 2 and, WANT_MAP, their maps at
    mb + smk, mb + 2 smk, mb + 3 smk (mb: the tile's S map pointers)."""
    sx, sy = _sigmas(mx, my, exx, eyy)
    c3 = c2 / 2
    con = tl.where(valid, (2 * sx * sy + c2) / ((exx - mx * mx) + (eyy - my * my) + c2), 0.0)
    st = tl.where(valid, ((exy - mx * my) + c3) / (sx * sy + c3), 0.0)
    lum = tl.where(valid, lum, 0.0)
    tl.store(part, tl.sum(tl.sum(lum, axis=1), axis=0))
    tl.store(part + 1, tl.sum(tl.sum(con, axis=1), axis=0))
    tl.store(part + 2, tl.sum(tl.sum(st, axis=1), axis=0))
    if WANT_MAP:
        tl.store(mb + smk, lum.to(mb.dtype.element_ty), mask=valid)
        tl.store(mb + 2 * smk, con.to(mb.dtype.element_ty), mask=valid)
        tl.store(mb + 3 * smk, st.to(mb.dtype.element_ty), mask=valid)


@triton.jit
def _component_coefficients(mx, my, exx, eyy, exy, lum, cs, inv_b1, inv_b2, c2, wsm, wc, w_ptr, scale, db_, sdk,
                            valid, HAS_DMAP: tl.constexpr, M: tl.constexpr, ACC: tl.constexpr):
    """The five coefficient maps of the components' gradient (ssim_components_grad of
    csrc/common/ssim_math.h): dax, day, dbx, dby, dc for weights wsm on S, wc on cs and, on l, c, s,
    the plane's (w_ptr[3], [4], [5] times scale) plus their map weights at db_ + sdk, 2 sdk, 3 sdk."""
    wlm = tl.zeros([M, M], ACC) + tl.load(w_ptr + 3) * scale
    wkm = tl.zeros([M, M], ACC) + tl.load(w_ptr + 4) * scale
    wtm = tl.zeros([M, M], ACC) + tl.load(w_ptr + 5) * scale
    if HAS_DMAP:
        wlm += tl.load(db_ + sdk, mask=valid, other=0).to(ACC)
        wkm += tl.load(db_ + 2 * sdk, mask=valid, other=0).to(ACC)
        wtm += tl.load(db_ + 3 * sdk, mask=valid, other=0).to(ACC)
    sx, sy = _sigmas(mx, my, exx, eyy)
    ix = tl.where(sx > 0, 1.0 / sx, 0.0)
    iy = tl.where(sy > 0, 1.0 / sy, 0.0)
    qq3 = sx * sy + c2 / 2
    con = (2 * sx * sy + c2) * inv_b2
    st = ((exy - mx * my) + c2 / 2) / qq3
    wlu = wsm * cs + wlm
    common = -(wsm * (lum * cs) + wc * cs) * inv_b2
    fxx = common + wkm * (sy * ix - con) * inv_b2 - wtm * st * sy * ix / (2 * qq3)
    fyy = common + wkm * (sx * iy - con) * inv_b2 - wtm * st * sx * iy / (2 * qq3)
    fxy = 2 * (wsm * lum + wc) * inv_b2 + wtm / qq3
    dax = wlu * (2 * (my - mx * lum) * inv_b1) - 2 * mx * fxx - my * fxy
    day = wlu * (2 * (mx - my * lum) * inv_b1) - 2 * my * fyy - mx * fxy
    return dax, day, fxx, fyy, fxy


def _acc(dtype):
    return (torch.float64, tl.float64) if dtype == torch.float64 else (torch.float32, tl.float32)


def _geometry(x, win_size, padding):
    """(Ho, Wo, vertical offset, horizontal offset); win_size: (vertical, horizontal) taps."""
    (h, w), (wr, wc) = x.shape[-2:], win_size
    if padding == Padding.VALID:
        return h - wr + 1, w - wc + 1, 0, 0
    return h, w, wr // 2, wc // 2


def _grad_tiles(win_size):
    """(M, SRC): 32 x 32 output regions from 64 x 64 source tiles for every window, so each
    program's gradient tile is 33 - win_size wide per axis (22 at 11x11). Larger regions (64 / 128)
    took minutes to compile and ~200 KiB of shared memory (more than an A100 has), so
    windows above ~21 are slow on this backend; the CUDA kernel has no such limit."""
    return 32, 64
