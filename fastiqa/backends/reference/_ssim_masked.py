"""Reference of the masked SSIM (issue 19 item 3): the normalised convolutions, literally, and
the op contract of fastiqa_C::ssim_masked_fwd / ssim_masked_bwd (fastiqa/_kernel_schemas.py).

With weights m >= 0 (the mask) and the window G, at every output position p:
    W = G*m,  mu_x = G*(m x) / W,  E[x^2] = G*(m x^2) / W,  E[xy] = G*(m x y) / W  (likewise y),
    sigma_x^2 = E[x^2] - mu_x^2,  sigma_xy = E[xy] - mu_x mu_y,
and S(p) from these exactly as the unmasked SSIM (same C1, C2); S(p) = 0 where W(p) = 0 (no
weight in the window). Padding: the mask is padded as the data are seen: "same_reflect" reflects
m like x and y; "same_zero" pads x and y with zeros OF WEIGHT 1 (m padded with ones), so that an
all-ones mask is exactly the unmasked SSIM with every padding.

Per (image, channel) plane the op returns the sums (m_c S, m_c, m |x - y|, m), m_c = m at the
window centres (the output positions), as (N, C, 4) in the accumulator dtype; the caller divides
(fastiqa/functional/_ssim_masked.py). The gradients (ssim_masked_bwd, explicit; the tests check
them against autograd of the formula): every input pixel enters through m x, m x^2, m x y and
m |x - y| only, so its gradient is m times something finite, 0 where m = 0.
"""
import torch

from ..._codes import Padding
from ...conventions import acc_dtype
from ._ssim import _blur, blur_adjoint, map_memory_format, ssim_from_stats, windows

__all__ = ["masked_ssim_terms", "masked_components_terms", "ssim_masked_fwd", "ssim_masked_bwd",
           "ssim_masked_components_fwd"]


def _pad(t, rs, padding, value):
    if padding == "valid":
        return t
    pads = [p for r in reversed(rs) for p in (r, r)]
    if padding == "same_reflect":
        return torch.nn.functional.pad(t, pads, mode="reflect")
    return torch.nn.functional.pad(t, pads, value=value)


