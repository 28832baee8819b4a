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
import math
from typing import NamedTuple, Optional

import numpy as np
import torch

from . import functional as F
from .conventions import Y_OFFSET, Y_WEIGHTS, quantize8, rgb_to_y  # noqa: F401  (Y_*: re-exported)
from .functional._psnr import psnr_of_mse

SSIM_WIN = 11  # BasicSR's 11x11 Gaussian window (sigma 1.5)

INPUT_ORDERS = ("auto", "HWC", "CHW")
CHANNEL_ORDERS = ("auto", "rgb", "bgr")

__all__ = ["sr_psnr", "sr_ssim", "sr_ms_ssim", "sr_mse", "sr_mae", "sr_psnr_parts", "pooled_psnr", "sr_lpips",
           "sr_lpips_vgg", "sr_dists", "to_y_channel", "prepare", "SR_METRICS", "SRMetric", "PSNRParts"]


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


# (N, 3, H, W) RGB in [0, data_range] -> (N, 1, H, W) BT.601 Y in the same units:
# BasicSR's to_y_channel (Y on 0..255 for data_range 255), fastiqa.conventions' definition
to_y_channel = rgb_to_y


def _pair(img, img2, input_order, channel_order, data_range):
    x, r, batched, numpy_input = prepare(img, input_order, channel_order, data_range, "img")
    y, _, _, _ = prepare(img2, input_order, channel_order, r, "img2")
    if x.shape != y.shape:
        raise ValueError(f"img and img2 must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)} "
                         f"(as N, C, H, W)")
    if x.shape[-1] == 0 or x.shape[-2] == 0:
        raise ValueError(f"img and img2 are empty images ({x.shape[-1]}x{x.shape[-2]} pixels, W x H)")
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


def _per_image_stat(fn, img, img2, crop_border, input_order, test_y_channel, channel_order, data_range, quantize,
                    backend, kwargs, name):
    """Runs a fused per-image statistic of fastiqa.functional (psnr / mse / mae): Y channel,
    crop and quantisation happen inside the kernel, no converted or cropped copy."""
    _check_kwargs(kwargs, name)
    crop_border = _crop_arg(crop_border)
    x, y, r, batched, numpy_input = _pair(img, img2, input_order, channel_order, data_range)
    yc = bool(test_y_channel) and x.shape[1] == 3
    values = fn(x, y, r, "none", y_channel=yc, crop_border=crop_border, quantize=bool(quantize), backend=backend)
    return _result(values, batched, numpy_input)


class PSNRParts(NamedTuple):
    """sr_psnr's per-image values with what pooling them needs: psnr (float64 (N,)),
    mse01 (the per-image MSE divided by data_range**2, float64 (N,)), samples (the
    compared samples per image: channels, 1 on the Y channel, x the cropped H x W)."""
    psnr: torch.Tensor
    mse01: torch.Tensor
    samples: int
    batched: bool
    numpy_input: bool


def sr_psnr_parts(img, img2, crop_border: int, input_order: str = "auto", test_y_channel: bool = False, *,
                  channel_order: str = "auto", data_range: Optional[float] = None, quantize: bool = False,
                  backend: Optional[str] = None, **kwargs) -> PSNRParts:
    """sr_psnr and the parts of a pooled PSNR (PSNRParts), one fused MSE pass: the psnr
    is 10 log10(R^2 / mse) computed as fastiqa.functional.psnr computes it (bitwise)."""
    _check_kwargs(kwargs, "sr_psnr")
    crop_border = _crop_arg(crop_border)
    x, y, r, batched, numpy_input = _pair(img, img2, input_order, channel_order, data_range)
    yc = bool(test_y_channel) and x.shape[1] == 3
    m = F.mse(x, y, r, "none", y_channel=yc, crop_border=crop_border, quantize=bool(quantize), backend=backend)
    psnr = psnr_of_mse(m, r)  # fastiqa.functional.psnr's expression
    h, w = x.shape[-2] - 2 * crop_border, x.shape[-1] - 2 * crop_border
    return PSNRParts(psnr.detach(), (m / (r * r)).detach(), (1 if yc else x.shape[1]) * h * w, batched, numpy_input)


def pooled_psnr(sq_err: float, samples: float) -> float:
    """The PSNR of a set as one signal: 10 log10(1 / (sq_err / samples)), sq_err the sum
    of the squared errors of all its samples on the [0, 1] scale (each pair's divided by
    its data_range**2, so pairs of any bit depth pool), samples their count; images of
    different sizes weigh by their sample counts. inf when sq_err == 0, nan when samples == 0
    (and NaN in, NaN out)."""
    if not samples:
        return float("nan")
    if sq_err == 0:
        return float("inf")
    ratio = samples / sq_err  # 0 for an infinite error, nan for a NaN one
    return 10.0 * math.log10(ratio) if ratio > 0 else (float("-inf") if ratio == 0 else float("nan"))


