"""Reference of the SSIM family (Wang et al. 2004, Gaussian window, separable filter):
the formulas, and the op contract of fastiqa_C::ssim_fwd / ssim_bwd."""
import torch

from ..._codes import Padding
from ...conventions import MS_SSIM_WEIGHTS, acc_dtype
from .. import ssim_compose

# formulas

SSIM_PADDINGS = ("valid", "same_zero", "same_reflect")


def gaussian_window(win_size: int, sigma: float, dtype=torch.float64, device=None):
    """Normalised 1-D Gaussian g[k] ~ exp(-(k - (win_size-1)/2)^2 / (2 sigma^2))."""
    coords = torch.arange(win_size, dtype=torch.float64, device=device) - (win_size - 1) / 2.0
    g = torch.exp(-(coords ** 2) / (2.0 * sigma * sigma))
    return (g / g.sum()).to(dtype)


def windows(win_size, win_sigma, axes: int, dtype=torch.float64, device=None):
    """The 1-D windows of the `axes` spatial axes (outermost first): win_size / win_sigma one
    number or one per axis."""
    sizes = tuple(win_size) if isinstance(win_size, (tuple, list)) else (win_size,) * axes
    sigmas = tuple(win_sigma) if isinstance(win_sigma, (tuple, list)) else (win_sigma,) * axes
    return tuple(gaussian_window(int(k), float(s), dtype, device) for k, s in zip(sizes, sigmas))


def _axis_kernel(g, axis: int, axes: int, c: int):
    """g as a depthwise kernel along spatial axis `axis` of `axes`, for c channels."""
    shape = [1] * axes
    shape[axis] = g.numel()
    return g.view(1, 1, *shape).expand(c, 1, *shape)


def _conv_axis(t, g, axis, pad, transpose=False):
    axes = t.dim() - 2
    conv = (torch.nn.functional.conv_transpose2d if axes == 2 else torch.nn.functional.conv_transpose3d) \
        if transpose else (torch.nn.functional.conv2d if axes == 2 else torch.nn.functional.conv3d)
    padding = [0] * axes
    padding[axis] = pad
    return conv(t, _axis_kernel(g, axis, axes, t.shape[1]), padding=tuple(padding), groups=t.shape[1])


