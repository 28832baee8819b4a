"""Paper-exact super-resolution metrics: BasicSR's calculate_psnr / calculate_ssim,
same argument names, same numbers, one fused pass per batch.

    from fastiqa.metrics import sr_psnr, sr_ssim
    sr_psnr(sr, hr, crop_border=4, test_y_channel=True)      # a float per image

The published convention (SR papers' tables, BasicSR): per-image PSNR / SSIM on
the Y channel of ITU-R BT.601 (Y = 16 + 65.481 R + 128.553 G + 24.966 B for RGB in
[0, 1]), `scale` pixels cropped from each border, outputs rounded to uint8 first,
SSIM with the 11x11 Gaussian window (sigma 1.5) in valid mode, averaged over images.

Inputs, and how each is read unless told otherwise:

=====================  ============  ==============  =============
input                  input_order   channel_order   data_range
=====================  ============  ==============  =============
numpy array            HWC           BGR (cv2)       255 (uint16: 65535)
torch uint8 tensor     CHW           RGB             255
torch float tensor     CHW           RGB             1.0
=====================  ============  ==============  =============

numpy follows BasicSR's calculate_psnr (images read by cv2: BGR, HWC, [0, 255]
whatever the dtype); tensors follow BasicSR's tensor convention (RGB, CHW, floats
in [0, 1]). A batch adds a leading N ((N,H,W,C) or (N,C,H,W)); a 2-D array is one
grayscale image. Channel order matters only for the Y channel of 3-channel images;
test_y_channel on other channel counts leaves the images as they are (as BasicSR).
quantize=True rounds both images to the 8-bit grid of data_range first (what
saving an SR output to PNG does); BasicSR's functions expect that done already.

Results: a float for one image; for a batch a float64 tensor (torch input) or a
numpy array (numpy input) with one value per image. Everything is computed in
float64. On RGB the values are BasicSR's to ~1e-12 dB; on the Y channel to ~1e-6 dB
PSNR and ~1e-8 SSIM, because BasicSR rounds its Y channel to float32 and we do not
(published tables print two to four decimals).
"""
from typing import Optional

import numpy as np
import torch

from . import functional as F

# ITU-R BT.601 luma weights for RGB in [0, 1] and offset (Y in [16, 235] on 0..255)
Y_WEIGHTS = (65.481, 128.553, 24.966)
Y_OFFSET = 16.0

INPUT_ORDERS = ("auto", "HWC", "CHW")
CHANNEL_ORDERS = ("auto", "rgb", "bgr")

__all__ = ["sr_psnr", "sr_ssim", "to_y_channel", "prepare"]


def _check_kwargs(kwargs, fn):
    unknown = set(kwargs) - {"better"}  # BasicSR's metric options pass better='higher'
    if unknown:
        raise TypeError(f"{fn}() got unexpected keyword argument(s) {sorted(unknown)}")


def prepare(img, input_order="auto", channel_order="auto", data_range=None, name="img"):
    """(images, data_range, batched, numpy_input): images as a float64 (N, C, H, W)
    tensor in [0, data_range], channels in RGB order when there are 3 (BGR flipped)."""
    numpy_input = isinstance(img, np.ndarray)
    if numpy_input:
        if img.dtype == np.bool_ or not (np.issubdtype(img.dtype, np.integer) or np.issubdtype(img.dtype, np.floating)):
            raise TypeError(f"{name} must hold integers or floats, got numpy dtype {img.dtype}")
        t = torch.from_numpy(np.ascontiguousarray(img))
    elif isinstance(img, torch.Tensor):
        if img.dtype == torch.bool or img.is_complex():
            raise TypeError(f"{name} must hold integers or floats, got {img.dtype}")
        t = img.detach()
    else:
        raise TypeError(f"{name} must be a numpy array or a torch.Tensor, got {type(img).__name__}")
    if input_order not in INPUT_ORDERS:
        raise ValueError(f"input_order must be one of {INPUT_ORDERS}, got {input_order!r}")
    if channel_order not in CHANNEL_ORDERS:
        raise ValueError(f"channel_order must be one of {CHANNEL_ORDERS}, got {channel_order!r}")
    order = input_order if input_order != "auto" else ("HWC" if numpy_input else "CHW")
    corder = channel_order if channel_order != "auto" else ("bgr" if numpy_input else "rgb")
    if data_range is None:
        if t.dtype == torch.uint16:
            data_range = 65535.0
        elif t.is_floating_point() and not numpy_input:
            data_range = 1.0
        else:
            data_range = 255.0
    if isinstance(data_range, bool) or not isinstance(data_range, (int, float)) or not data_range > 0:
        raise ValueError(f"data_range must be a number > 0, got {data_range!r}")
    batched = t.dim() == 4
    if t.dim() == 2:
        t = t[None, :, :, None] if order == "HWC" else t[None, None]
    elif t.dim() == 3:
        t = t[None]
    elif t.dim() != 4:
        raise ValueError(f"{name} must be an image (H, W), (H, W, C) / (C, H, W) or a batch of them, "
                         f"got shape {tuple(t.shape)}")
    if order == "HWC":
        t = t.permute(0, 3, 1, 2)  # a channels-last view: the kernels read it in place
    t = t.to(torch.float64)
    if corder == "bgr" and t.shape[1] == 3:
        t = t.flip(1)
    return t, float(data_range), batched, numpy_input


