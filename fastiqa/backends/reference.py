"""Plain-PyTorch implementations: the oracle of every test and the last fallback.

Two levels:
  * the formulas as a user would write them (l1_loss, mse_loss, charbonnier_loss):
    differentiable by torch autograd, used by tests (in float64) and benchmarks;
  * the op contract (pixel_fwd / pixel_bwd) that the compiled and Triton kernels
    also implement, used when no faster backend can run.
"""
import torch

# ----------------------------------------------------------------------------
# pixel family: formulas
# ----------------------------------------------------------------------------


def pixel_elementwise(pred, target, kind: str, eps: float = 1e-3):
    d = pred - target
    if kind == "l1":
        return d.abs()
    if kind == "mse":
        return d * d
    if kind == "charbonnier":  # sqrt(d^2 + eps^2)
        return torch.sqrt(d * d + eps * eps)
    raise ValueError(f"unknown pixel loss kind {kind!r}")


def reduce_weighted(loss, weight=None, reduction="mean"):
    """Applies an optional weight map, then none / sum / mean / weighted_mean
    (weighted_mean = sum(w * l) / sum(w broadcast to l's shape))."""
    if weight is not None:
        loss = loss * weight
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.mean()
    if reduction == "weighted_mean":
        if weight is None:
            return loss.mean()
        return loss.sum() / weight.expand_as(loss).sum()
    raise ValueError(f"unknown reduction {reduction!r}")


def l1_loss(pred, target, weight=None, reduction="mean"):
    return reduce_weighted(pixel_elementwise(pred, target, "l1"), weight, reduction)


def mse_loss(pred, target, weight=None, reduction="mean"):
    return reduce_weighted(pixel_elementwise(pred, target, "mse"), weight, reduction)


def charbonnier_loss(pred, target, eps=1e-3, weight=None, reduction="mean"):
    return reduce_weighted(pixel_elementwise(pred, target, "charbonnier", eps), weight, reduction)


# ----------------------------------------------------------------------------
# pixel family: op contract (see csrc/common/pixel_math.h for the codes)
# ----------------------------------------------------------------------------


def _acc_dtype(dtype):
    return torch.float64 if dtype == torch.float64 else torch.float32


def pixel_fwd(pred, target, weight, weight_mode, channels, inner, kind, c, reduction, norm_scale, need_grad):
    """(out, gscale, grad): grad is d(out)/d(pred) for none/sum/mean and d(sum w*l)/d(pred)
    for weighted_mean, whose 1/divisor is gscale (1 otherwise)."""
    acc = _acc_dtype(pred.dtype)
    d = pred.to(acc) - target.to(acc)
    if kind == 0:
        value, deriv = d.abs(), torch.sign(d)
    elif kind == 1:
        value, deriv = d * d, 2 * d
    else:
        s = torch.sqrt(d * d + c)
        value, deriv = s, d / s
    wsum = None
    if weight is not None:  # (N,1,...) weights broadcast over channels in every mode
        w = weight.to(acc)
        value, deriv = value * w, deriv * w
        wsum = w.expand_as(value).sum()
    one = value.new_ones(())
    if reduction == 0:
        out, gscale = torch.empty_like(pred).copy_(value), one
    elif reduction == 1:
        out, gscale = value.sum(), one
    elif reduction == 2:
        out, gscale = value.sum() / value.numel(), one
        deriv = deriv / value.numel()
    else:
        denom = (wsum * norm_scale) if wsum is not None else value.new_full((), float(value.numel()))
        out, gscale = value.sum() / denom, 1.0 / denom
    grad = torch.empty_like(pred).copy_(deriv) if need_grad else pred.new_empty((0,))
    return out, gscale, grad


def pixel_bwd(grad, grad_out, gscale, need_pred, need_target):
    scale = grad_out.to(gscale.dtype) * gscale
    gp = (grad.to(gscale.dtype) * scale).to(grad.dtype)
    gt = -gp if need_target else grad.new_empty((0,))
    return (gp if need_pred else grad.new_empty((0,))), gt


# ----------------------------------------------------------------------------
# ssim family: formulas (Wang et al. 2004, Gaussian window, separable filter)
# ----------------------------------------------------------------------------

