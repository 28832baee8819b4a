"""Streaming evaluation meters: per-image values aggregated over a test set, and
summed across ranks under torch.distributed.

    from fastiqa.meters import PSNRMeter, SSIMMeter, MeterCollection
    meters = MeterCollection(psnr=PSNRMeter(crop_border=4, test_y_channel=True),
                             ssim=SSIMMeter(crop_border=4, test_y_channel=True))
    for lr, hr in loader:
        meters.update(model(lr).clamp(0, 1), hr)      # batches, any size
    print(meters.compute())                           # {'psnr': ..., 'psnr_pooled': ..., 'ssim': ...}

Each meter keeps the sum of its per-image values and the number of images, so the
mean is the per-image average of the published tables whatever the batch sizes.
PSNRMeter also keeps the set's squared errors and sample count: compute_pooled() is
the PSNR of everything seen as one signal (fastiqa.metrics.pooled_psnr: torchmetrics'
PSNR with dim=None; ffmpeg's psnr "average" for frames of one size), and a
MeterCollection reports it as '<name>_pooled' beside the mean ('psnr_pooled').
compute() sums (sum, count) over all ranks of the process group when
torch.distributed is initialised: ranks may see different numbers of images
(uneven last batches, DistributedSampler without padding) and the mean is still
that of all images. Every rank must call compute() (it is a collective).
Images are read as fastiqa.metrics reads them (see its doc for input order,
channel order and value range); extra options go to sr_psnr / sr_ssim.
"""
import math
from typing import Dict, Optional

import numpy as np
import torch

from . import metrics as _metrics

__all__ = ["Meter", "PSNRMeter", "SSIMMeter", "MSSSIMMeter", "LPIPSMeter", "DISTSMeter", "MeterCollection"]


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
        """The numbers summed across ranks (the first two: total, count)."""
        return [self.total, float(self.count)]

    def _synced_state(self):
        state = self._state()
        if self.sync and _dist_ready():
            state = _all_reduce_sum(state, self.process_group)
        return state

    @staticmethod
    def _results(state) -> Dict[str, float]:
        """{name suffix: value} from a (summed) state: '' is the mean."""
        total, count = state[0], state[1]
        return {"": total / count if count else float("nan")}

    def compute(self) -> float:
        """Mean over all images seen (on all ranks when distributed); nan when none."""
        return self._results(self._synced_state())[""]

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
    """Mean per-image PSNR (fastiqa.metrics.sr_psnr) over a stream of batches, and the
    pooled PSNR of the whole set (compute_pooled)."""

    sr_metric = staticmethod(_metrics.sr_psnr)

    def reset(self) -> None:
        super().reset()
        self.sq_err = 0.0  # squared errors on the [0, 1] scale (each batch's / its data_range**2)
        self.samples = 0  # compared samples (channels, 1 on the Y channel, x cropped H x W)

    def update(self, pred, target):
        parts = _metrics.sr_psnr_parts(pred, target, **self.options)
        v = _metrics._result(parts.psnr, parts.batched, parts.numpy_input)  # what sr_psnr returns
        arr = parts.psnr.cpu().numpy()
        self.total += float(arr.sum())
        self.count += int(arr.size)
        self.sq_err += math.fsum((parts.mse01.cpu() * parts.samples).tolist())
        self.samples += parts.samples * int(arr.size)
        if self.keep_values:
            self.values.extend(arr.tolist())
        return v

    def _state(self):
        return [self.total, float(self.count), self.sq_err, float(self.samples)]

    @staticmethod
    def _results(state) -> Dict[str, float]:
        return {"": Meter._results(state)[""], "_pooled": _metrics.pooled_psnr(state[2], state[3])}

    def compute_pooled(self) -> float:
        """PSNR (dB) of all images seen as one set (on all ranks when distributed):
        10 log10(1 / (total squared error / total sample count)) on the [0, 1] scale;
        inf when every image matched exactly, nan when none was seen. A collective."""
        return self._results(self._synced_state())["_pooled"]


class SSIMMeter(_SRMeter):
    """Mean per-image SSIM (fastiqa.metrics.sr_ssim) over a stream of batches."""

    sr_metric = staticmethod(_metrics.sr_ssim)


class MSSSIMMeter(_SRMeter):
    """Mean per-image MS-SSIM (fastiqa.metrics.sr_ms_ssim) over a stream of batches."""

    sr_metric = staticmethod(_metrics.sr_ms_ssim)


class LPIPSMeter(_SRMeter):
    """Mean per-image LPIPS (fastiqa.metrics.sr_lpips; net="alex" by default, net="vgg" as
    option) over a stream of batches; lower is better. The network is built once."""

    sr_metric = staticmethod(_metrics.sr_lpips)


class DISTSMeter(_SRMeter):
    """Mean per-image DISTS (fastiqa.metrics.sr_dists) over a stream of batches; lower is better."""

    sr_metric = staticmethod(_metrics.sr_dists)


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
        """{name: mean}, and {name}_pooled for a PSNRMeter (its pooled PSNR)."""
        names = list(self.meters)
        states = [self.meters[name]._state() for name in names]
        state = [v for st in states for v in st]
        if _dist_ready() and any(m.sync for m in self.meters.values()):
            state = _all_reduce_sum(state, self.process_group)
        out = {}
        at = 0
        for name, st in zip(names, states):
            for suffix, value in self.meters[name]._results(state[at: at + len(st)]).items():
                out[name + suffix] = value
            at += len(st)
        return out

    def __getitem__(self, name: str) -> Meter:
        return self.meters[name]

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.meters.items())
        return f"MeterCollection({inner})"