def sr_psnr(img, img2, crop_border: int, input_order: str = "auto", test_y_channel: bool = False, *,
            channel_order: str = "auto", data_range: Optional[float] = None, quantize: bool = False,
            backend: Optional[str] = None, **kwargs):
    """PSNR (dB) as BasicSR's calculate_psnr: crop `crop_border` pixels from each
    side, optionally compare the Y channel, 10 log10(R^2 / mse), inf when identical.
    One fused pass (no cropped or converted copy). See the module doc for inputs."""
    parts = sr_psnr_parts(img, img2, crop_border, input_order, test_y_channel, channel_order=channel_order,
                          data_range=data_range, quantize=quantize, backend=backend, **kwargs)
    return _result(parts.psnr, parts.batched, parts.numpy_input)


def sr_mse(img, img2, crop_border: int, input_order: str = "auto", test_y_channel: bool = False, *,
           channel_order: str = "auto", data_range: Optional[float] = None, quantize: bool = False,
           backend: Optional[str] = None, **kwargs):
    """Per-image mean squared error with sr_psnr's conventions (crop, Y channel,
    quantise), in the images' units squared: divide by data_range**2 for [0, 1]."""
    return _per_image_stat(F.mse, img, img2, crop_border, input_order, test_y_channel, channel_order, data_range,
                           quantize, backend, kwargs, "sr_mse")


def sr_mae(img, img2, crop_border: int, input_order: str = "auto", test_y_channel: bool = False, *,
           channel_order: str = "auto", data_range: Optional[float] = None, quantize: bool = False,
           backend: Optional[str] = None, **kwargs):
    """Per-image mean absolute error with sr_psnr's conventions, in the images' units
    (divide by data_range for [0, 1])."""
    return _per_image_stat(F.mae, img, img2, crop_border, input_order, test_y_channel, channel_order, data_range,
                           quantize, backend, kwargs, "sr_mae")


def _cropped(x, y, crop_border: int):
    """x and y without crop_border pixels on each side (ValueError when nothing is left)."""
    h, w = x.shape[-2:]
    if 2 * crop_border >= min(h, w):
        raise ValueError(f"crop_border={crop_border} removes the whole {w}x{h} (W x H) image; it must be less "
                         f"than half of the smaller side ({(min(h, w) - 1) // 2} at most)")
    if crop_border:
        k = crop_border
        x, y = x[..., k:-k, k:-k], y[..., k:-k, k:-k]
    return x, y


def _ssim_inputs(img, img2, crop_border, input_order, test_y_channel, channel_order, data_range, quantize, min_side,
                 name):
    """(x, y, r, batched, numpy_input): the pair quantised, converted to Y and cropped as
    BasicSR's calculate_ssim does, contiguous float64 (N, C, H, W)."""
    crop_border = _crop_arg(crop_border)
    x, y, r, batched, numpy_input = _pair(img, img2, input_order, channel_order, data_range)
    if quantize:
        x, y = quantize8(x, r), quantize8(y, r)
    if test_y_channel and x.shape[1] == 3:
        x, y = to_y_channel(x, r), to_y_channel(y, r)
    x, y = _cropped(x, y, crop_border)
    if min(x.shape[-2:]) < min_side:
        raise ValueError(f"{name} needs images of at least {min_side}x{min_side} pixels after cropping "
                         f"crop_border={crop_border} from each side, got {x.shape[-1]}x{x.shape[-2]} (W x H), "
                         f"smaller than that; use larger images or a smaller crop_border")
    return x.contiguous(), y.contiguous(), r, batched, numpy_input


def sr_ssim(img, img2, crop_border: int, input_order: str = "auto", test_y_channel: bool = False, *,
            channel_order: str = "auto", data_range: Optional[float] = None, quantize: bool = False,
            backend: Optional[str] = None, **kwargs):
    """SSIM as BasicSR's calculate_ssim: crop, optional Y channel, then per channel the
    11x11 Gaussian (sigma 1.5) SSIM in valid mode with C1 = (0.01 L)^2, C2 = (0.03 L)^2,
    mean of the map; the channels' means averaged. Built on fastiqa.functional.ssim."""
    _check_kwargs(kwargs, "sr_ssim")
    x, y, r, batched, numpy_input = _ssim_inputs(img, img2, crop_border, input_order, test_y_channel, channel_order,
                                                 data_range, quantize, SSIM_WIN, "sr_ssim")
    values = F.ssim(x, y, data_range=r, win_size=SSIM_WIN, win_sigma=1.5, padding="valid", reduction="none",
                    backend=backend)
    return _result(values, batched, numpy_input)


