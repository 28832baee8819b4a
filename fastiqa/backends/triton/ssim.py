"""Triton kernels of the SSIM family: same contract as csrc/cpu/ssim_impl.h (see fastiqa/ops/ssim.py).

The separable Gaussian blur of a tile is two products with banded matrices,
    stats = E_r @ X @ E_c^T,    E[i, a] = sum_k g[k] [src(p0 + i + k) == s0 + a],
where src() maps a padded coordinate to its source pixel (zero padding: no
match, reflect padding: the mirrored pixel), so every padding mode is the same
code and the products are tl.dot with input_precision="ieee" (float32 accuracy; float64
inputs run the reference path, as tl.dot has no float64 lowering on the GPU). The adjoint
blur of the backward is E^T @ M @ E.

Forward: one program per OUT x OUT tile of one plane loads its IN x IN source
tile once, writes the SSIM map if asked and one partial (S, cs, |x-y|) triple
(COMP, the components: (S, cs, |x-y|, l, c, s) and the 4 maps S, l, c, s);
partials are summed by torch in tile order (no atomics: bitwise reproducible).
Gradient: one program per GR x GC source tile recomputes the statistics on the
M x M output region that reads it (GR = M - win_h + 1, GC = M - win_w + 1: the window
has its own size and sigma per axis, vertical taps first in g), forms the four
coefficient maps (csrc/common/ssim_math.h; COMP: five, the variance's apart for x and y)
and applies the adjoint blur;
nothing image-sized is saved between forward and backward.
"""
import torch
import triton
import triton.language as tl

from .. import reference, ssim_compose
from .ssim_tiles import (
    IN,
    OUT,
    _acc,
    _band,
    _blur,
    _coefficients,
    _component_coefficients,
    _components_out,
    _geometry,
    _grad_tiles,
    _load_tile,
    _mm,
    _program,
)


@triton.jit
def _stats(x_ptr, y_ptr, g_ptr, p0r, p0c, H, W, Ho, Wo, sxh, sxw, syh, syw,
           ROWS: tl.constexpr, SRC: tl.constexpr, WIN_R: tl.constexpr, WIN_C: tl.constexpr, OFF_R: tl.constexpr,
           OFF_C: tl.constexpr, PADDING: tl.constexpr, ACC: tl.constexpr, IEEE: tl.constexpr):
    """The five statistics on the ROWS x ROWS outputs at (p0r, p0c); g_ptr: the vertical
    window (WIN_R taps), then the horizontal one (WIN_C taps)."""
    s0r = tl.maximum(p0r - OFF_R, 0)
    s0c = tl.maximum(p0c - OFF_C, 0)
    er = _band(g_ptr, p0r, s0r, H, Ho, ROWS, SRC, WIN_R, OFF_R, PADDING, ACC)
    ec = _band(g_ptr + WIN_R, p0c, s0c, W, Wo, ROWS, SRC, WIN_C, OFF_C, PADDING, ACC)
    x, _ = _load_tile(x_ptr, s0r, s0c, H, W, sxh, sxw, SRC, SRC, ACC)
    y, _ = _load_tile(y_ptr, s0r, s0c, H, W, syh, syw, SRC, SRC, ACC)
    mx = _blur(x, er, ec, IEEE)
    my = _blur(y, er, ec, IEEE)
    exx = _blur(x * x, er, ec, IEEE)
    eyy = _blur(y * y, er, ec, IEEE)
    exy = _blur(x * y, er, ec, IEEE)
    return mx, my, exx, eyy, exy