SSIM_PADDINGS = ("valid", "same_zero", "same_reflect")


def gaussian_window(win_size: int, sigma: float, dtype=torch.float64, device=None):
    """Normalised 1-D Gaussian g[k] ~ exp(-(k - (win_size-1)/2)^2 / (2 sigma^2))."""
    coords = torch.arange(win_size, dtype=torch.float64, device=device) - (win_size - 1) / 2.0
    g = torch.exp(-(coords ** 2) / (2.0 * sigma * sigma))
    return (g / g.sum()).to(dtype)


def _blur(t, g, padding):
    """Separable Gaussian blur of every channel of t (N, C, H, W)."""
    c = t.shape[1]
    r = g.numel() // 2
    if padding == "same_reflect":
        t = torch.nn.functional.pad(t, (r, r, r, r), mode="reflect")
        pad = 0
    else:
        pad = r if padding == "same_zero" else 0
    wx = g.view(1, 1, 1, -1).expand(c, 1, 1, -1)
    wy = g.view(1, 1, -1, 1).expand(c, 1, -1, 1)
    t = torch.nn.functional.conv2d(t, wx, padding=(0, pad), groups=c)
    return torch.nn.functional.conv2d(t, wy, padding=(pad, 0), groups=c)


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


def ssim_maps(x, y, data_range=1.0, win_size=11, win_sigma=1.5, k1=0.01, k2=0.03, padding="valid"):
    """(ssim_map, cs_map) for x, y of shape (N, C, H, W).

    mu = G*x, sigma_x^2 = G*(x^2) - mu_x^2, sigma_xy = G*(xy) - mu_x mu_y,
    l = (2 mu_x mu_y + C1) / (mu_x^2 + mu_y^2 + C1), cs = (2 sigma_xy + C2) / (sigma_x^2 + sigma_y^2 + C2),
    C1 = (k1 L)^2, C2 = (k2 L)^2; ssim = l * cs.
    """
    g = gaussian_window(win_size, win_sigma, x.dtype, x.device)
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
    per channel and clamped at 0, 2x2 average pooling (padding H % 2, W % 2, zeros counted)."""
    weights = MS_SSIM_WEIGHTS if weights is None else weights
    w = torch.as_tensor(weights, dtype=x.dtype, device=x.device)
    values = []
    for level in range(len(weights)):
        s_map, cs_map = ssim_maps(x, y, data_range, win_size, win_sigma, k1, k2, padding)
        if level < len(weights) - 1:
            values.append(torch.relu(cs_map.flatten(2).mean(-1)))
            pad = (x.shape[2] % 2, x.shape[3] % 2)
            x = torch.nn.functional.avg_pool2d(x, kernel_size=2, padding=pad)
            y = torch.nn.functional.avg_pool2d(y, kernel_size=2, padding=pad)
    values.append(torch.relu(s_map.flatten(2).mean(-1)))
    per_channel = torch.prod(torch.stack(values, 0) ** w.view(-1, 1, 1), dim=0)
    if reduction == "per_channel":
        return per_channel
    if reduction == "none":
        return per_channel.mean(1)
    return per_channel.mean()


MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def l1_ssim_loss(x, y, alpha=0.2, data_range=1.0, win_size=11, win_sigma=1.5, k1=0.01, k2=0.03,
                 padding="same_zero", reduction="mean"):
    """(1 - alpha) * mean|x - y| + alpha * (1 - SSIM), per image for reduction="none"
    (the 3DGS photometric loss: zero "same" padding by default, as functional.l1_ssim_loss)."""
    s = ssim(x, y, data_range, win_size, win_sigma, k1, k2, padding, "none")
    l1 = (x - y).abs().flatten(1).mean(-1)
    v = (1 - alpha) * l1 + alpha * (1 - s)
    return v if reduction == "none" else v.mean()


# ----------------------------------------------------------------------------
# ssim family: op contract (see csrc/common/ssim_math.h and fastiqa/ops/ssim.py)
# ----------------------------------------------------------------------------

PADDING_CODES = {"valid": 0, "same_zero": 1, "same_reflect": 2}
_PADDING_NAMES = {v: k for k, v in PADDING_CODES.items()}


def _fold_reflect(t, r, dim):
    """Adjoint of reflect padding by r along dim: padded -> source, mirrored parts added back."""
    n = t.shape[dim] - 2 * r
    main = t.narrow(dim, r, n).clone()
    main.narrow(dim, 1, r).add_(t.narrow(dim, 0, r).flip(dim))
    main.narrow(dim, n - 1 - r, r).add_(t.narrow(dim, r + n, r).flip(dim))
    return main


def blur_adjoint(t, g, padding):
    """Adjoint (transpose) of _blur: maps an output-sized map back onto the input grid."""
    c = t.shape[1]
    r = g.numel() // 2
    pad = r if padding == "same_zero" else 0
    wx = g.view(1, 1, 1, -1).expand(c, 1, 1, -1)
    wy = g.view(1, 1, -1, 1).expand(c, 1, -1, 1)
    t = torch.nn.functional.conv_transpose2d(t, wy, padding=(pad, 0), groups=c)
    t = torch.nn.functional.conv_transpose2d(t, wx, padding=(0, pad), groups=c)
    if padding == "same_reflect":
        t = _fold_reflect(_fold_reflect(t, r, 2), r, 3)
    return t


def _ssim_grads(xa, ya, stats, c1, c2, g, padding, weights, dmap, need_gx, need_gy, dtype):
    """Gradients of sum_planes weights . (mean S, mean cs, mean |x-y|) + sum(dmap * S)."""
    mx, my, exx, eyy, exy = stats
    count = mx.shape[2] * mx.shape[3]
    ws = weights[..., 0, None, None] / count
    wc = weights[..., 1, None, None] / count
    wl = weights[..., 2, None, None] / (xa.shape[2] * xa.shape[3])
    if dmap is not None:
        ws = ws + dmap.to(xa.dtype)
    mxy, mxx, myy = mx * my, mx * mx, my * my
    inv_b1 = 1 / (mxx + myy + c1)
    inv_b2 = 1 / ((exx - mxx) + (eyy - myy) + c2)
    lum = (2 * mxy + c1) * inv_b1
    cs = (2 * (exy - mxy) + c2) * inv_b2
    s = lum * cs
    wlum = ws * lum + wc
    dax = ws * (2 * cs * (my - mx * lum) * inv_b1) + wlum * 2 * (mx * cs - my) * inv_b2
    day = ws * (2 * cs * (mx - my * lum) * inv_b1) + wlum * 2 * (my * cs - mx) * inv_b2
    db = blur_adjoint(-(ws * s + wc * cs) * inv_b2, g, padding)
    dc = blur_adjoint(2 * wlum * inv_b2, g, padding)
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
    acc = _acc_dtype(x.dtype)
    xa, ya = x.to(acc), y.to(acc)
    g = gaussian_window(win_size, win_sigma, acc, x.device)
    return xa, ya, g, _PADDING_NAMES[padding]


def ssim_fwd(x, y, win_size, win_sigma, c1, c2, padding, want_map, want_l1, weights, need_gx, need_gy):
    """(planes (N, C, 3): per-plane means of S, cs, |x-y|; map or empty; gx; gy): the contract
    of fastiqa_C::ssim_fwd."""
    xa, ya, g, pad = _acc_setup(x, y, win_size, win_sigma, padding)
    stats = ssim_stats(xa, ya, g, pad)
    s_map, cs_map = ssim_from_stats(*stats, c1, c2)
    planes = torch.stack([s_map.mean((2, 3)), cs_map.mean((2, 3)), (xa - ya).abs().mean((2, 3))], -1)
    out_map = torch.empty(s_map.shape, dtype=x.dtype, device=x.device,
                          memory_format=map_memory_format(x)).copy_(s_map) if want_map \
        else x.new_empty((0,))
    if weights is None or not (need_gx or need_gy):
        return planes, out_map, x.new_empty((0,)), x.new_empty((0,))
    gx, gy = _ssim_grads(xa, ya, stats, c1, c2, g, pad, weights, None, need_gx, need_gy, x.dtype)
    return planes, out_map, gx, gy


def ssim_bwd(x, y, win_size, win_sigma, c1, c2, padding, weights, dmap, need_gx, need_gy):
    """(gx, gy): the contract of fastiqa_C::ssim_bwd."""
    xa, ya, g, pad = _acc_setup(x, y, win_size, win_sigma, padding)
    stats = ssim_stats(xa, ya, g, pad)
    return _ssim_grads(xa, ya, stats, c1, c2, g, pad, weights, dmap, need_gx, need_gy, x.dtype)


# ----------------------------------------------------------------------------
# psnr family: formulas (the published SR convention, written the plain way)
# ----------------------------------------------------------------------------

# ITU-R BT.601 luma for RGB in [0, 1]: Y = 16 + 65.481 R + 128.553 G + 24.966 B (Y in [16, 235]).
Y_WEIGHTS = (65.481, 128.553, 24.966)
Y_OFFSET = 16.0


def rgb_to_y(x, data_range=1.0):
    """(N, 3, H, W) RGB in [0, data_range] -> (N, 1, H, W) BT.601 luma in the same units."""
    r, g, b = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    return (Y_OFFSET * data_range + Y_WEIGHTS[0] * r + Y_WEIGHTS[1] * g + Y_WEIGHTS[2] * b) / 255.0


def quantize8(x, data_range=1.0):
    """Rounds to the data_range's 8-bit grid (clamp, *255, round half to even, /255), as saving to PNG."""
    return torch.round((x / data_range * 255.0).clamp(0, 255)) * (data_range / 255.0)


