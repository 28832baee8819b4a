"""Wang's ssim.m automatic downsampling, a differentiable torch pre-pass of the SSIM family.

ssim.m (Z. Wang, "SSIM index with automatic downsampling", 2009), before the SSIM:

    f = max(1, round(min(M, N) / 256));
    if (f > 1)
        lpf = ones(f, f); lpf = lpf / sum(lpf(:));
        img = imfilter(img, lpf, 'symmetric', 'same');
        img = img(1:f:end, 1:f:end);
    end

Here per image and channel of (N, C, H, W): f from the smaller side, MATLAB's round
(half away from zero: min side 640 gives f = 3, Python's round would give 2); the f x f
box filter correlated in 'same' size with MATLAB's centre for a filter of size f,
floor((f + 1) / 2) (1-based: for even f the window reaches one more sample after the
output position than before it), 'symmetric' padding (the edge sample repeated: x(0) =
x(1), x(-1) = x(2), periodic beyond the image); then rows and columns 1, 1 + f, ...: the
output is ceil(H / f) x ceil(W / f). Only the kept positions are filtered: each is the
mean of one f x f block of the padded image, the blocks tile it without overlap, so the
pass is one gather of rows and of columns (index_select: any strides) and two block sums.
pyiqa's and piq's `downsample` (avg_pool2d(f): blocks from the first sample, floor(H / f)
outputs; Python's round, 2.5 -> 2) equal this only for f = 2 on even sides: MATLAB's
centre shifts the blocks of f >= 3 back by floor((f + 1) / 2) - 1 samples.

float16 / bfloat16 are filtered in float32 and rounded once to the input dtype (the
SSIM kernels take the input dtype); float32 / float64 in their own dtype.
"""
from typing import Optional, Tuple, Union

import torch
from torch import Tensor

from .. import _checks
from ..conventions import acc_dtype

AUTO = "auto"


def auto_factor(h: int, w: int) -> int:
    """ssim.m's f = max(1, round(min(h, w) / 256)), MATLAB's round (half away from zero)."""
    return max(1, (min(int(h), int(w)) + 128) // 256)


def check(downsample) -> Optional[Union[str, int]]:
    """None (off), "auto" or an integer factor >= 1; ValueError / TypeError naming downsample."""
    if downsample is None or (isinstance(downsample, str) and downsample == AUTO):
        return downsample
    if isinstance(downsample, str):
        raise ValueError(f"downsample must be None, 'auto' or an integer >= 1, got {downsample!r}")
    k = _checks.integer(downsample, "downsample", "None, 'auto' or an integer >= 1")
    if k < 1:
        raise ValueError(f"downsample must be None, 'auto' or an integer >= 1, got {downsample!r}")
    return k


def factor(downsample, h: int, w: int) -> int:
    """The factor f a (checked) downsample option gives for an h x w image (1: no pass)."""
    if downsample is None:
        return 1
    return auto_factor(h, w) if downsample == AUTO else int(downsample)


def _symmetric_index(start: int, length: int, size: int, device) -> Tensor:
    """Indices start .. start + length - 1 into a side of `size` samples with MATLAB's
    'symmetric' padding (mirror including the edge sample, periodic with period 2 size)."""
    i = torch.arange(start, start + length, device=device) % (2 * size)
    return torch.where(i < size, i, 2 * size - 1 - i)


def _box_axis(t: Tensor, dim: int, f: int) -> Tensor:
    """Block sums of f samples along dim, the blocks of ssim.m's kept outputs."""
    size = t.shape[dim]
    out = -(-size // f)  # ceil(size / f)
    before = (f + 1) // 2 - 1  # MATLAB's centre floor((f + 1) / 2), 1-based
    idx = _symmetric_index(-before, out * f, size, t.device)
    g = t.index_select(dim, idx)
    shape = list(g.shape)
    shape[dim: dim + 1] = [out, f]
    return g.reshape(shape).sum(dim + 1)


def ssim_m_downsample(x: Tensor, f: int) -> Tensor:
    """ssim.m's box filter ('symmetric', 'same') and every f-th row and column from the first,
    of (..., H, W); x itself when f == 1. Differentiable; result in x's dtype."""
    if f == 1:
        return x
    t = x.to(acc_dtype(x.dtype))
    t = _box_axis(_box_axis(t, t.dim() - 2, f), t.dim() - 1, f) / float(f * f)
    return t.to(x.dtype)


def apply(x: Tensor, y: Tensor, downsample) -> Tuple[Tensor, Tensor, int]:
    """(x, y, f): both images downsampled as ssim.m does when the option asks for it."""
    f = factor(check(downsample), x.shape[-2], x.shape[-1])
    return ssim_m_downsample(x, f), ssim_m_downsample(y, f), f