@triton.jit
def _ssim_fwd_kernel(x_ptr, y_ptr, g_ptr, k_ptr, map_ptr, part_ptr, C, H, W, Ho, Wo,
                     sxn, sxc, sxh, sxw, syn, syc, syh, syw, smn, smc, smh, smw, smk,
                     WIN_R: tl.constexpr, WIN_C: tl.constexpr, OFF_R: tl.constexpr, OFF_C: tl.constexpr,
                     PADDING: tl.constexpr, WANT_MAP: tl.constexpr,
                     WANT_L1: tl.constexpr, COMP: tl.constexpr, NP: tl.constexpr, ACC: tl.constexpr, IEEE: tl.constexpr,
                     OUT: tl.constexpr, IN: tl.constexpr):
    tc, tr, pl, n, c, xb, yb = _program(x_ptr, y_ptr, C, sxn, sxc, syn, syc)
    p0r = tr * OUT
    p0c = tc * OUT
    mx, my, exx, eyy, exy = _stats(xb, yb, g_ptr, p0r, p0c, H, W, Ho, Wo, sxh, sxw, syh, syw,
                                   OUT, IN, WIN_R, WIN_C, OFF_R, OFF_C, PADDING, ACC, IEEE)
    c1 = tl.load(k_ptr)
    c2 = tl.load(k_ptr + 1)
    mxy = mx * my
    mxx = mx * mx
    myy = my * my
    lum = (2 * mxy + c1) / (mxx + myy + c1)
    cs = (2 * (exy - mxy) + c2) / ((exx - mxx) + (eyy - myy) + c2)
    s = lum * cs
    r = p0r + tl.arange(0, OUT)[:, None]
    q = p0c + tl.arange(0, OUT)[None, :]
    valid = (r < Ho) & (q < Wo)
    s = tl.where(valid, s, 0.0)
    cs = tl.where(valid, cs, 0.0)
    mb = map_ptr + n.to(tl.int64) * smn + c.to(tl.int64) * smc + r.to(tl.int64) * smh + q.to(tl.int64) * smw
    if WANT_MAP:
        tl.store(mb, s.to(map_ptr.dtype.element_ty), mask=valid)
    tile = tr * tl.num_programs(0) + tc
    base = part_ptr + (pl.to(tl.int64) * tl.num_programs(0) * tl.num_programs(1) + tile) * NP
    tl.store(base, tl.sum(tl.sum(s, axis=1), axis=0))
    tl.store(base + 1, tl.sum(tl.sum(cs, axis=1), axis=0))
    if COMP:  # l, c, s (csrc/common/ssim_math.h ssim_components)
        _components_out(mx, my, exx, eyy, exy, lum, c2, valid, base + 3, mb, smk, WANT_MAP)
    if WANT_L1:
        xo, m = _load_tile(xb, p0r, p0c, H, W, sxh, sxw, OUT, OUT, ACC)
        yo, _ = _load_tile(yb, p0r, p0c, H, W, syh, syw, OUT, OUT, ACC)
        d = tl.where(m, tl.abs(xo - yo), 0.0)
        tl.store(base + 2, tl.sum(tl.sum(d, axis=1), axis=0))
    else:
        tl.store(base + 2, tl.sum(tl.sum(tl.zeros([OUT, OUT], ACC), axis=1), axis=0))


