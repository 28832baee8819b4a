"""Wall-clock timing of a callable on a device, shared by `fastiqa demo`, the eval demo
and `fastiqa selftest` (the benchmarks use pytest-benchmark instead)."""
import time

import torch


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_ms(step, repeat: int, device: torch.device, warmup: int = 2):
    """(last result of step(), mean milliseconds per call over `repeat` calls after `warmup`)."""
    out = None
    for _ in range(warmup):
        out = step()
    sync(device)
    t0 = time.perf_counter()
    for _ in range(repeat):
        out = step()
    sync(device)
    return out, (time.perf_counter() - t0) / repeat * 1e3
