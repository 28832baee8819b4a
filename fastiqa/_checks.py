"""Argument validation shared by the user-facing functions.

Every error names the argument and says what would be accepted.
"""
import math
import numbers

import numpy as np
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
    if x.dtype == y.dtype:
        return x, y
    dtype = torch.promote_types(x.dtype, y.dtype)
    return x.to(dtype), y.to(dtype)


def choice(value, name: str, allowed):
    if value not in allowed:
        raise ValueError(f"{name} must be one of {tuple(allowed)}, got {value!r}")
    return value


def as_number(value, name: str, rule: str) -> float:
    """value as a float: a Python or numpy real number or a 0-d real tensor (bool is not a
    number); TypeError naming the argument and the rule otherwise."""
    if isinstance(value, torch.Tensor) and value.dim() == 0 and value.dtype != torch.bool \
            and not value.is_complex():
        return float(value.item())
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be {rule}, got {value!r} ({type(value).__name__})")
    return float(value)


def positive(value, name: str) -> float:
    v = as_number(value, name, "a finite number > 0")
    if not 0 < v < math.inf:  # False for NaN; a comparison, not math.isfinite: v may be symbolic
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return v


def non_negative(value, name: str) -> float:
    v = as_number(value, name, "a finite number >= 0")
    if not 0 <= v < math.inf:  # False for NaN (symbolic-friendly, as positive)
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return v


def in_unit_interval(value, name: str) -> float:
    v = as_number(value, name, "a number in [0, 1]")
    if not 0 <= v <= 1:  # False for NaN
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    return v


def integer(value, name: str, rule: str) -> int:
    """value as an int: a Python or numpy integer or a 0-d integer tensor (not bool)."""
    if isinstance(value, torch.Tensor) and value.dim() == 0 and not value.is_floating_point() \
            and not value.is_complex() and value.dtype != torch.bool:
        return int(value.item())
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be {rule}, got {value!r} ({type(value).__name__})")
    return int(value)


def flag(value, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r} ({type(value).__name__})")
    return bool(value)


MIN_WIN, MAX_WIN = 3, 31
SSIM_PADDINGS = ("valid", "same_zero", "same_reflect")


SSIM_AXES = (2, 3)  # the spatial axis counts a per-axis window may have: (H, W), (D, H, W)


def _per_axis(value, name: str, one):
    """value validated by one(item, item_name): one number, or a list / tuple of one per
    spatial axis (a tuple then)."""
    if isinstance(value, (list, tuple)):
        if len(value) not in SSIM_AXES:
            counts = " or ".join(str(n) for n in SSIM_AXES)
            raise ValueError(f"{name} must be one number or {counts} (one per spatial axis), got {value!r}")
        return tuple(one(v, f"{name}[{i}]") for i, v in enumerate(value))
    return one(value, name)


def _win_size(value, name: str) -> int:
    rule = f"an odd integer in [{MIN_WIN}, {MAX_WIN}]"
    v = integer(value, name, rule + " (or one per spatial axis)")
    if v % 2 == 0 or not MIN_WIN <= v <= MAX_WIN:
        raise ValueError(f"{name} must be {rule}, got {v}")
    return v


def ssim_options(data_range, win_size, win_sigma, k1, k2, padding) -> tuple:
    """The SSIM family's options, validated (functional calls and module constructors):
    (data_range, win_size, win_sigma, k1, k2) as numbers; win_size / win_sigma one number
    or a tuple of one per spatial axis (spatial_window turns them into the per-axis tuples)."""
    win_size = _per_axis(win_size, "win_size", _win_size)
    win_sigma = _per_axis(win_sigma, "win_sigma", positive)
    data_range = positive(data_range, "data_range")
    k1 = non_negative(k1, "k1")
    k2 = non_negative(k2, "k2")
    if k2 == 0:
        raise ValueError("k2 must be > 0 (C2 = (k2 * data_range)^2 keeps the contrast term finite), got 0")
    choice(padding, "padding", SSIM_PADDINGS)
    return data_range, win_size, win_sigma, k1, k2


def spatial_window(win_size, win_sigma, axes: int) -> tuple:
    """(win_size, win_sigma) as validated by ssim_options -> tuples of `axes` entries (the
    window per spatial axis, outermost first); a per-axis sequence of another length is a
    ValueError naming the argument."""
    out = []
    for value, name in ((win_size, "win_size"), (win_sigma, "win_sigma")):
        if isinstance(value, tuple):
            if len(value) != axes:
                raise ValueError(f"{name} has {len(value)} entries but the inputs have {axes} spatial axes: "
                                 f"give one number or {axes}, got {value!r}")
            out.append(value)
        else:
            out.append((value,) * axes)
    return tuple(out)


def scale_weights(weights) -> tuple:
    """MS-SSIM scale weights: a non-empty sequence of finite numbers >= 0."""
    if isinstance(weights, torch.Tensor):
        weights = weights.tolist() if weights.dim() == 1 else [weights]
    try:
        items = list(weights)
    except TypeError:
        raise TypeError(f"weights must be a sequence of numbers >= 0 (one per scale), got {weights!r}") from None
    if not items:
        raise ValueError("weights must hold at least one scale weight, got an empty sequence")
    return tuple(non_negative(w, f"weights[{i}]") for i, w in enumerate(items))


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
