"""Float64 oracle for the pixel losses, written from the definitions (not from fastiqa)."""
import torch


def elementwise(kind, pred, target, c):
    d = pred - target
    if kind == "l1":
        return d.abs()
    if kind == "mse":
        return d * d
    return torch.sqrt(d * d + c)


def loss(kind, pred, target, c=1e-6, weight=None, reduction="mean"):
    val = elementwise(kind, pred, target, c)
    if weight is not None:
        val = val * weight
    if reduction == "none":
        return val
    if reduction == "sum":
        return val.sum()
    if reduction == "mean":
        return val.mean()
    if reduction == "weighted_mean":
        return val.sum() / (weight.expand_as(val).sum() if weight is not None else val.numel())
    raise AssertionError(reduction)
