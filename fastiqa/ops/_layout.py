"""Memory-layout normalisation shared by the op families.

The kernels read flat dense memory, so every tensor of one call must share one
dense layout: contiguous NCHW and channels_last pass through without copies,
anything else (slices with gaps, transposes, expanded tensors) is made
contiguous first and never read wrongly.
"""
import torch


def dense_format(t: torch.Tensor):
    """The memory format under which `t` is dense, or None."""
    if t.is_contiguous():
        return torch.contiguous_format
    if t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    if t.dim() == 5 and t.is_contiguous(memory_format=torch.channels_last_3d):
        return torch.channels_last_3d
    return None


def same_dense_layout(first: torch.Tensor, *others: torch.Tensor):
    """Returns (first, *others) all dense with identical strides, copying as little as possible."""
    fmt = dense_format(first)
    if fmt is None:
        fmt = torch.contiguous_format
        first = first.contiguous()
    out = [first]
    for t in others:
        if t.stride() != first.stride():
            if not _same_order(t, first):
                t = t.contiguous(memory_format=fmt)
            if t.stride() != first.stride():
                if _same_order(t, first):  # differs only in strides of size-1 dims: relabel, no copy
                    t = t.as_strided(t.shape, first.stride())
                else:
                    t = torch.empty_like(first, dtype=t.dtype).copy_(t)
        out.append(t)
    return tuple(out)


def _same_order(t: torch.Tensor, ref: torch.Tensor) -> bool:
    """Both dense with the same element order (strides equal except on size-1 dims)."""
    if t.shape != ref.shape or dense_format(t) is None:
        return False
    return all(a == b for a, b, n in zip(t.stride(), ref.stride(), t.shape) if n != 1)
