"""Reference of the PSNR family (the published SR convention, written the plain way):
the formulas, and the op contract of fastiqa_C::psnr_fwd / psnr_bwd."""

import torch

from ..._codes import LossKind
from ...conventions import Y_OFFSET, Y_WEIGHTS, acc_dtype, quantize8, rgb_to_y

# formulas


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
    out = 10.0 * torch.log10(data_range**2 / mse)
    return out.mean() if reduction == "mean" else out


# op contract (csrc/common/psnr_math.h; kind: LossKind.MSE or LossKind.L1 = MAE)


def psnr_fwd(pred, target, kind, crop, y_channel, quantize, data_range, need_grad):
    """(stat, grad): stat (N,) per-image mean of d^2 or |d| (accumulator dtype);
    grad = d(stat_n)/dx in pred's shape (zero in the border), or empty."""
    acc = acc_dtype(pred.dtype)
    xa, ya = pred.to(acc), target.to(acc)
    if quantize:
        xa, ya = (
            torch.round((xa * (255.0 / data_range)).clamp(0, 255)),
            torch.round((ya * (255.0 / data_range)).clamp(0, 255)),
        )
    n, c, h, w = pred.shape
    k = crop
    xa, ya = xa[:, :, k : h - k, k : w - k], ya[:, :, k : h - k, k : w - k]
    if y_channel:
        wts = torch.tensor([v / 255.0 for v in Y_WEIGHTS], dtype=acc, device=pred.device).view(1, 3, 1, 1)
        d = ((xa - ya) * wts).sum(1, keepdim=True)
    else:
        d = xa - ya
    count = d.shape[1] * d.shape[2] * d.shape[3]
    if kind == LossKind.MSE:
        value, deriv = d * d, 2 * d
    else:
        value, deriv = d.abs(), torch.sign(d)
    stat = value.flatten(1).sum(1) / count
    if quantize:
        u = data_range / 255.0
        stat = stat * (u * u if kind == LossKind.MSE else u)
    grad = pred.new_empty((0,))
    if need_grad:
        g = deriv / count
        if y_channel:
            g = g * wts
        grad = torch.zeros_like(pred, memory_format=torch.preserve_format)
        grad[:, :, k : h - k, k : w - k] = g.to(pred.dtype)
    return stat, grad


def psnr_bwd(grad, grad_out, need_grad_pred, need_grad_target):
    acc = grad_out.dtype
    gx = torch.empty_like(grad).copy_(grad.to(acc) * grad_out.view(-1, 1, 1, 1))
    return (gx if need_grad_pred else grad.new_empty((0,))), (-gx if need_grad_target else grad.new_empty((0,)))


def y_plane(img, divisor, data_range, crop):
    """The op contract of fastiqa_C::y_plane: (N, 3, H, W) RGB samples of any dtype -> the
    (N, 1, H - 2 crop, W - 2 crop) float64 BT.601 Y of img / divisor in data_range units,
    Y = 16 r / 255 + sum_c (w_c / 255) (t_c / divisor). The samples are divided before
    they are weighted (no division when divisor == 1), so v / 255 and 257 v / 65535 give
    bitwise the same Y. Differentiable for float inputs."""
    n, _, h, w = img.shape
    t = img[..., crop:h - crop, crop:w - crop].to(torch.float64)
    if divisor != 1.0:
        t = t / divisor
    wr, wg, wb = (c / 255.0 for c in Y_WEIGHTS)
    return (wr * t[:, 0:1] + wg * t[:, 1:2] + wb * t[:, 2:3]) + Y_OFFSET * data_range / 255.0
