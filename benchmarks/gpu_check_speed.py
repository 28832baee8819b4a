"""Speed of the fused kernels on a GPU against the memory floor and the eager reference
(run by tests/gpu/gpu_check.sh; python benchmarks/gpu_check_speed.py). Correctness on the GPU is
`fastiqa selftest` (every family, backend, dtype, values and gradients vs float64).

SSIM loss forward+backward at 5x3x1080x1920 float32: the memory floor (x and y read once,
the gradient written once) and the fraction of it reached at the device's bandwidth;
style loss forward+backward on VGG-sized features.
"""
import time

import torch

import fastiqa.functional as F
from fastiqa.backends import reference as R
from fastiqa.ops import _dispatch

torch.manual_seed(0)
dev = torch.device("cuda")
BACKENDS = [b for b in ("cuda", "triton") if _dispatch.available(b, dev, "ssim_fwd")[0]]

# speed: SSIM loss forward+backward, 5x3x1080x1920 float32
shape = (5, 3, 1080, 1920)
x = torch.rand(shape, device=dev)
y = (x + 0.1 * torch.randn_like(x)).clamp(0, 1)
props = torch.cuda.get_device_properties(0)
# peak DRAM bandwidth: from the driver where torch exposes it, else the H100 SXM figure
bw = getattr(props, "memory_bandwidth", None) or 3.35e12


def timed(fn, reps=20):
    x.grad = None
    for _ in range(3):
        x.grad = None
        fn().backward()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    t0 = time.perf_counter()
    for _ in range(reps):
        x.grad = None
        fn().backward()
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) / reps, (torch.cuda.max_memory_allocated() - base) / 2 ** 20


x.requires_grad_()
floor_bytes = 3 * x.numel() * 4
rows = []
for backend in BACKENDS:
    t, mem = timed(lambda: 1 - F.ssim(x, y, padding="same_zero", backend=backend))
    rows.append((f"fastiqa[{backend}]", t, mem))
t, mem = timed(lambda: 1 - R.ssim(x, y, padding="same_zero"), reps=5)
rows.append(("reference (eager)", t, mem))
try:
    from fused_ssim import fused_ssim

    t, mem = timed(lambda: 1 - fused_ssim(x, y))
    rows.append(("fused_ssim", t, mem))
except ImportError:
    rows.append(("fused_ssim", float("nan"), float("nan")))
print(f"SSIM loss fwd+bwd {shape} float32, same_zero; floor {floor_bytes / 2**20:.0f} MiB moved = "
      f"{floor_bytes / bw * 1e3:.3f} ms at {bw / 1e12:.2f} TB/s")
for name, t, mem in rows:
    print(f"  {name:<20} {t * 1e3:9.3f} ms   {t / (floor_bytes / bw):6.2f}x floor   peak extra {mem:8.1f} MiB")
print(f"  (one image-sized buffer = {x.numel() * 4 / 2**20:.0f} MiB)")


def timed_style(fn, a, b, reps=10):
    def step():
        a.grad = None
        fn(a, b).backward()
    for _ in range(3):
        step()
    torch.cuda.synchronize(dev)
    t0 = time.perf_counter()
    for _ in range(reps):
        step()
    torch.cuda.synchronize(dev)
    return (time.perf_counter() - t0) / reps * 1e3


for fshape in [(8, 256, 64, 64), (4, 512, 32, 32)]:
    for dtype in (torch.float32, torch.bfloat16):
        fx = torch.randn(fshape, device=dev, dtype=dtype).requires_grad_(True)
        fy = torch.randn(fshape, device=dev, dtype=dtype)
        t_ref = timed_style(lambda a, b: R.style_loss(a, b, "l1"), fx, fy)
        for backend in BACKENDS:
            t = timed_style(lambda a, b: F.style_loss(a, b, "l1", backend=backend), fx, fy)
            print(f"style fwd+bwd {fshape} {dtype}: {backend} {t:.3f} ms, reference {t_ref:.3f} ms, {t_ref / t:.2f}x")
