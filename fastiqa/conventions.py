"""Numerical conventions shared by the layers (the one place each is written):
the accumulator-dtype rule, ITU-R BT.601 luma, 8-bit quantisation, the
MS-SSIM scale weights. Imports nothing of fastiqa, so any layer may use it.
"""
import torch

# MS-SSIM weights of Wang, Simoncelli & Bovik 2003 (5 scales), as pytorch_msssim.
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)

# ITU-R BT.601 luma for RGB in [0, 1]: Y = 16 + 65.481 R + 128.553 G + 24.966 B (Y in [16, 235]).
Y_WEIGHTS = (65.481, 128.553, 24.966)
Y_OFFSET = 16.0


def acc_dtype(dtype: torch.dtype) -> torch.dtype:
    """Accumulator dtype of every reduction: float64 for float64 inputs, else float32
    (a float16 sum cannot overflow, bfloat16 keeps its 8 bits of mantissa out of sums)."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def rgb_to_y(x, data_range=1.0):
    """(N, 3, H, W) RGB in [0, data_range] -> (N, 1, H, W) BT.601 luma in the same units."""
    r, g, b = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    return (Y_OFFSET * data_range + Y_WEIGHTS[0] * r + Y_WEIGHTS[1] * g + Y_WEIGHTS[2] * b) / 255.0


def quantize8(x, data_range=1.0):
    """Rounds to the data_range's 8-bit grid (clamp, *255, round half to even, /255), as saving to PNG."""
    return torch.round((x / data_range * 255.0).clamp(0, 255)) * (data_range / 255.0)