def psnr_prepare(x, y, data_range=1.0, y_channel=False, crop_border=0, quantize=False):
    """The published preparation, one step after the other: round, Y, crop."""
    if quantize:
        x, y = quantize8(x, data_range), quantize8(y, data_range)
    if y_channel:
        x, y = rgb_to_y(x, data_range), rgb_to_y(y, data_range)
    if crop_border:
        k = crop_border
        x, y = x[..., k:-k, k:-k], y[..., k:-k, k:-k]
    return x, y


def mse_per_image(x, y, data_range=1.0, y_channel=False, crop_border=0, quantize=False):
    x, y = psnr_prepare(x, y, data_range, y_channel, crop_border, quantize)
    return ((x - y) ** 2).flatten(1).mean(1)


def mae_per_image(x, y, data_range=1.0, y_channel=False, crop_border=0, quantize=False):
    x, y = psnr_prepare(x, y, data_range, y_channel, crop_border, quantize)
    return (x - y).abs().flatten(1).mean(1)


def psnr(x, y, data_range=1.0, reduction="none", eps=None, y_channel=False, crop_border=0, quantize=False):
    """Per-image 10 log10(R^2 / mse) (inf when mse == 0 unless eps: R^2 / (mse + eps))."""
    mse = mse_per_image(x, y, data_range, y_channel, crop_border, quantize)
    if eps is not None:
        mse = mse + eps
    out = 10.0 * torch.log10(data_range ** 2 / mse)
    return out.mean() if reduction == "mean" else out


