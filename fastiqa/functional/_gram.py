"""Gram family: the Gram matrix of features and the style (texture) loss between two
feature maps' Gram matrices, fused (one GEMM for both Grams' difference)."""
from typing import Optional

import torch
from torch import Tensor

from .. import _checks
from .._codes import Criterion, code, names
from ..conventions import acc_dtype
from ..ops import _registry
from ..ops._layout import dense_format, same_dense_layout
from ..ops.gram import features

GRAM_CRITERIA = names(Criterion)
# criterion(s a, s b) = s^p criterion(a, b): the power p of the Gram scale s in each criterion
_SCALE_POWER = {"l1": 1, "l2": 2, "fro": 1}


def _features(feat, name):
    _checks.tensor(feat, name)
    if feat.dim() != 4:
        raise ValueError(f"{name} must be (N, C, H, W) features, got shape {tuple(feat.shape)}")
    return feat


def _gram_scale(feat, normalize):
    _checks.flag(normalize, "normalize")
    _, c, h, w = feat.shape
    return 1.0 / max(c * h * w, 1) if normalize else 1.0


def _gram(feat: Tensor, scale: float, backend) -> Tensor:
    """(N, C, H, W) features in, (N, C, C) accumulator-dtype Gram out: fastiqa_C::gram_fwd."""
    f3 = features(feat)
    return _registry.call(_registry.op("gram_fwd", f3.device, backend, f3), f3, float(scale))


def _style(pred: Tensor, target: Optional[Tensor], target_gram: Optional[Tensor], scale: float, criterion: str,
           backend) -> Tensor:
    """Validated arguments in, the 0-dim loss out (accumulator dtype): fastiqa_C::style_fwd."""
    if target is not None:
        pred, target = same_dense_layout(pred, target)
        if dense_format(pred) not in (torch.contiguous_format, torch.channels_last):
            pred, target = pred.contiguous(), target.contiguous()
        p3, t3 = pred.flatten(2), target.flatten(2)
        grads = pred.requires_grad or target.requires_grad
    else:
        p3, t3 = features(pred), None
        target_gram = target_gram.to(acc_dtype(pred.dtype))
        if target_gram.dim() == 2:
            target_gram = target_gram.unsqueeze(0)
        target_gram = target_gram.contiguous()
        grads = pred.requires_grad or target_gram.requires_grad
    need_grad = torch.is_grad_enabled() and grads
    op = _registry.op("style_fwd", p3.device, backend, p3)
    return _registry.call(op, p3, t3, target_gram, float(scale), code(Criterion, criterion, "criterion"),
                          need_grad)[0]


def _traced_scale(scale) -> bool:
    """True under torch.compile when the Gram scale depends on the shape: the ops take it as
    a float argument, which would specialise the graph on every feature size (one recompile
    per size under dynamic shapes). Then the op runs unscaled and the scale is applied to its
    float32 (float64) result, outside the op; eager calls keep the scale in the op."""
    return torch.compiler.is_compiling() and scale != 1.0


def gram_matrix(feat: Tensor, normalize: bool = True, *, out_dtype=None,
                backend: Optional[str] = None) -> Tensor:
    """Gram matrix of (N, C, H, W) features: (N, C, C), F F^T / (C*H*W) (BasicSR, the
    default) or the raw F F^T with normalize=False (piq's convention).

    Accumulates in float32 (float64 for float64 features) and scales before the
    cast to out_dtype (default: feat's dtype), so float16 features never overflow
    a normalised Gram. Differentiable; channels_last features are read in place.
    """
    feat = _features(feat, "feat")
    scale = _gram_scale(feat, normalize)
    if _traced_scale(scale):
        g = _gram(feat, 1.0, backend) * scale
    else:
        g = _gram(feat, scale, backend)
    return g.to(out_dtype or feat.dtype)


def style_loss(pred: Tensor, target: Optional[Tensor] = None, criterion: str = "l1", *,
               target_gram: Optional[Tensor] = None, normalize: bool = True,
               backend: Optional[str] = None) -> Tensor:
    """Distance between the Gram matrices of the features pred and target ((N, C, H, W) each):
    "l1" mean |G_x - G_y|, "l2" mean (G_x - G_y)^2, "fro" ||G_x - G_y||_F (BasicSR's
    criteria; the mean is over all N*C*C entries).

    Fused: G_x - G_y comes from one GEMM over the features, the criterion is reduced
    in the same op and the gradients of both inputs come from one backward op.
    target_gram= (N, C, C), (1, C, C) or (C, C) replaces target with a precomputed
    (e.g. gram_matrix(target).float()) target Gram. Returns a 0-dim float32 tensor
    (float64 for float64 features).
    """
    pred = _features(pred, "pred")
    _checks.choice(criterion, "criterion", GRAM_CRITERIA)
    scale = _gram_scale(pred, normalize)
    if (target is None) == (target_gram is None):
        raise ValueError("give exactly one of target and target_gram")
    traced = _traced_scale(scale)
    if target is not None:
        pred, target = _checks.pair(pred, target, "pred", "target")
        if traced:
            return _style(pred, target, None, 1.0, criterion, backend) * scale ** _SCALE_POWER[criterion]
        return _style(pred, target, None, scale, criterion, backend)
    _checks.tensor(target_gram, "target_gram")
    n, c = pred.shape[:2]
    g = tuple(target_gram.shape)  # (n, c, c), (1, c, c) or (c, c), compared without `in`: torch 2.6
    if not (len(g) in (2, 3) and g[-2] == c and g[-1] == c and (len(g) == 2 or g[0] == n or g[0] == 1)):
        raise ValueError(
            f"target_gram must have shape ({n}, {c}, {c}), (1, {c}, {c}) or ({c}, {c}) for pred of "
            f"shape {tuple(pred.shape)}, got {tuple(target_gram.shape)}"
        )
    if target_gram.device != pred.device:
        raise ValueError(f"target_gram must be on pred's device {pred.device}, got {target_gram.device}")
    if traced:  # criterion(s G, T) = s^p criterion(G, T / s)
        unscaled = target_gram.to(acc_dtype(pred.dtype)) / scale
        return _style(pred, None, unscaled, 1.0, criterion, backend) * scale ** _SCALE_POWER[criterion]
    return _style(pred, None, target_gram, scale, criterion, backend)
