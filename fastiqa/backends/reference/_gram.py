"""Reference of the Gram family (BasicSR's _gram_mat and style term, piq's unnormalised
Gram): the formulas, and the op contract on (N, C, K) feature views (csrc/common/gram_math.h)."""
import torch

from ..._codes import Criterion
from ...conventions import acc_dtype

# formulas

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


# gram family: op contract (features as (N, C, K) views; see csrc/common/gram_math.h)


def _gram_acc(t):
    return t.to(acc_dtype(t.dtype))


def gram_fwd(feat, scale):
    f = _gram_acc(feat)
    g = torch.bmm(f, f.transpose(1, 2)) * scale
    return 0.5 * (g + g.transpose(1, 2))  # exactly symmetric


def gram_apply(q, feat, alpha):
    out = torch.matmul(q * alpha, _gram_acc(feat))
    return torch.empty_like(feat).copy_(out)


def style_fwd(pred, target, target_gram, scale, criterion, need_grad):
    acc = acc_dtype(pred.dtype)
    gx = gram_fwd(pred, scale)
    gy = gram_fwd(target, scale) if target is not None else target_gram.to(acc).expand_as(gx)
    d = gx - gy
    count = d.numel()
    if criterion == Criterion.L1:
        loss, p = d.abs().sum() / count, torch.sign(d) / count
    elif criterion == Criterion.L2:
        loss, p = (d * d).sum() / count, 2 * d / count
    else:
        loss = torch.sqrt((d * d).sum())
        p = torch.where(loss > 0, d / loss, torch.zeros_like(d))
    return loss, (p.contiguous() if need_grad else pred.new_empty((0,), dtype=acc))


def style_bwd(pred, target, p, grad_out, scale, need_grad_pred, need_grad_target):
    q = (p + p.transpose(1, 2)) * (grad_out.to(p.dtype) * scale)
    gx = gram_apply(q, pred, 1.0) if need_grad_pred else pred.new_empty((0,))
    gy = gram_apply(q, target, -1.0) if need_grad_target else pred.new_empty((0,))
    return gx, gy
