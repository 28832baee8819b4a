"""The SSIM ops' contract on top of a Python backend's plane kernels: the rule of
csrc/host/ssim_op.h (the compiled backends' copy), for the reference and Triton backends.

planes_fwd(pred, target, win_size, win_sigma, c1, c2, padding, want_map, want_l1, components,
d_planes, need_grad_pred, need_grad_target) -> (planes, map, grad_pred, grad_target): per (image,
channel) plane the means of the SSIM map S, of the contrast-structure map cs and of
|pred - target| ((N, C, 3), accumulator dtype), the S map when want_map, and the gradients of
sum over planes of d_planes . planes when d_planes is given.
With components: planes (N, C, 6) also hold the means of l, c, s (csrc/common/ssim_math.h), the
map is (4, N, C, Ho, Wo) = S, l, c, s, and d_planes is never given (no forward gradient).
planes_bwd(pred, target, win_size, win_sigma, c1, c2, padding, d_planes, d_map,
need_grad_pred, need_grad_target) -> the gradients of that sum plus sum(d_map * S); with
(N, C, 6) d_planes the components' sum, d_map then (4, N, C, Ho, Wo) on S, l, c, s.
"""
import torch

from .._codes import Reduction, SsimOutput
from ..conventions import acc_dtype

# the op's stacked outputs with SsimOutput.COMPONENTS: S, l, c, s = these columns of the planes
COMPONENT_COLUMNS = (0, 3, 4, 5)


def _check_window(pred, win_size, win_sigma):
    """One window size and sigma per spatial axis (csrc/host/ssim_checks.h: ssim_window)."""
    axes = pred.dim() - 2
    if len(win_size) != axes or len(win_sigma) != axes:
        raise ValueError(f"fastiqa_C::ssim: win_size and win_sigma must hold one entry per spatial axis ({axes}), "
                         f"got {len(win_size)} and {len(win_sigma)}")
    for k, s in zip(win_size, win_sigma):
        if not (3 <= k <= 31 and k % 2 == 1):
            raise ValueError(f"fastiqa_C::ssim: win_size must be odd in [3, 31], got {k}")
        if not s > 0:
            raise ValueError(f"fastiqa_C::ssim: win_sigma must be > 0, got {s}")


def _check_codes(reduction, output, alpha):
    if reduction not in (Reduction.MEAN, Reduction.NONE, Reduction.PER_CHANNEL, Reduction.MAP):
        raise ValueError(f"fastiqa_C::ssim: unknown reduction {reduction}")
    if output not in tuple(SsimOutput):
        raise ValueError(f"fastiqa_C::ssim: unknown output {output}")
    if not 0 <= alpha <= 1:
        raise ValueError("fastiqa_C::ssim: alpha must be in [0, 1]")


def stored_gain(pred, reduction) -> float:
    """The power of two float16 forward gradients are stored times (csrc/host/ssim_op.h)."""
    if pred.dtype != torch.float16 or reduction == Reduction.MAP:
        return 1.0
    n, c = pred.shape[:2]
    count = pred.shape[2:].numel() * (n * c if reduction == Reduction.MEAN else c if reduction == Reduction.NONE else 1)
    return float(2 ** (max(int(count), 1).bit_length() - 1))


def d_planes(pred, output, alpha, reduction, factor, grad_cs=None):
    """d out / d (plane means), (N, C, 3): factor (a number, 0-dim, (N,) or (N, C) tensor, or None)
    times d value / d (S, cs, |d|) times d out / d value, plus grad_cs on the cs column.
    SsimOutput.COMPONENTS: (N, C, 6), factor (4,), (4, N) or (4, N, C) on S, l, c, s."""
    n, c = pred.shape[:2]
    acc = acc_dtype(pred.dtype)
    comp = output == SsimOutput.COMPONENTS
    w = torch.zeros((n, c, 6 if comp else 3), dtype=acc, device=pred.device)
    if comp:
        g = 1.0 / (n * c) if reduction == Reduction.MEAN else 1.0 / c if reduction == Reduction.NONE else 1.0
        if reduction != Reduction.MAP and factor is not None:
            f = factor.to(acc)
            f = f.reshape(4, 1, 1) if f.dim() == 1 else f.reshape(4, n, 1) if f.dim() == 2 else f
            w[..., COMPONENT_COLUMNS] = (f * g).expand(4, n, c).movedim(0, -1)
        if grad_cs is not None:
            w[..., 1] = grad_cs.to(acc)
        return w
    ks = 1.0 if output == SsimOutput.SSIM else -1.0 if output == SsimOutput.SSIM_LOSS else -alpha
    kl = 1.0 - alpha if output == SsimOutput.L1_SSIM else 0.0
    g = 1.0 / (n * c) if reduction == Reduction.MEAN else 1.0 / c if reduction == Reduction.NONE else 1.0
    if reduction != Reduction.MAP and factor is not None:
        f = factor.to(acc) if isinstance(factor, torch.Tensor) else torch.full((), factor, dtype=acc,
                                                                               device=pred.device)
        f = f.reshape(n, 1) if f.dim() == 1 else f
        w[..., 0] = f * (ks * g)
        w[..., 2] = f * (kl * g)
    if grad_cs is not None:
        w[..., 1] = grad_cs.to(acc)
    return w


