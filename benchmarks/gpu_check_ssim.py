"""Correctness and speed of the SSIM family on a GPU (run by gpu_check.sh; python benchmarks/gpu_check_ssim.py).

Correctness: the cuda and triton backends against the float64 reference (values and both
gradients, every padding and reduction, float32 / float16 / float64, channels_last).
Speed: SSIM loss forward+backward at 5x3x1080x1920 float32, the memory floor (x and y read
once, the gradient written once) and the fraction of it reached at the device's bandwidth.
"""
import time

import torch

import fastiqa.functional as F
from fastiqa.backends import reference as R

torch.manual_seed(0)
dev = torch.device("cuda")
failures = []


def check(backend, shape, padding, reduction, dtype, layout=torch.contiguous_format):
    x = torch.rand(shape, dtype=torch.float64, device=dev)
    y = (x + 0.2 * torch.randn_like(x)).clamp(0, 1)
    xr, yr = x.clone().requires_grad_(), y.clone().requires_grad_()
    ref = R.ssim(xr, yr, padding=padding, reduction=reduction)
    go = torch.randn_like(ref)
    gx_ref, gy_ref = torch.autograd.grad((ref * go).sum(), (xr, yr))
    xf = x.to(dtype).contiguous(memory_format=layout).requires_grad_()
    yf = y.to(dtype).contiguous(memory_format=layout).requires_grad_()
    out = F.ssim(xf, yf, padding=padding, reduction=reduction, backend=backend)
    (out * go.to(out.dtype)).sum().backward()
    tol = {torch.float64: 1e-9, torch.float32: 3e-5, torch.float16: 2e-2}[dtype]
    verr = (out.double() - ref).abs().max().item()
    gerr = max((xf.grad.double() - gx_ref).abs().max().item() / gx_ref.abs().max().item(),
               (yf.grad.double() - gy_ref).abs().max().item() / gy_ref.abs().max().item())
    ok = verr <= tol * 2 and gerr <= tol and torch.isfinite(xf.grad).all().item()
    if not ok:
        failures.append((backend, shape, padding, reduction, dtype, layout, verr, gerr))
    return ok


n = 0
for backend in ("cuda", "triton"):
    for shape in [(1, 1, 11, 11), (3, 3, 37, 53), (2, 5, 64, 97)]:
        for padding in ("valid", "same_zero", "same_reflect"):
            for reduction in ("mean", "none", "per_channel", "map"):
                for dtype in (torch.float32, torch.float64):
                    try:
                        check(backend, shape, padding, reduction, dtype)
                    except Exception as exc:  # report and go on
                        failures.append((backend, shape, padding, reduction, dtype, "error", repr(exc)[:200]))
                    n += 1
    for padding in ("valid", "same_reflect"):
        for dtype in (torch.float16, torch.float32):
            try:
                check(backend, (2, 3, 70, 90), padding, "mean", dtype, torch.channels_last)
            except Exception as exc:
                failures.append((backend, "channels_last", padding, dtype, "error", repr(exc)[:200]))
            n += 1
print(f"correctness: {n - len(failures)}/{n} cases pass")
for f in failures[:20]:
    print("  FAIL", f)

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
for backend in ("cuda", "triton"):
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