# ----------------------------------------------------------------------------
# psnr family: op contract (csrc/common/psnr_math.h; kind 0 = MSE, 1 = MAE)
# ----------------------------------------------------------------------------


def psnr_fwd(x, y, kind, crop, y_channel, quantize, data_range, need_grad):
    """(stat, grad): stat (N,) per-image mean of d^2 or |d| (accumulator dtype);
    grad = d(stat_n)/dx in x's shape (zero in the border), or empty."""
    acc = _acc_dtype(x.dtype)
    xa, ya = x.to(acc), y.to(acc)
    if quantize:
        xa, ya = torch.round((xa * (255.0 / data_range)).clamp(0, 255)), torch.round((ya * (255.0 / data_range)).clamp(0, 255))
    n, c, h, w = x.shape
    k = crop
    xa, ya = xa[:, :, k:h - k, k:w - k], ya[:, :, k:h - k, k:w - k]
    if y_channel:
        wts = torch.tensor([v / 255.0 for v in Y_WEIGHTS], dtype=acc, device=x.device).view(1, 3, 1, 1)
        d = ((xa - ya) * wts).sum(1, keepdim=True)
    else:
        d = xa - ya
    count = d.shape[1] * d.shape[2] * d.shape[3]
    if kind == 0:
        value, deriv = d * d, 2 * d
    else:
        value, deriv = d.abs(), torch.sign(d)
    stat = value.flatten(1).sum(1) / count
    if quantize:
        u = data_range / 255.0
        stat = stat * (u * u if kind == 0 else u)
    grad = x.new_empty((0,))
    if need_grad:
        g = deriv / count
        if y_channel:
            g = g * wts
        grad = torch.zeros_like(x, memory_format=torch.preserve_format)
        grad[:, :, k:h - k, k:w - k] = g.to(x.dtype)
    return stat, grad


