"""Masked SSIM (issue 19 item 3): the mask and nan_policy arguments of ssim, ssim_loss and
l1_ssim_loss, and the reductions built on fastiqa_C::ssim_masked_fwd's per-plane sums.

Rule (formulas: fastiqa/backends/reference/_ssim_masked.py): W = G*m, mu_x = G*(m x) / W,
sigma_x^2 = G*(m x^2) / W - mu_x^2, sigma_xy = G*(m x y) / W - mu_x mu_y; S as without a mask;
the reduced SSIM is sum(m_c S) / sum(m_c) (m_c = m at the window centres) over a plane
("per_channel"), an image's planes ("none") or the batch ("mean"); the L1 term of l1_ssim_loss is
sum(m |x - y|) / sum(m) over the same sets. An empty set (weights summing to 0) gives NaN, as
torch's mean of an empty tensor, with a zero gradient.
nan_policy="omit": a pixel that is not finite in either input gets m = 0 and is replaced by 0
before the op (its gradient is 0); "propagate" (default) keeps NaN in, NaN out, even under m = 0.
"""
import torch

from .._codes import Padding, code
from ..conventions import acc_dtype
from ..ops import _registry

NAN_POLICIES = ("propagate", "omit")


def check_nan_policy(nan_policy):
    if nan_policy not in NAN_POLICIES:
        raise ValueError(f"nan_policy must be one of {NAN_POLICIES}, got {nan_policy!r}")


def check_mask(mask, x):
    """Validates mask against the images x (N, C, *spatial) (before any dtype work)."""
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"mask must be a torch.Tensor (bool or floating), got {type(mask).__name__}")
    if mask.dtype != torch.bool and not mask.is_floating_point():
        raise TypeError(f"mask must be a bool or floating tensor (weights m >= 0), got dtype {mask.dtype}")
    if mask.device != x.device:
        raise ValueError(f"mask must be on the images' device {x.device}, got {mask.device}")
    if mask.dim() != x.dim() or mask.shape[0] != x.shape[0] or mask.shape[1] not in (1, x.shape[1]) \
            or mask.shape[2:] != x.shape[2:]:
        raise ValueError(f"mask must have shape (N, 1, ...) or (N, C, ...) with the images' N, C and spatial size "
                         f"{tuple(x.shape)}, got {tuple(mask.shape)}")
    if mask.requires_grad:
        raise ValueError("mask is not differentiable (no gradient flows to it): pass mask.detach()")
    if mask.dtype != torch.bool and not torch.compiler.is_compiling():
        bad = ~(mask >= 0) | torch.isinf(mask)
        if bool(bad.any()):
            raise ValueError("mask weights must be finite and >= 0 (a NaN, inf or negative weight was found)")


def prepare(x, y, mask, nan_policy):
    """(x, y, m): m the weights in the accumulator dtype, expanded to x's shape (a (N, 1, ...)
    mask by stride 0); with nan_policy="omit" the non-finite pixels weigh 0 and are zeroed."""
    acc = acc_dtype(x.dtype)
    m = torch.ones((1,) * x.dim(), dtype=acc, device=x.device) if mask is None else mask.to(acc)
    if nan_policy == "omit":
        ok = torch.isfinite(x) & torch.isfinite(y)
        m = m * ok
        zero = torch.zeros((), dtype=x.dtype, device=x.device)
        x, y = torch.where(ok, x, zero), torch.where(ok, y, zero)
    return x, y, m.expand(x.shape)


def _ratio(num, den):
    """num / den, NaN with a zero gradient where den == 0."""
    ok = den > 0
    value = num / torch.where(ok, den, torch.ones_like(den))
    return torch.where(ok, value, torch.full_like(value, float("nan")))


def run(x, y, m, win_size, win_sigma, c1, c2, padding, reduction, output="ssim", alpha=0.0, backend=None):
    """The masked SSIM / 1 - SSIM / L1+SSIM loss of prepared (x, y, m) (see prepare)."""
    op = _registry.op("ssim_masked_fwd", x.device, backend, x, y, m)
    planes, s_map = _registry.call(op, x, y, m, [int(v) for v in win_size], [float(v) for v in win_sigma],
                                   float(c1), float(c2), code(Padding, padding, "padding"), reduction == "map")
    if reduction == "map":
        return s_map
    dims = {"per_channel": (), "none": (1,), "mean": (0, 1)}[reduction]
    sums = planes.sum(dims) if dims else planes
    s = _ratio(sums[..., 0], sums[..., 1])
    if output == "ssim":
        return s
    if output == "ssim_loss":
        return 1 - s
    l1 = _ratio(sums[..., 2], sums[..., 3])
    return (1 - alpha) * l1 + alpha * (1 - s)


def run_components(x, y, m, win_size, win_sigma, c1, c2, padding, reduction, backend=None):
    """[S, l, c, s] of prepared (x, y, m), each reduced as the masked SSIM (sum(m_c v) / sum(m_c));
    maps for reduction="map" (0 where W = 0)."""
    op = _registry.op("ssim_masked_components_fwd", x.device, backend, x, y, m)
    planes, maps = _registry.call(op, x, y, m, [int(v) for v in win_size], [float(v) for v in win_sigma],
                                  float(c1), float(c2), code(Padding, padding, "padding"), reduction == "map")
    if reduction == "map":
        return list(maps.unbind(0))
    dims = {"per_channel": (), "none": (1,), "mean": (0, 1)}[reduction]
    sums = planes.sum(dims) if dims else planes
    return [_ratio(sums[..., k], sums[..., 4]) for k in range(4)]
