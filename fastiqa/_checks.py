"""Argument validation shared by the user-facing functions.

Every error names the argument and says what would be accepted.
"""
import math

import torch

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def tensor(t, name: str) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.dtype not in FLOAT_DTYPES:
        raise TypeError(
            f"{name} must be a floating-point tensor (float16, bfloat16, float32 or float64), "
            f"got {t.dtype}; convert it first, e.g. {name}.float() / 255"
        )
    return t


def pair(x, y, xname: str = "pred", yname: str = "target"):
    """Validates two same-shape float tensors on one device; returns them in a common dtype."""
    tensor(x, xname)
    tensor(y, yname)
    if x.shape != y.shape:
        raise ValueError(f"{xname} and {yname} must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    if x.device != y.device:
        raise ValueError(f"{xname} and {yname} must be on the same device, got {x.device} and {y.device}")
    dtype = torch.promote_types(x.dtype, y.dtype)
    return x.to(dtype), y.to(dtype)


def choice(value, name: str, allowed):
    if value not in allowed:
        raise ValueError(f"{name} must be one of {tuple(allowed)}, got {value!r}")
    return value


def positive(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a positive number, got {type(value).__name__}")
    if not (value > 0) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def weight_map(weight, like: torch.Tensor, name: str = "weight"):
    """A weight broadcastable to `like` ((N,1,H,W) or (N,C,H,W) typically), in like's dtype."""
    if weight is None:
        return None
    tensor(weight, name)
    if weight.device != like.device:
        raise ValueError(f"{name} must be on the input's device {like.device}, got {weight.device}")
    try:
        shape = torch.broadcast_shapes(weight.shape, like.shape)
    except RuntimeError:
        shape = None
    if shape != like.shape:
        raise ValueError(
            f"{name} of shape {tuple(weight.shape)} does not broadcast to the input shape "
            f"{tuple(like.shape)}; use (N,1,H,W) or (N,C,H,W)"
        )
    return weight.to(like.dtype)