def reduce_planes(planes, output, alpha, reduction):
    if output == SsimOutput.COMPONENTS:  # (4, ...): S, l, c, s
        value = planes[..., COMPONENT_COLUMNS].movedim(-1, 0)
        if reduction == Reduction.MEAN:
            return value.mean((1, 2))
        return value.mean(2) if reduction == Reduction.NONE else value.contiguous()
    s = planes[..., 0]
    value = s if output == SsimOutput.SSIM else (-s + 1) if output == SsimOutput.SSIM_LOSS \
        else planes[..., 2] * (1.0 - alpha) + (-s + 1) * alpha
    if reduction == Reduction.MEAN:
        return value.mean()
    if reduction == Reduction.NONE:
        return value.mean(1)
    return value.contiguous()


def forward(planes_fwd, pred, target, win_size, win_sigma, c1, c2, padding, reduction, output, alpha,
            need_grad_pred, need_grad_target):
    """fastiqa_C::ssim_fwd -> (out, cs (N, C), gscale, grad_pred, grad_target)."""
    _check_codes(reduction, output, alpha)
    _check_window(pred, win_size, win_sigma)
    comp = output == SsimOutput.COMPONENTS
    grad = (need_grad_pred or need_grad_target) and reduction != Reduction.MAP and not comp
    gain = stored_gain(pred, reduction) if not comp else 1.0
    dp = d_planes(pred, output, alpha, reduction, gain) if grad else None
    planes, s_map, gp, gt = planes_fwd(pred, target, win_size, win_sigma, c1, c2, padding,
                                       reduction == Reduction.MAP, output == SsimOutput.L1_SSIM, comp, dp,
                                       need_grad_pred and grad, need_grad_target and grad)
    out = s_map if reduction == Reduction.MAP else reduce_planes(planes, output, alpha, reduction)
    gscale = torch.full((), 1.0 / gain, dtype=acc_dtype(pred.dtype), device=pred.device)
    return out, planes[..., 1].contiguous(), gscale, gp, gt


def backward(planes_bwd, pred, target, win_size, win_sigma, c1, c2, padding, reduction, output, alpha, grad_out,
             grad_cs, need_grad_pred, need_grad_target):
    """fastiqa_C::ssim_bwd -> (grad_pred, grad_target) of grad_out . out + grad_cs . cs."""
    _check_codes(reduction, output, alpha)
    _check_window(pred, win_size, win_sigma)
    is_map = reduction == Reduction.MAP
    d_map = grad_out.to(pred.dtype) if grad_out is not None and is_map else None
    dp = d_planes(pred, output, alpha, reduction, None if is_map else grad_out, grad_cs)
    return planes_bwd(pred, target, win_size, win_sigma, c1, c2, padding, dp, d_map, need_grad_pred,
                      need_grad_target)


def entry_points(planes_fwd, planes_bwd):
    """(ssim_fwd, ssim_bwd): a backend's implementations of the two ops, built on its plane kernels."""

    def ssim_fwd(pred, target, win_size, win_sigma, c1, c2, padding, reduction, output, alpha, need_grad_pred,
                 need_grad_target):
        return forward(planes_fwd, pred, target, win_size, win_sigma, c1, c2, padding, reduction, output, alpha,
                       need_grad_pred, need_grad_target)

    def ssim_bwd(pred, target, win_size, win_sigma, c1, c2, padding, reduction, output, alpha, grad_out, grad_cs,
                 need_grad_pred, need_grad_target):
        return backward(planes_bwd, pred, target, win_size, win_sigma, c1, c2, padding, reduction, output, alpha,
                        grad_out, grad_cs, need_grad_pred, need_grad_target)

    return ssim_fwd, ssim_bwd