def _blur(t, gs, padding):
    """Separable Gaussian blur of every channel of t (N, C, *spatial): gs one 1-D window per
    spatial axis (a single window: the same on every axis)."""
    axes = t.dim() - 2
    gs = (gs,) * axes if isinstance(gs, torch.Tensor) else tuple(gs)
    rs = [g.numel() // 2 for g in gs]
    if padding == "same_reflect":
        # 16-bit floats padded in float32 and rounded back (exact: padding copies values);
        # torch < 2.5 has no Half reflection_pad2d on the CPU
        low = t.dtype in (torch.float16, torch.bfloat16)
        pads = [p for r in reversed(rs) for p in (r, r)]
        t = torch.nn.functional.pad(t.float() if low else t, pads, mode="reflect").to(t.dtype)
    for axis in reversed(range(axes)):  # innermost (W) first, as the kernels
        t = _conv_axis(t, gs[axis], axis, rs[axis] if padding == "same_zero" else 0)
    return t


def ssim_stats(x, y, g, padding):
    """The five windowed statistics (mu_x, mu_y, E[x^2], E[y^2], E[xy]) under the window g."""
    return _blur(x, g, padding), _blur(y, g, padding), _blur(x * x, g, padding), \
        _blur(y * y, g, padding), _blur(x * y, g, padding)


def ssim_from_stats(mx, my, exx, eyy, exy, c1, c2):
    """(ssim_map, cs_map) from the windowed statistics."""
    sxx, syy, sxy = exx - mx * mx, eyy - my * my, exy - mx * my
    cs = (2 * sxy + c2) / (sxx + syy + c2)
    lum = (2 * mx * my + c1) / (mx * mx + my * my + c1)
    return lum * cs, cs


def components_from_stats(mx, my, exx, eyy, exy, c1, c2):
    """(S, cs, l, c, s) maps: luminance l, contrast c = (2 sigma_x sigma_y + C2) / (sigma_x^2 + sigma_y^2 + C2),
    structure s = (sigma_xy + C3) / (sigma_x sigma_y + C3), C3 = C2 / 2, sigma = sqrt(max(variance, 0))
    (csrc/common/ssim_math.h); c * s = cs."""
    sxx, syy, sxy = exx - mx * mx, eyy - my * my, exy - mx * my
    b2 = sxx + syy + c2
    p = sxx.clamp(min=0).sqrt() * syy.clamp(min=0).sqrt()
    lum = (2 * mx * my + c1) / (mx * mx + my * my + c1)
    cs = (2 * sxy + c2) / b2
    return lum * cs, cs, lum, (2 * p + c2) / b2, (sxy + c2 / 2) / (p + c2 / 2)


def ssim_maps(x, y, data_range=1.0, win_size=11, win_sigma=1.5, k1=0.01, k2=0.03, padding="valid"):
    """(ssim_map, cs_map) for x, y of shape (N, C, H, W).

    mu = G*x, sigma_x^2 = G*(x^2) - mu_x^2, sigma_xy = G*(xy) - mu_x mu_y,
    l = (2 mu_x mu_y + C1) / (mu_x^2 + mu_y^2 + C1), cs = (2 sigma_xy + C2) / (sigma_x^2 + sigma_y^2 + C2),
    C1 = (k1 L)^2, C2 = (k2 L)^2; ssim = l * cs.
    """
    g = windows(win_size, win_sigma, x.dim() - 2, x.dtype, x.device)
    return ssim_from_stats(*ssim_stats(x, y, g, padding), (k1 * data_range) ** 2, (k2 * data_range) ** 2)


def reduce_map(m, reduction):
    """mean | none (per image, (N,)) | per_channel ((N, C)) | map."""
    if reduction == "map":
        return m
    if reduction == "per_channel":
        return m.flatten(2).mean(-1)
    if reduction == "none":
        return m.flatten(1).mean(-1)
    if reduction == "mean":
        return m.mean()
    raise ValueError(f"unknown reduction {reduction!r}")


def ssim(x, y, data_range=1.0, win_size=11, win_sigma=1.5, k1=0.01, k2=0.03, padding="valid", reduction="mean"):
    return reduce_map(ssim_maps(x, y, data_range, win_size, win_sigma, k1, k2, padding)[0], reduction)


def ms_ssim(x, y, data_range=1.0, win_size=11, win_sigma=1.5, k1=0.01, k2=0.03, weights=None,
            padding="valid", reduction="mean"):
    """MS-SSIM as pytorch_msssim computes it: cs at the first scales, SSIM at the last, each
    per channel and clamped at 0, 2x2 average pooling (padding H % 2, W % 2, zeros counted;
    volumes: 2x2x2 pooling, padding D % 2 too)."""
    weights = MS_SSIM_WEIGHTS if weights is None else weights
    w = torch.as_tensor(weights, dtype=x.dtype, device=x.device)
    values = []
    for level in range(len(weights)):
        s_map, cs_map = ssim_maps(x, y, data_range, win_size, win_sigma, k1, k2, padding)
        if level < len(weights) - 1:
            values.append(torch.relu(cs_map.flatten(2).mean(-1)))
            pad = tuple(s % 2 for s in x.shape[2:])
            pool = torch.nn.functional.avg_pool2d if x.dim() == 4 else torch.nn.functional.avg_pool3d
            x = pool(x, kernel_size=2, padding=pad)
            y = pool(y, kernel_size=2, padding=pad)
    values.append(torch.relu(s_map.flatten(2).mean(-1)))
    per_channel = torch.prod(torch.stack(values, 0) ** w.view(-1, 1, 1), dim=0)
    if reduction == "per_channel":
        return per_channel
    if reduction == "none":
        return per_channel.mean(1)
    return per_channel.mean()


def l1_ssim_loss(x, y, alpha=0.2, data_range=1.0, win_size=11, win_sigma=1.5, k1=0.01, k2=0.03,
                 padding="same_zero", reduction="mean"):
    """(1 - alpha) * mean|x - y| + alpha * (1 - SSIM), per image for reduction="none"
    (the 3DGS photometric loss: zero "same" padding by default, as functional.l1_ssim_loss)."""
    s = ssim(x, y, data_range, win_size, win_sigma, k1, k2, padding, "none")
    l1 = (x - y).abs().flatten(1).mean(-1)
    v = (1 - alpha) * l1 + alpha * (1 - s)
    return v if reduction == "none" else v.mean()


# op contract (see csrc/common/ssim_math.h and fastiqa/ops/ssim.py)


def _fold_reflect(t, r, dim):
    """Adjoint of reflect padding by r along dim: padded -> source, mirrored parts added back."""
    n = t.shape[dim] - 2 * r
    main = t.narrow(dim, r, n).clone()
    main.narrow(dim, 1, r).add_(t.narrow(dim, 0, r).flip(dim))
    main.narrow(dim, n - 1 - r, r).add_(t.narrow(dim, r + n, r).flip(dim))
    return main


def blur_adjoint(t, gs, padding):
    """Adjoint (transpose) of _blur: maps an output-sized map back onto the input grid."""
    axes = t.dim() - 2
    gs = (gs,) * axes if isinstance(gs, torch.Tensor) else tuple(gs)
    rs = [g.numel() // 2 for g in gs]
    for axis in range(axes):
        t = _conv_axis(t, gs[axis], axis, rs[axis] if padding == "same_zero" else 0, transpose=True)
    if padding == "same_reflect":
        for axis in range(axes):
            t = _fold_reflect(t, rs[axis], 2 + axis)
    return t


def _components_grads(xa, ya, stats, c1, c2, g, padding, weights, dmap, need_gx, need_gy, dtype):
    """Gradients of sum_planes weights . (mean S, mean cs, mean |x-y|, mean l, mean c, mean s)
    + sum(dmap * (S, l, c, s)): the coefficients of csrc/common/ssim_math.h's ssim_components_grad,
    sigma_x = sqrt(max(sigma_x^2, 0)) with d sigma_x / d sigma_x^2 = 0 where sigma_x = 0."""
    mx, my, exx, eyy, exy = stats
    count = mx.shape[2:].numel()
    tail = (None,) * (xa.dim() - 2)  # images or volumes
    wv = [weights[(..., k, *tail)] / count for k in range(6)]
    ws, wc, wl, wk, wt = wv[0], wv[1], wv[3], wv[4], wv[5]
    if dmap is not None:
        dm = dmap.to(xa.dtype)
        ws, wl, wk, wt = ws + dm[0], wl + dm[1], wk + dm[2], wt + dm[3]
    sxx, syy, sxy = exx - mx * mx, eyy - my * my, exy - mx * my
    b1, b2 = mx * mx + my * my + c1, sxx + syy + c2
    sx, sy = sxx.clamp(min=0).sqrt(), syy.clamp(min=0).sqrt()
    ix = torch.where(sx > 0, 1 / sx, torch.zeros_like(sx))
    iy = torch.where(sy > 0, 1 / sy, torch.zeros_like(sy))
    q = sx * sy + c2 / 2
    lum = (2 * mx * my + c1) / b1
    cs = (2 * sxy + c2) / b2
    con = (2 * sx * sy + c2) / b2
    st = (sxy + c2 / 2) / q
    wlum = ws * cs + wl
    fmx, fmy = wlum * (2 * (my - mx * lum) / b1), wlum * (2 * (mx - my * lum) / b1)
    common = -(ws * lum * cs + wc * cs) / b2
    fxx = common + wk * (sy * ix - con) / b2 - wt * st * sy * ix / (2 * q)
    fyy = common + wk * (sx * iy - con) / b2 - wt * st * sx * iy / (2 * q)
    fxy = 2 * (ws * lum + wc) / b2 + wt / q
    dc = blur_adjoint(fxy, g, padding)
    sign = torch.sign(xa - ya) * (weights[(..., 2, *tail)] / xa.shape[2:].numel())
    gx = (blur_adjoint(fmx - 2 * mx * fxx - my * fxy, g, padding) + 2 * xa * blur_adjoint(fxx, g, padding)
          + ya * dc + sign).to(dtype) if need_gx else xa.new_empty((0,), dtype=dtype)
    gy = (blur_adjoint(fmy - 2 * my * fyy - mx * fxy, g, padding) + 2 * ya * blur_adjoint(fyy, g, padding)
          + xa * dc - sign).to(dtype) if need_gy else xa.new_empty((0,), dtype=dtype)
    return gx, gy


def _ssim_grads(xa, ya, stats, c1, c2, g, padding, weights, dmap, need_gx, need_gy, dtype):
    """Gradients of sum_planes weights . (mean S, mean cs, mean |x-y|) + sum(dmap * S)."""
    if weights.shape[-1] == 6:
        return _components_grads(xa, ya, stats, c1, c2, g, padding, weights, dmap, need_gx, need_gy, dtype)
    mx, my, exx, eyy, exy = stats
    count = mx.shape[2:].numel()
    tail = (None,) * (xa.dim() - 2)
    ws = weights[(..., 0, *tail)] / count
    wc = weights[(..., 1, *tail)] / count
    wl = weights[(..., 2, *tail)] / xa.shape[2:].numel()
    if dmap is not None:
        ws = ws + dmap.to(xa.dtype)
    mxy, mxx, myy = mx * my, mx * mx, my * my
    b1 = mxx + myy + c1
    b2 = (exx - mxx) + (eyy - myy) + c2
    # every term by division, as csrc/common/ssim_math.h: with zero variance (b2 = C2, small)
    # the three terms of the gradient below are ~1/C2 and cancel to ~1e-3 of that, so a
    # reciprocal's extra rounding shows (float32)
    lum = (2 * mxy + c1) / b1
    cs = (2 * (exy - mxy) + c2) / b2
    s = lum * cs
    wlum = ws * lum + wc
    dax = ws * (2 * cs * (my - mx * lum) / b1) + wlum * (2 * (mx * cs - my) / b2)
    day = ws * (2 * cs * (mx - my * lum) / b1) + wlum * (2 * (my * cs - mx) / b2)
    db = blur_adjoint(-(ws * s + wc * cs) / b2, g, padding)
    dc = blur_adjoint(2 * wlum / b2, g, padding)
    sign = torch.sign(xa - ya) * wl
    gx = (blur_adjoint(dax, g, padding) + 2 * xa * db + ya * dc + sign).to(dtype) if need_gx \
        else xa.new_empty((0,), dtype=dtype)
    gy = (blur_adjoint(day, g, padding) + 2 * ya * db + xa * dc - sign).to(dtype) if need_gy \
        else xa.new_empty((0,), dtype=dtype)
    return gx, gy


def map_memory_format(x):
    """Layout of the SSIM map of x: channels_last for channels_last images (as ATen's suggest_memory_format)."""
    if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


def _acc_setup(x, y, win_size, win_sigma, padding):
    acc = acc_dtype(x.dtype)
    xa, ya = x.to(acc), y.to(acc)
    g = windows(win_size, win_sigma, x.dim() - 2, acc, x.device)
    return xa, ya, g, Padding(padding).name.lower()


def _components_planes(pred, xa, ya, stats, c1, c2, want_map):
    """planes (N, C, 6) and the (4, N, C, *output size) map S, l, c, s (or empty) of the components
    (images or volumes)."""
    s_map, cs_map, lum, con, st = components_from_stats(*stats, c1, c2)
    dims = tuple(range(2, pred.dim()))
    planes = torch.stack([s_map.mean(dims), cs_map.mean(dims), (xa - ya).abs().mean(dims), lum.mean(dims),
                          con.mean(dims), st.mean(dims)], -1)
    if not want_map:
        return planes, pred.new_empty((0,))
    n, c, *out_size = s_map.shape
    out = torch.empty((4 * n, c, *out_size), dtype=pred.dtype, device=pred.device,
                      memory_format=map_memory_format(pred))
    out.copy_(torch.cat([s_map, lum, con, st], 0))
    return planes, out.view(4, n, c, *out_size)


def planes_fwd(pred, target, win_size, win_sigma, c1, c2, padding, want_map, want_l1, components, d_planes,
               need_grad_pred, need_grad_target):
    """(planes (N, C, 3): per-plane means of S, cs, |pred-target|; map or empty; gx; gy): the plane
    kernel of fastiqa/backends/ssim_compose.py (components: (N, C, 6) planes, (4, N, C, Ho, Wo) map)."""
    xa, ya, g, pad = _acc_setup(pred, target, win_size, win_sigma, padding)
    stats = ssim_stats(xa, ya, g, pad)
    if components:
        planes, out_map = _components_planes(pred, xa, ya, stats, c1, c2, want_map)
        return planes, out_map, pred.new_empty((0,)), pred.new_empty((0,))
    s_map, cs_map = ssim_from_stats(*stats, c1, c2)
    dims = tuple(range(2, pred.dim()))
    planes = torch.stack([s_map.mean(dims), cs_map.mean(dims), (xa - ya).abs().mean(dims)], -1)
    out_map = torch.empty(s_map.shape, dtype=pred.dtype, device=pred.device,
                          memory_format=map_memory_format(pred)).copy_(s_map) if want_map \
        else pred.new_empty((0,))
    if d_planes is None or not (need_grad_pred or need_grad_target):
        return planes, out_map, pred.new_empty((0,)), pred.new_empty((0,))
    gx, gy = _ssim_grads(xa, ya, stats, c1, c2, g, pad, d_planes, None, need_grad_pred, need_grad_target,
                         pred.dtype)
    return planes, out_map, gx, gy


def planes_bwd(pred, target, win_size, win_sigma, c1, c2, padding, d_planes, d_map, need_grad_pred,
               need_grad_target):
    """(gx, gy): the plane gradients of fastiqa/backends/ssim_compose.py."""
    xa, ya, g, pad = _acc_setup(pred, target, win_size, win_sigma, padding)
    stats = ssim_stats(xa, ya, g, pad)
    return _ssim_grads(xa, ya, stats, c1, c2, g, pad, d_planes, d_map, need_grad_pred, need_grad_target, pred.dtype)


# the ops' entry points (fastiqa/_kernel_schemas.py): the contract built on the plane kernels above
ssim_fwd, ssim_bwd = ssim_compose.entry_points(planes_fwd, planes_bwd)