def psnr_bwd(grad, grad_out, need_x, need_y):
    acc = grad_out.dtype
    gx = torch.empty_like(grad).copy_(grad.to(acc) * grad_out.view(-1, 1, 1, 1))
    return (gx if need_x else grad.new_empty((0,))), (-gx if need_y else grad.new_empty((0,)))

# gram family: formulas (BasicSR's _gram_mat and style term, piq's unnormalised Gram)
# ----------------------------------------------------------------------------

GRAM_CRITERIA = ("l1", "l2", "fro")


def gram_matrix(feat, normalize=True):
    """(N, C, H, W) -> (N, C, C): F F^T / (C*H*W) (normalize) or F F^T, in feat's dtype."""
    n, c, h, w = feat.shape
    f = feat.reshape(n, c, h * w)
    g = f.bmm(f.transpose(1, 2))
    return g / (c * h * w) if normalize else g


def gram_criterion(a, b, criterion="l1"):
    """BasicSR's criterion between two tensors: mean L1, mean squared, or Frobenius norm."""
    if criterion == "l1":
        return (a - b).abs().mean()
    if criterion == "l2":
        return ((a - b) ** 2).mean()
    if criterion == "fro":
        return torch.norm(a - b, p="fro")
    raise ValueError(f"unknown criterion {criterion!r}")


def style_loss(feat_x, feat_y=None, criterion="l1", normalize=True, target_gram=None):
    gx = gram_matrix(feat_x, normalize)
    gy = target_gram if target_gram is not None else gram_matrix(feat_y, normalize)
    return gram_criterion(gx, gy.expand_as(gx) if gy.dim() == 3 else gy, criterion)


# ----------------------------------------------------------------------------
# gram family: op contract (features as (N, C, K) views; see csrc/common/gram_math.h)
# ----------------------------------------------------------------------------


def _gram_acc(t):
    return t.to(_acc_dtype(t.dtype))


def gram_fwd(feat, scale):
    f = _gram_acc(feat)
    g = torch.bmm(f, f.transpose(1, 2)) * scale
    return 0.5 * (g + g.transpose(1, 2))  # exactly symmetric


def gram_apply(q, feat, alpha):
    out = torch.matmul(q * alpha, _gram_acc(feat))
    return torch.empty_like(feat).copy_(out)


def style_fwd(x, y, target_gram, scale, criterion, need_grad):
    acc = _acc_dtype(x.dtype)
    gx = gram_fwd(x, scale)
    gy = gram_fwd(y, scale) if y is not None else target_gram.to(acc).expand_as(gx)
    d = gx - gy
    count = d.numel()
    if criterion == 0:
        loss, p = d.abs().sum() / count, torch.sign(d) / count
    elif criterion == 1:
        loss, p = (d * d).sum() / count, 2 * d / count
    else:
        loss = torch.sqrt((d * d).sum())
        p = torch.where(loss > 0, d / loss, torch.zeros_like(d))
    return loss, (p.contiguous() if need_grad else x.new_empty((0,), dtype=acc))


def style_bwd(x, y, p, grad_out, scale, need_x, need_y):
    q = (p + p.transpose(1, 2)) * (grad_out.to(p.dtype) * scale)
    gx = gram_apply(q, x, 1.0) if need_x else x.new_empty((0,))
    gy = gram_apply(q, y, -1.0) if need_y else x.new_empty((0,))
    return gx, gy
