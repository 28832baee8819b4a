"""The settings of one evaluation, validated once (for the CLI and the Python API):
a bad setting is a UsageError (a ValueError naming the argument, its value and the
rule) raised before any image is read."""
import dataclasses
from typing import Optional, Tuple

import torch

from .. import metrics as M
from ..ops import _dispatch


class UsageError(ValueError):
    """A bad argument of the whole evaluation (exit status 2 on the command line)."""


@dataclasses.dataclass(frozen=True)
class Options:
    metrics: Tuple[str, ...]
    crop_border: int = 0
    y_channel: bool = False
    device: torch.device = torch.device("cpu")
    backend: Optional[str] = None
    workers: int = 2
    prefetch: int = 4  # decoded pairs waiting in memory, at most
    gpu_decode: bool = False  # JPEG decoded on the GPU by torchvision (CUDA only)


def parse_metrics(metrics):
    """'psnr,ssim' or ['psnr', 'ssim'] -> ('psnr', 'ssim'), checked against fastiqa.metrics.SR_METRICS."""
    names = metrics.split(",") if isinstance(metrics, str) else list(metrics)
    ms = [str(m).strip().lower().replace("-", "_") for m in names if str(m).strip()]
    if not ms:
        raise UsageError(f"metrics is empty ({metrics!r}); use e.g. psnr,ssim")
    for m in ms:
        if m not in M.SR_METRICS:
            raise UsageError(f"unknown metric {m!r} in metrics; choose from {', '.join(M.SR_METRICS)}")
    return tuple(dict.fromkeys(ms))


def default_device(device=None) -> torch.device:
    """The device asked for, else this process's CUDA device when there is one, else CPU."""
    if device is None:
        return torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"device {str(device)!r}, but no CUDA device is available to this torch")
    if device.type not in ("cpu", "cuda"):
        raise UsageError(f"device must be cpu or cuda, got {str(device)!r}")
    return device


def _check_backend(backend, device, metrics):
    if backend is None:
        return
    if backend not in _dispatch.BACKENDS:
        raise UsageError(f"backend must be one of {', '.join(_dispatch.BACKENDS)}, got {backend!r}")
    for m in metrics:
        if M.SR_METRICS[m].kernel is None:  # no registered op (lpips, dists): backend does not apply
            continue
        ok, why = _dispatch.available(backend, device, M.SR_METRICS[m].kernel)
        if not ok:
            raise UsageError(f"backend {backend!r} cannot run {m} on {device.type} here: {why}")


def _check_weights(metrics):
    """The ImageNet backbones the metrics need are on this machine (fastiqa.weights: never
    downloaded here; the error names the file and `fastiqa weights fetch NAME`)."""
    from .. import weights

    for m in metrics:
        name = M.SR_METRICS[m].backbone
        if name is not None:
            try:
                weights.find(name)
            except (weights.WeightsNotFoundError, weights.WeightsMismatchError) as exc:
                raise UsageError(f"metric {m}: {exc}") from None


def _check_gpu_decode(gpu_decode, device):
    if not gpu_decode:
        return
    if device.type != "cuda":
        raise UsageError(f"gpu_decode decodes JPEG on a CUDA device; the evaluation runs on {device.type}")
    try:
        import torchvision.io  # noqa: F401  (optional: only for GPU JPEG decoding)
    except ImportError:
        raise UsageError("gpu_decode needs torchvision (pip install torchvision)") from None


def make_options(metrics=("psnr", "ssim"), crop_border=0, y_channel=False, device=None, backend=None, workers=2,
                 prefetch=None, gpu_decode=False) -> Options:
    ms = parse_metrics(metrics)
    if isinstance(crop_border, bool) or not isinstance(crop_border, int) or crop_border < 0:
        raise UsageError(f"crop_border (--scale / --crop-border) must be an integer >= 0, got {crop_border!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise UsageError(f"workers must be an integer >= 1, got {workers!r}")
    prefetch = 2 * workers if prefetch is None else prefetch
    if isinstance(prefetch, bool) or not isinstance(prefetch, int) or prefetch < 1:
        raise UsageError(f"prefetch must be an integer >= 1, got {prefetch!r}")
    device = default_device(device)
    _check_backend(backend, device, ms)
    _check_weights(ms)
    _check_gpu_decode(gpu_decode, device)
    return Options(ms, crop_border, bool(y_channel), device, backend, workers, prefetch, bool(gpu_decode))