def sr_ms_ssim(img, img2, crop_border: int, input_order: str = "auto", test_y_channel: bool = False, *,
               channel_order: str = "auto", data_range: Optional[float] = None, quantize: bool = False,
               backend: Optional[str] = None, **kwargs):
    """MS-SSIM (fastiqa.functional.ms_ssim: 5 scales, 11x11 Gaussian window, valid
    mode) with sr_ssim's conventions: quantise, Y channel, crop, then score. Needs
    images of at least 161x161 pixels after cropping."""
    _check_kwargs(kwargs, "sr_ms_ssim")
    x, y, r, batched, numpy_input = _ssim_inputs(img, img2, crop_border, input_order, test_y_channel, channel_order,
                                                 data_range, quantize, F.ms_ssim_min_size(SSIM_WIN), "sr_ms_ssim")
    values = F.ms_ssim(x, y, data_range=r, win_size=SSIM_WIN, win_sigma=1.5, reduction="none", backend=backend)
    return _result(values, batched, numpy_input)


def _perceptual_inputs(img, img2, crop_border, input_order, channel_order, data_range, quantize):
    """(x, y, batched, numpy_input): the pair quantised, cropped, in [0, 1], float32 RGB
    (a grey image as R = G = B): what LPIPS / DISTS read."""
    crop_border = _crop_arg(crop_border)
    x, y, r, batched, numpy_input = _pair(img, img2, input_order, channel_order, data_range)
    if quantize:
        x, y = quantize8(x, r), quantize8(y, r)
    if x.shape[1] == 1:
        x, y = x.expand(-1, 3, -1, -1), y.expand(-1, 3, -1, -1)
    x, y = _cropped(x, y, crop_border)
    return (x / r).to(torch.float32), (y / r).to(torch.float32), batched, numpy_input


def sr_lpips(img, img2, crop_border: int = 0, input_order: str = "auto", test_y_channel: bool = False, *,
             channel_order: str = "auto", data_range: Optional[float] = None, quantize: bool = False,
             net: str = "alex", backbone_weights: Optional[str] = None, backend: Optional[str] = None, **kwargs):
    """LPIPS v0.1 (fastiqa.functional.lpips, net "alex" by default) per image with sr_psnr's
    input conventions (crop, quantise, data_range), on the RGB images scaled to [0, 1] in
    float32: test_y_channel does not apply (the network reads colour; a grey image is read
    as R = G = B). backend is accepted for a common signature and unused (no fused head yet).
    Lower is better."""
    _check_kwargs(kwargs, "sr_lpips")
    x, y, batched, numpy_input = _perceptual_inputs(img, img2, crop_border, input_order, channel_order, data_range,
                                                    quantize)
    with torch.no_grad():
        values = F.lpips(x, y, "none", net=net, backbone_weights=backbone_weights)
    return _result(values, batched, numpy_input)


def sr_lpips_vgg(img, img2, crop_border: int = 0, input_order: str = "auto", test_y_channel: bool = False, **kwargs):
    """sr_lpips with net="vgg" (the LPIPS of many SR and 3DGS tables)."""
    return sr_lpips(img, img2, crop_border, input_order, test_y_channel, net="vgg", **kwargs)


def sr_dists(img, img2, crop_border: int = 0, input_order: str = "auto", test_y_channel: bool = False, *,
             channel_order: str = "auto", data_range: Optional[float] = None, quantize: bool = False,
             backbone_weights: Optional[str] = None, backend: Optional[str] = None, **kwargs):
    """DISTS (fastiqa.functional.dists) per image with sr_lpips's conventions (RGB, [0, 1],
    float32; test_y_channel does not apply). Lower is better."""
    _check_kwargs(kwargs, "sr_dists")
    x, y, batched, numpy_input = _perceptual_inputs(img, img2, crop_border, input_order, channel_order, data_range,
                                                    quantize)
    with torch.no_grad():
        values = F.dists(x, y, "none", backbone_weights=backbone_weights)
    return _result(values, batched, numpy_input)


class SRMetric(NamedTuple):
    """A per-image metric with the SR conventions. range_power: the value scales as
    data_range ** range_power (mse 2, mae 1, the others 0), so value / data_range **
    range_power puts every pair on the [0, 1] scale whatever its bit depth. kernel: the
    compiled op whose backends it runs on (None: no registered op, backend= unused).
    rgb: always scored on the colour images (the Y channel does not apply). backbone: the
    ImageNet weights it needs (fastiqa.weights), checked before any image is read."""
    fn: object
    kernel: Optional[str]
    range_power: int
    rgb: bool = False
    backbone: Optional[str] = None


# the metrics `fastiqa eval` and fastiqa.evaluate offer, by name
SR_METRICS = {
    "psnr": SRMetric(sr_psnr, "psnr_fwd", 0),
    "ssim": SRMetric(sr_ssim, "ssim_fwd", 0),
    "ms_ssim": SRMetric(sr_ms_ssim, "ssim_fwd", 0),
    "mse": SRMetric(sr_mse, "psnr_fwd", 2),
    "mae": SRMetric(sr_mae, "psnr_fwd", 1),
    "lpips": SRMetric(sr_lpips, None, 0, rgb=True, backbone="alexnet"),
    "lpips_vgg": SRMetric(sr_lpips_vgg, None, 0, rgb=True, backbone="vgg16"),
    "dists": SRMetric(sr_dists, None, 0, rgb=True, backbone="vgg16"),
}