def _masked_stats(x, y, m, gs, padding):
    """(W, ok = W > 0, [mu_x, mu_y, E[x^2], E[y^2], E[xy]] (0 where W = 0), m_c) of x, y, m."""
    rs = [g.numel() // 2 for g in gs]
    mp, xp, yp = _pad(m, rs, padding, 1.0), _pad(x, rs, padding, 0.0), _pad(y, rs, padding, 0.0)
    w = _blur(mp, gs, "valid")
    ok = w > 0
    ws = torch.where(ok, w, torch.ones_like(w))
    mx, my = mp * xp, mp * yp
    stats = [_blur(t, gs, "valid") / ws for t in (mx, my, mx * xp, my * yp, mx * yp)]
    m_c = m
    if padding == "valid":
        for axis, r in enumerate(rs):
            m_c = m_c.narrow(2 + axis, r, m.shape[2 + axis] - 2 * r)
    return w, ok, stats, m_c


def masked_ssim_terms(x, y, m, gs, c1, c2, padding):
    """(S map with 0 where W = 0, centre weights m_c, W) for x, y, m (N, C, *spatial) in one
    floating dtype; gs the 1-D windows (one per spatial axis), padding a name."""
    w, ok, stats, m_c = _masked_stats(x, y, m, gs, padding)
    s_map = ssim_from_stats(*stats, c1, c2)[0]
    return torch.where(ok, s_map, torch.zeros_like(s_map)), m_c, w


def _planes(pred, target, mask, win_size, win_sigma, c1, c2, padding):
    acc = acc_dtype(pred.dtype)
    xa, ya, m = pred.to(acc), target.to(acc), mask.to(acc)
    gs = windows(win_size, win_sigma, pred.dim() - 2, acc, pred.device)
    s_map, m_c, _ = masked_ssim_terms(xa, ya, m, gs, c1, c2, Padding(padding).name.lower())
    dims = tuple(range(2, pred.dim()))
    planes = torch.stack([(m_c * s_map).sum(dims), m_c.sum(dims), (m * (xa - ya).abs()).sum(dims), m.sum(dims)], -1)
    return planes, s_map


def ssim_masked_fwd(pred, target, mask, win_size, win_sigma, c1, c2, padding, want_map):
    """(planes (N, C, 4): sums of m_c S, m_c, m |pred - target|, m; the S map in pred's dtype or empty)."""
    with torch.no_grad():
        planes, s_map = _planes(pred, target, mask, win_size, win_sigma, c1, c2, padding)
    out_map = torch.empty(s_map.shape, dtype=pred.dtype, device=pred.device,
                          memory_format=map_memory_format(pred)).copy_(s_map) if want_map else pred.new_empty((0,))
    return planes, out_map


def ssim_masked_bwd(pred, target, mask, win_size, win_sigma, c1, c2, padding, d_planes, d_map, need_grad_pred,
                    need_grad_target):
    """Gradients of sum(d_planes * planes) + sum(d_map * map) for pred and target (empty if not asked),
    explicitly: the coefficients of d S / d (mu_x, mu_y, E[x^2] = E[y^2], E[xy]) (those of
    csrc/common/ssim_math.h) times w / W, w = d_planes[0] m_c + d_map, through the adjoint blur,
    then times m (and x, y): gx = m (A_mx + 2 x A_b + y A_c) + d_planes[2] m sign(x - y)."""
    empty = pred.new_empty((0,))
    if not (need_grad_pred or need_grad_target):
        return empty, empty
    acc = acc_dtype(pred.dtype)
    xa, ya, m = pred.detach().to(acc), target.detach().to(acc), mask.detach().to(acc)
    gs = windows(win_size, win_sigma, pred.dim() - 2, acc, pred.device)
    pad = Padding(padding).name.lower()
    w, ok, (mx, my, exx, eyy, exy), m_c = _masked_stats(xa, ya, m, gs, pad)
    tail = (None,) * (pred.dim() - 2)
    dp = d_planes.to(acc)
    ws = dp[(..., 0, *tail)] * m_c
    if d_map is not None:
        ws = ws + d_map.to(acc)
    ws = torch.where(ok, ws / torch.where(ok, w, torch.ones_like(w)), torch.zeros_like(ws))
    mxy, mxx, myy = mx * my, mx * mx, my * my
    b1, b2 = mxx + myy + c1, (exx - mxx) + (eyy - myy) + c2
    lum = (2 * mxy + c1) / b1
    cs = (2 * (exy - mxy) + c2) / b2
    wlum = ws * lum
    db = blur_adjoint(-(ws * lum * cs) / b2, gs, pad)
    dc = blur_adjoint(2 * wlum / b2, gs, pad)
    sign = torch.sign(xa - ya) * dp[(..., 2, *tail)]
    gp, gt = empty, empty
    if need_grad_pred:
        dax = ws * (2 * cs * (my - mx * lum) / b1) + wlum * (2 * (mx * cs - my) / b2)
        gp = (m * (blur_adjoint(dax, gs, pad) + 2 * xa * db + ya * dc + sign)).to(pred.dtype)
    if need_grad_target:
        day = ws * (2 * cs * (mx - my * lum) / b1) + wlum * (2 * (my * cs - mx) / b2)
        gt = (m * (blur_adjoint(day, gs, pad) + 2 * ya * db + xa * dc - sign)).to(pred.dtype)
    return gp, gt


def _safe_sqrt(v):
    """sqrt(max(v, 0)) with a zero derivative where v <= 0 (the rule of csrc/common/ssim_math.h's
    ssim_components_grad: d sigma / d sigma^2 = 0 at a clamped variance)."""
    pos = v > 0
    return torch.where(pos, torch.where(pos, v, torch.ones_like(v)).sqrt(), torch.zeros_like(v))


def masked_components_terms(x, y, m, gs, c1, c2, padding):
    """([S, l, c, s] maps, each 0 where W = 0; m_c) of the normalised statistics (the components of
    csrc/common/ssim_math.h's ssim_components: sigma = sqrt(max(variance, 0)), C3 = C2 / 2)."""
    _, ok, (mx, my, exx, eyy, exy), m_c = _masked_stats(x, y, m, gs, padding)
    sxx, syy, sxy = exx - mx * mx, eyy - my * my, exy - mx * my
    b2 = sxx + syy + c2
    p = _safe_sqrt(sxx) * _safe_sqrt(syy)
    lum = (2 * mx * my + c1) / (mx * mx + my * my + c1)
    maps = [lum * (2 * sxy + c2) / b2, lum, (2 * p + c2) / b2, (sxy + c2 / 2) / (p + c2 / 2)]
    zero = torch.zeros_like(lum)
    return [torch.where(ok, t, zero) for t in maps], m_c


def components_planes(pred, target, mask, win_size, win_sigma, c1, c2, padding):
    """((N, C, 5) sums m_c S, m_c l, m_c c, m_c s, m_c; (4, N, C, *out) maps S, l, c, s) in the
    accumulator dtype, from differentiable torch ops (the op's backward differentiates them)."""
    acc = acc_dtype(pred.dtype)
    xa, ya, m = pred.to(acc), target.to(acc), mask.to(acc)
    gs = windows(win_size, win_sigma, pred.dim() - 2, acc, pred.device)
    maps, m_c = masked_components_terms(xa, ya, m, gs, c1, c2, Padding(padding).name.lower())
    dims = tuple(range(2, pred.dim()))
    planes = torch.stack([(m_c * t).sum(dims) for t in maps] + [m_c.sum(dims)], -1)
    return planes, torch.stack(maps)


def ssim_masked_components_fwd(pred, target, mask, win_size, win_sigma, c1, c2, padding, want_map):
    """(planes (N, C, 5), maps (4, N, C, *out) in pred's dtype, contiguous, or empty)."""
    with torch.no_grad():
        planes, maps = components_planes(pred, target, mask, win_size, win_sigma, c1, c2, padding)
    return planes, maps.to(pred.dtype).contiguous() if want_map else pred.new_empty((0,))