@triton.jit
def _ssim_grad_kernel(x_ptr, y_ptr, g_ptr, k_ptr, w_ptr, dmap_ptr, gx_ptr, gy_ptr, C, H, W, Ho, Wo,
                      sxn, sxc, sxh, sxw, syn, syc, syh, syw, sdn, sdc, sdh, sdw, sdk,
                      sgn, sgc, sgh, sgw,
                      WIN_R: tl.constexpr, WIN_C: tl.constexpr, OFF_R: tl.constexpr, OFF_C: tl.constexpr,
                      PADDING: tl.constexpr, HAS_DMAP: tl.constexpr,
                      WRITE_X: tl.constexpr, WRITE_Y: tl.constexpr, COMP: tl.constexpr, NW: tl.constexpr,
                      ACC: tl.constexpr, IEEE: tl.constexpr,
                      M: tl.constexpr, SRC: tl.constexpr):
    GR: tl.constexpr = M - WIN_R + 1  # this program's source rows
    GC: tl.constexpr = M - WIN_C + 1  # and columns
    tc, tr, pl, n, c, xb, yb = _program(x_ptr, y_ptr, C, sxn, sxc, syn, syc)
    t0r = tr * GR
    t0c = tc * GC
    m0r = t0r + OFF_R - (WIN_R - 1)
    m0c = t0c + OFF_C - (WIN_C - 1)
    mx, my, exx, eyy, exy = _stats(xb, yb, g_ptr, m0r, m0c, H, W, Ho, Wo, sxh, sxw, syh, syw,
                                   M, SRC, WIN_R, WIN_C, OFF_R, OFF_C, PADDING, ACC, IEEE)
    c1 = tl.load(k_ptr)
    c2 = tl.load(k_ptr + 1)
    ws = tl.load(w_ptr + pl * NW) * tl.load(k_ptr + 2)
    wc = tl.load(w_ptr + pl * NW + 1) * tl.load(k_ptr + 2)
    wl = tl.load(w_ptr + pl * NW + 2) * tl.load(k_ptr + 3)
    r = m0r + tl.arange(0, M)[:, None]
    q = m0c + tl.arange(0, M)[None, :]
    valid = (r >= 0) & (r < Ho) & (q >= 0) & (q < Wo)
    wsm = tl.zeros([M, M], ACC) + ws
    db_ = dmap_ptr + n.to(tl.int64) * sdn + c.to(tl.int64) * sdc + r.to(tl.int64) * sdh + q.to(tl.int64) * sdw
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
                                                          wc, w_ptr + pl * NW, tl.load(k_ptr + 2), db_, sdk, valid,
                                                          HAS_DMAP, M, ACC)
        dby = tl.where(valid, dby, 0.0)
    else:
        dax, day, dbb, dcc = _coefficients(mx, my, lum, cs, inv_b1, inv_b2, wsm, wc)
        dby = dbb
    dax = tl.where(valid, dax, 0.0)
    day = tl.where(valid, day, 0.0)
    dbb = tl.where(valid, dbb, 0.0)
    dcc = tl.where(valid, dcc, 0.0)
    # adjoint blur onto the source tile t0 .. t0 + M (the first GR rows / GC columns are this tile's)
    er = _band(g_ptr, m0r, t0r, H, Ho, M, M, WIN_R, OFF_R, PADDING, ACC)
    ec = _band(g_ptr + WIN_R, m0c, t0c, W, Wo, M, M, WIN_C, OFF_C, PADDING, ACC)
    ert = tl.trans(er)
    xs, m = _load_tile(xb, t0r, t0c, H, W, sxh, sxw, M, M, ACC)
    ys, _ = _load_tile(yb, t0r, t0c, H, W, syh, syw, M, M, ACC)
    tb = _mm(ert, _mm(dbb, ec, IEEE), IEEE)
    tcc = _mm(ert, _mm(dcc, ec, IEEE), IEEE)
    if COMP:
        tby = _mm(ert, _mm(dby, ec, IEEE), IEEE)
    else:
        tby = tb
    d = xs - ys
    sign = tl.where(d > 0, 1.0, tl.where(d < 0, -1.0, 0.0)).to(ACC) * wl
    rr = t0r + tl.arange(0, M)[:, None]
    qq = t0c + tl.arange(0, M)[None, :]
    own = m & (tl.arange(0, M)[:, None] < GR) & (tl.arange(0, M)[None, :] < GC)
    off = n.to(tl.int64) * sgn + c.to(tl.int64) * sgc + rr.to(tl.int64) * sgh + qq.to(tl.int64) * sgw
    if WRITE_X:
        gx = _mm(ert, _mm(dax, ec, IEEE), IEEE) + 2 * xs * tb + ys * tcc + sign
        tl.store(gx_ptr + off, gx.to(gx_ptr.dtype.element_ty), mask=own)
    if WRITE_Y:
        gy = _mm(ert, _mm(day, ec, IEEE), IEEE) + 2 * ys * tby + xs * tcc - sign
        tl.store(gy_ptr + off, gy.to(gy_ptr.dtype.element_ty), mask=own)


def _constants(x, win_size, win_sigma, c1, c2, padding, acc_t):
    """(windows: the vertical then the horizontal one, [c1, c2, 1 / output pixels, 1 / input
    pixels]) as accumulator-dtype tensors (Triton's float arguments are float32; float64 runs
    need these exact)."""
    ho, wo, _, _ = _geometry(x, win_size, padding)
    h, w = x.shape[-2:]
    k = torch.tensor([c1, c2, 1.0 / (ho * wo), 1.0 / (h * w)], dtype=acc_t, device=x.device)
    return torch.cat(reference.windows(win_size, win_sigma, 2, acc_t, x.device)), k


def _grads(x, y, g, k, weights, dmap, need_gx, need_gy, win_size, padding, acc_tl):
    n, c, h, w = x.shape
    ho, wo, off_r, off_c = _geometry(x, win_size, padding)
    gx = torch.empty_like(x) if need_gx else x.new_empty((0,))
    gy = torch.empty_like(x) if need_gy else x.new_empty((0,))
    if not (need_gx or need_gy):
        return gx, gy
    ref = gx if need_gx else gy
    m, src = _grad_tiles(win_size)
    comp = weights.shape[-1] == 6  # the components: (N, C, 6) weights, (4, N, C, Ho, Wo) dmap
    d = dmap if dmap is not None else x
    sd = (*d.stride()[1:], d.stride(0)) if comp and dmap is not None else (*d.stride(), 0)
    grid = (triton.cdiv(w, m - win_size[1] + 1), triton.cdiv(h, m - win_size[0] + 1), n * c)
    _ssim_grad_kernel[grid](
        x, y, g, k, weights, d, gx if need_gx else ref, gy if need_gy else ref, c, h, w, ho, wo,
        *x.stride(), *y.stride(), *sd, *ref.stride(),
        WIN_R=win_size[0], WIN_C=win_size[1], OFF_R=off_r, OFF_C=off_c, PADDING=padding, HAS_DMAP=dmap is not None,
        WRITE_X=need_gx, WRITE_Y=need_gy, COMP=comp, NW=weights.shape[-1],
        ACC=acc_tl, IEEE=acc_tl == tl.float32, M=m, SRC=src, num_warps=8)
    return gx, gy


