"""The evaluation part of `fastiqa demo`: the photographs shipped in fastiqa/data
(see LICENSE-images.txt there) degraded two ways (bicubic x4 down and up; Gaussian
noise sigma 10/255), both saved-as-PNG (rounded to 8 bits), then scored the
published way (PSNR / SSIM on the Y channel, crop 4), with per-backend timings of
the fused PSNR against the eager reference written the published way."""

import os

import numpy as np
import torch

from . import functional as F
from . import metrics as M
from ._timing import time_ms
from .backends import reference as R
from .ops import _dispatch

PSNR_KERNEL = "psnr_fwd"  # the op whose kernels the demo times

SCALE = 4


def data_dir() -> str:
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


def load_images():
    """{name: (1, 3, H, W) float32 RGB in [0, 1]} of the shipped photographs."""
    from ._imageio import read_image

    out = {}
    for f in sorted(os.listdir(data_dir())):
        if f.endswith(".png"):
            arr, full = read_image(os.path.join(data_dir(), f))
            out[os.path.splitext(f)[0]] = torch.from_numpy(arr.astype(np.float32) / full).permute(2, 0, 1)[None]
    return out


def _png(x):
    return torch.round(x.clamp(0, 1) * 255) / 255


def degrade(hr, seed=0):
    """{'bicubic_x4': ..., 'noise_10': ...}: each rounded to 8 bits as a saved PNG."""
    lr = torch.nn.functional.interpolate(
        hr, scale_factor=1 / SCALE, mode="bicubic", antialias=True, align_corners=False
    )
    up = torch.nn.functional.interpolate(lr, size=hr.shape[-2:], mode="bicubic", align_corners=False)
    gen = torch.Generator().manual_seed(seed)
    noisy = hr + torch.randn(hr.shape, generator=gen) * (10 / 255)
    return {"bicubic_x4": _png(up), "noise_10": _png(noisy)}


def _time(fn, repeat, device):
    return time_ms(fn, repeat, device, warmup=3)[1]


def run(args) -> None:
    images = load_images()
    print(
        f"\nevaluation on the {len(images)} photographs shipped with fastiqa "
        f"(PSNR / SSIM on the Y channel, crop {SCALE}, 8-bit outputs; licences in fastiqa/data)"
    )
    print(f"{'image':<11} {'degradation':<12} {'size':>8} {'PSNR-Y dB':>10} {'SSIM-Y':>8}")
    per = {}
    batch_hr, batch_sr = [], []
    for name, hr in images.items():
        for deg, sr in degrade(hr).items():
            p = M.sr_psnr(sr, hr, SCALE, test_y_channel=True)[0].item()
            s = M.sr_ssim(sr, hr, SCALE, test_y_channel=True)[0].item()
            per.setdefault(deg, []).append((p, s))
            print(f"{name:<11} {deg:<12} {hr.shape[3]:>4}x{hr.shape[2]:<3} {p:>10.4f} {s:>8.4f}")
            if deg == "bicubic_x4":
                batch_hr.append(hr)
                batch_sr.append(sr)
    for deg, vals in per.items():
        print(
            f"{'mean':<11} {deg:<12} {'':>8} {np.mean([v[0] for v in vals]):>10.4f} "
            f"{np.mean([v[1] for v in vals]):>8.4f}"
        )

    hr, sr = torch.cat(batch_hr), torch.cat(batch_sr)
    devices = getattr(args, "device", None) or (["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    repeat = max(1, getattr(args, "repeat", 10))
    print(
        f"\nper-image PSNR (Y, crop {SCALE}, quantise) of the {hr.shape[0]}x3x{hr.shape[2]}x{hr.shape[3]} "
        f"batch, {repeat} repetitions"
    )
    print(f"{'device':<6} {'backend':<24} {'ms':>9} {'speed-up':>9} {'max |diff| dB':>14}")
    for dev_name in devices:
        device = torch.device(dev_name)
        x, y = sr.to(device), hr.to(device)
        want = R.psnr(x, y, 1.0, "none", None, True, SCALE, True)
        t_ref = _time(lambda: R.psnr(x, y, 1.0, "none", None, True, SCALE, True), repeat, device)
        print(f"{dev_name:<6} {'eager (convert,crop,round)':<24} {t_ref:>9.3f} {'1.0x':>9} {'':>14}")
        for backend in ("reference", "cpu", "cuda", "triton"):
            if not _dispatch.available(backend, device, PSNR_KERNEL)[0]:
                continue
            if backend == "triton" and device.type == "cpu":
                continue  # the Triton interpreter is a correctness tool, not a timing one
            fn = lambda: F.psnr(
                x, y, reduction="none", y_channel=True, crop_border=SCALE, quantize=True, backend=backend
            )
            t = _time(fn, repeat, device)
            diff = (fn().double() - want.double()).abs().max().item()
            print(f"{dev_name:<6} {'fastiqa ' + backend:<24} {t:>9.3f} {t_ref / t:>8.1f}x {diff:>14.2e}")
