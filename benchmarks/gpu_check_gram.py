"""GPU check of the gram family (run where a CUDA GPU is at hand; never in tests/):

    python benchmarks/gpu_check_gram.py

For every GPU backend built here (cuda, triton): style loss and Gram values and
both inputs' gradients against the float64 reference on odd shapes, float32 /
float16 / bfloat16, NCHW and channels_last; then forward+backward timings of the
style loss on 8x256x64x64 and 4x512x32x32 against the eager reference (two bmm)
in the same run. The last line names the device.
"""
import sys
import time

import torch

import fastiqa.functional as F
from fastiqa.backends import reference as R
from fastiqa.ops import _dispatch, gram as G


def rel_err(got, want):
    return float((got.double() - want).abs().max() / want.abs().max().clamp_min(1e-300))


def check(backend, dev):
    worst = 0.0
    for shape in [(1, 3, 1, 1), (8, 3, 37, 53), (2, 64, 37, 53), (1, 257, 64, 64)]:
        for dtype, tol in [(torch.float32, 1e-5), (torch.float16, 1e-2), (torch.bfloat16, 1e-2)]:
            for cl in (False, True):
                x = torch.randn(shape, device=dev).to(dtype)
                y = torch.randn(shape, device=dev).to(dtype)
                if cl:
                    x, y = x.contiguous(memory_format=torch.channels_last), y.contiguous(memory_format=torch.channels_last)
                xr = x.double().requires_grad_(True)
                yr = y.double().requires_grad_(True)
                scale = 2.0 ** 24 if dtype == torch.float16 else 1.0  # fp16 grads need loss scaling
                ref = R.style_loss(xr, yr, "l1")
                gxr, gyr = torch.autograd.grad(ref * scale, (xr, yr))
                xx, yy = x.clone().requires_grad_(True), y.clone().requires_grad_(True)
                out = F.style_loss(xx, yy, "l1", backend=backend)
                gx, gy = torch.autograd.grad(out * scale, (xx, yy))
                errs = [rel_err(out, ref.detach()), rel_err(gx, gxr), rel_err(gy, gyr),
                        rel_err(F.gram_matrix(x, out_dtype=torch.float32, backend=backend), R.gram_matrix(xr).detach())]
                ok = all(e <= tol for e in errs)
                worst = max(worst, max(e / tol for e in errs))
                print(f"{backend:7s} {str(shape):18s} {str(dtype):15s} cl={cl!s:5s} "
                      + " ".join(f"{e:.1e}" for e in errs) + ("" if ok else "   <-- FAIL"))
    return worst <= 1.0


def timed(fn, x, y, dev, reps=10):
    def step():
        x.grad = None
        fn(x, y).backward()
    for _ in range(3):
        step()
    torch.cuda.synchronize(dev)
    t0 = time.perf_counter()
    for _ in range(reps):
        step()
    torch.cuda.synchronize(dev)
    return (time.perf_counter() - t0) / reps * 1e3


def main():
    if not torch.cuda.is_available():
        print("no CUDA device visible")
        return 1
    dev = torch.device("cuda")
    backends = [b for b in ("cuda", "triton") if _dispatch.available(b, dev, G.KERNEL)[0]]
    ok = all(check(b, dev) for b in backends)
    for shape in [(8, 256, 64, 64), (4, 512, 32, 32)]:
        for dtype in (torch.float32, torch.bfloat16):
            x = torch.randn(shape, device=dev, dtype=dtype).requires_grad_(True)
            y = torch.randn(shape, device=dev, dtype=dtype)
            t_ref = timed(lambda a, b: R.style_loss(a, b, "l1"), x, y, dev)
            for b in backends:
                t = timed(lambda a, c: F.style_loss(a, c, "l1", backend=b), x, y, dev)
                print(f"style fwd+bwd {shape} {dtype}: {b} {t:.3f} ms, reference {t_ref:.3f} ms, {t_ref / t:.2f}x")
    print(f"backends {backends}: {'PASS' if ok else 'FAIL'} on {torch.cuda.get_device_name(dev)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
