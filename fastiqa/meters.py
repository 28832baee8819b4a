"""Streaming evaluation meters: per-image values aggregated over a test set, and
summed across ranks under torch.distributed.

    from fastiqa.meters import PSNRMeter, SSIMMeter, MeterCollection
    meters = MeterCollection(psnr=PSNRMeter(crop_border=4, test_y_channel=True),
                             ssim=SSIMMeter(crop_border=4, test_y_channel=True))
    for lr, hr in loader:
        meters.update(model(lr).clamp(0, 1), hr)      # batches, any size
    print(meters.compute())                           # {'psnr': ..., 'ssim': ...}

Each meter keeps the sum of its per-image values and the number of images, so the
mean is the per-image average of the published tables whatever the batch sizes.
compute() sums (sum, count) over all ranks of the process group when
torch.distributed is initialised: ranks may see different numbers of images
(uneven last batches, DistributedSampler without padding) and the mean is still
that of all images. Every rank must call compute() (it is a collective).
Images are read as fastiqa.metrics reads them (see its doc for input order,
channel order and value range); extra options go to sr_psnr / sr_ssim.
"""
from typing import Dict, Optional

import numpy as np
import torch

from . import metrics as _metrics

__all__ = ["Meter", "PSNRMeter", "SSIMMeter", "MSSSIMMeter", "MeterCollection"]


def _dist_ready(group=None) -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


# one tensor per (device, length, group) that every reduction of that shape reuses, never
# freed: on torch < 2.8 a gloo worker that drops the last reference to a tensor whose Python
# object is gone waits for the GIL, and ProcessGroupGloo's destructor joins that worker with
# the GIL held (destroy_process_group() after compute() hung in about 1 run of 3 on 2.6)
_BUFFERS = {}


def _all_reduce_sum(values, group=None):
    """Sums a list of float64 numbers over the ranks (one collective)."""
    import torch.distributed as dist

    backend = dist.get_backend(group)
    device = torch.device("cpu")
    if backend == "nccl":
        device = torch.device("cuda", torch.cuda.current_device())
    key = (device, len(values), id(group))
    t = _BUFFERS.get(key)
    if t is None:
        t = _BUFFERS[key] = torch.empty(len(values), dtype=torch.float64, device=device)
    t.copy_(torch.tensor(values, dtype=torch.float64))
    dist.all_reduce(t, op=dist.ReduceOp.SUM, group=group)
    return t.cpu().tolist()


class Meter:
    """Mean of a per-image metric over everything passed to update().

    metric: a function (pred, target, **options) -> per-image values (a float, a
    tensor or a numpy array of shape (N,)). keep_values=True also keeps this rank's
    per-image values (self.values)."""

    def __init__(self, metric, sync: bool = True, process_group=None, keep_values: bool = False, **options):
        self.metric = metric
        self.options = options
        self.sync = sync
        self.process_group = process_group
        self.keep_values = keep_values
        self.reset()

    def reset(self) -> None:
        self.total = 0.0
        self.count = 0
        self.values = []

    def update(self, pred, target):
        """Adds the images of one batch; returns their per-image values."""
        v = self.metric(pred, target, **self.options)
        arr = np.atleast_1d(np.asarray(v.cpu() if isinstance(v, torch.Tensor) else v, dtype=np.float64))
        self.total += float(arr.sum())
        self.count += int(arr.size)
        if self.keep_values:
            self.values.extend(arr.tolist())
        return v

    def _state(self):
        return [self.total, float(self.count)]

    def compute(self) -> float:
        """Mean over all images seen (on all ranks when distributed); nan when none."""
        total, count = self._state()
        if self.sync and _dist_ready():
            total, count = _all_reduce_sum([total, count], self.process_group)
        return total / count if count else float("nan")

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"{type(self).__name__}({opts})"


class _SRMeter(Meter):
    """A Meter of one of fastiqa.metrics' per-image SR metrics (the class's `sr_metric`)."""

    sr_metric = None

    def __init__(self, crop_border: int = 0, test_y_channel: bool = False, sync: bool = True,
                 process_group=None, keep_values: bool = False, **options):
        super().__init__(type(self).sr_metric, sync, process_group, keep_values, crop_border=crop_border,
                         test_y_channel=test_y_channel, **options)


class PSNRMeter(_SRMeter):
    """Mean per-image PSNR (fastiqa.metrics.sr_psnr) over a stream of batches."""

    sr_metric = staticmethod(_metrics.sr_psnr)


class SSIMMeter(_SRMeter):
    """Mean per-image SSIM (fastiqa.metrics.sr_ssim) over a stream of batches."""

    sr_metric = staticmethod(_metrics.sr_ssim)


class MSSSIMMeter(_SRMeter):
    """Mean per-image MS-SSIM (fastiqa.metrics.sr_ms_ssim) over a stream of batches."""

    sr_metric = staticmethod(_metrics.sr_ms_ssim)


class MeterCollection:
    """A named group of meters updated together; compute() syncs all of them in one
    collective and returns {name: mean}."""

    def __init__(self, meters: Optional[Dict[str, Meter]] = None, process_group=None, **named: Meter):
        self.meters: Dict[str, Meter] = dict(meters or {})
        self.meters.update(named)
        if not self.meters:
            raise ValueError("MeterCollection needs at least one meter")
        for name, m in self.meters.items():
            if not isinstance(m, Meter):
                raise TypeError(f"meter {name!r} must be a fastiqa.meters.Meter, got {type(m).__name__}")
        self.process_group = process_group

    def update(self, pred, target) -> Dict[str, object]:
        return {name: m.update(pred, target) for name, m in self.meters.items()}

    def reset(self) -> None:
        for m in self.meters.values():
            m.reset()

    def compute(self) -> Dict[str, float]:
        names = list(self.meters)
        state = [v for name in names for v in self.meters[name]._state()]
        if _dist_ready() and any(m.sync for m in self.meters.values()):
            state = _all_reduce_sum(state, self.process_group)
        out = {}
        for i, name in enumerate(names):
            total, count = state[2 * i], state[2 * i + 1]
            out[name] = total / count if count else float("nan")
        return out

    def __getitem__(self, name: str) -> Meter:
        return self.meters[name]

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.meters.items())
        return f"MeterCollection({inner})"