def to_y_channel(x, data_range=1.0):
    """(N, 3, H, W) RGB in [0, data_range] -> (N, 1, H, W) BT.601 Y in the same units
    (BasicSR's to_y_channel, which gives Y on 0..255 for data_range 255)."""
    r, g, b = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    return (Y_OFFSET * data_range + Y_WEIGHTS[0] * r + Y_WEIGHTS[1] * g + Y_WEIGHTS[2] * b) / 255.0


def _pair(img, img2, input_order, channel_order, data_range):
    x, r, batched, numpy_input = prepare(img, input_order, channel_order, data_range, "img")
    y, _, _, _ = prepare(img2, input_order, channel_order, r, "img2")
    if x.shape != y.shape:
        raise ValueError(f"img and img2 must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)} "
                         f"(as N, C, H, W)")
    if x.device != y.device:
        y = y.to(x.device)
    return x, y, r, batched, numpy_input


def _crop_arg(crop_border):
    if isinstance(crop_border, bool) or not isinstance(crop_border, (int, np.integer)) or crop_border < 0:
        raise ValueError(f"crop_border must be an integer >= 0, got {crop_border!r}")
    return int(crop_border)


def _result(values: torch.Tensor, batched: bool, numpy_input: bool):
    values = values.detach().to(torch.float64)
    if not batched:
        return float(values[0])
    return values.cpu().numpy() if numpy_input else values


def sr_psnr(img, img2, crop_border: int, input_order: str = "auto", test_y_channel: bool = False, *,
            channel_order: str = "auto", data_range: Optional[float] = None, quantize: bool = False,
            backend: Optional[str] = None, **kwargs):
    """PSNR (dB) as BasicSR's calculate_psnr: crop `crop_border` pixels from each
    side, optionally compare the Y channel, 10 log10(R^2 / mse), inf when identical.
    One fused pass (no cropped or converted copy). See the module doc for inputs."""
    _check_kwargs(kwargs, "sr_psnr")
    crop_border = _crop_arg(crop_border)
    x, y, r, batched, numpy_input = _pair(img, img2, input_order, channel_order, data_range)
    yc = bool(test_y_channel) and x.shape[1] == 3
    values = F.psnr(x, y, r, "none", y_channel=yc, crop_border=crop_border, quantize=bool(quantize), backend=backend)
    return _result(values, batched, numpy_input)


def sr_ssim(img, img2, crop_border: int, input_order: str = "auto", test_y_channel: bool = False, *,
            channel_order: str = "auto", data_range: Optional[float] = None, quantize: bool = False, **kwargs):
    """SSIM as BasicSR's calculate_ssim: crop, optional Y channel, then per channel the
    11x11 Gaussian (sigma 1.5) SSIM in valid mode with C1 = (0.01 L)^2, C2 = (0.03 L)^2,
    mean of the map; the channels' means averaged. Built on fastiqa.functional.ssim."""
    _check_kwargs(kwargs, "sr_ssim")
    crop_border = _crop_arg(crop_border)
    x, y, r, batched, numpy_input = _pair(img, img2, input_order, channel_order, data_range)
    if quantize:
        x = torch.round((x * (255.0 / r)).clamp(0, 255)) * (r / 255.0)
        y = torch.round((y * (255.0 / r)).clamp(0, 255)) * (r / 255.0)
    if test_y_channel and x.shape[1] == 3:
        x, y = to_y_channel(x, r), to_y_channel(y, r)
    if crop_border:
        h, w = x.shape[-2:]
        if 2 * crop_border >= min(h, w):
            raise ValueError(f"crop_border={crop_border} removes the whole {h}x{w} image")
        k = crop_border
        x, y = x[..., k:-k, k:-k], y[..., k:-k, k:-k]
    x, y = x.contiguous(), y.contiguous()
    values = F.ssim(x, y, data_range=r, win_size=11, win_sigma=1.5, padding="valid", reduction="none")
    return _result(values, batched, numpy_input)