def planes_fwd(pred, target, win_size, win_sigma, c1, c2, padding, want_map, want_l1, components, d_planes,
               need_grad_pred, need_grad_target):
    if pred.dim() == 5:  # volumes (N, C, D, H, W): fastiqa/backends/triton/ssim_volume.py
        from . import ssim_volume
        return ssim_volume.planes_fwd(pred, target, win_size, win_sigma, c1, c2, padding, want_map, want_l1,
                                      components, d_planes, need_grad_pred, need_grad_target)
    # tl.dot has no float64 lowering on the GPU: the plain torch path (the reference's)
    if pred.dtype == torch.float64:
        return reference.planes_fwd(pred, target, win_size, win_sigma, c1, c2, padding, want_map, want_l1,
                                    components, d_planes, need_grad_pred, need_grad_target)
    n, c, h, w = pred.shape
    acc_t, acc_tl = _acc(pred.dtype)
    ho, wo, off_r, off_c = _geometry(pred, win_size, padding)
    g, k = _constants(pred, win_size, win_sigma, c1, c2, padding, acc_t)
    nm = 4 if components else 1  # the components' maps S, l, c, s: (4 N, C, Ho, Wo) viewed as (4, N, ...)
    s_map = torch.empty((nm * n, c, ho, wo), dtype=pred.dtype, device=pred.device,
                        memory_format=reference.map_memory_format(pred)) if want_map \
        else pred.new_empty((0,))
    grid = (triton.cdiv(w, OUT), triton.cdiv(h, OUT), n * c)
    np_ = 6 if components else 3
    partials = torch.empty((n * c, grid[0] * grid[1], np_), dtype=acc_t, device=pred.device)
    ms = (*s_map.stride(), n * s_map.stride(0)) if want_map else (0, 0, 0, 0, 0)
    _ssim_fwd_kernel[grid](
        pred, target, g, k, s_map if want_map else pred, partials, c, h, w, ho, wo, *pred.stride(),
        *target.stride(), *ms,
        WIN_R=win_size[0], WIN_C=win_size[1], OFF_R=off_r, OFF_C=off_c, PADDING=padding, WANT_MAP=want_map,
        WANT_L1=want_l1, COMP=components, NP=np_,
        ACC=acc_tl, IEEE=acc_tl == tl.float32, OUT=OUT, IN=IN, num_warps=8)
    counts = torch.tensor([ho * wo, ho * wo, h * w, ho * wo, ho * wo, ho * wo][:np_], dtype=acc_t,
                          device=pred.device)
    planes = (partials.sum(1) / counts).view(n, c, np_)
    if want_map and components:
        s_map = s_map.view(4, n, c, ho, wo)
    if d_planes is None or not (need_grad_pred or need_grad_target):
        return planes, s_map, pred.new_empty((0,)), pred.new_empty((0,))
    gx, gy = _grads(pred, target, g, k, d_planes.contiguous(), None, need_grad_pred, need_grad_target, win_size,
                    padding, acc_tl)
    return planes, s_map, gx, gy


def planes_bwd(pred, target, win_size, win_sigma, c1, c2, padding, d_planes, d_map, need_grad_pred,
               need_grad_target):
    if pred.dim() == 5:
        from . import ssim_volume
        return ssim_volume.planes_bwd(pred, target, win_size, win_sigma, c1, c2, padding, d_planes, d_map,
                                      need_grad_pred, need_grad_target)
    if pred.dtype == torch.float64:
        return reference.planes_bwd(pred, target, win_size, win_sigma, c1, c2, padding, d_planes, d_map,
                                    need_grad_pred, need_grad_target)
    acc_t, acc_tl = _acc(pred.dtype)
    g, k = _constants(pred, win_size, win_sigma, c1, c2, padding, acc_t)
    return _grads(pred, target, g, k, d_planes.contiguous(), d_map, need_grad_pred, need_grad_target, win_size,
                  padding, acc_tl)


# the ops' entry points (fastiqa/_kernel_schemas.py): the contract built on the plane kernels above
ssim_fwd, ssim_bwd = ssim_compose.entry_points(planes_fwd, planes_bwd)
