"""Predicted vs measured time of every CUDA kernel, on the GPU at hand (run by
tests/gpu/gpu_check.sh; python tests/gpu/perf_check.py [--reps N]).

For each case of benchmarks/perf_model.py (the bar shapes and fused-ssim's published shapes)
the op runs on the compiled CUDA backend under torch.profiler; each fastiqa kernel's device
time (median over the repetitions, summed over its launches in one call) is printed beside
the model's floor for that kernel on this GPU (perf_model.GPUS, matched by name; another GPU
gets the H100 figures and says so), with measured / predicted: 1.0 is the floor, 1.5 means
the kernel runs at 2/3 of it. Also the op's wall time per call and the model's wall estimate.
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import perf_model as pm  # noqa: E402

import fastiqa.functional as F  # noqa: E402


def gpu_figures():
    name = torch.cuda.get_device_name(0)
    for key, gpu in pm.GPUS.items():
        if key.replace("RTX ", "") in name:
            return gpu, name
    return pm.GPUS["H100"], f"{name} (not in perf_model.GPUS: H100 SXM figures)"


def step_for(op, shape, dev):
    gen = torch.Generator().manual_seed(0)
    y = torch.rand(shape, generator=gen).to(dev)
    x = (y + 0.1 * torch.randn(shape, generator=gen).to(dev)).clamp(0, 1)
    if op == "charbonnier_fwdbwd":
        fn = lambda: F.charbonnier_loss(x, y, eps=1e-3, backend="cuda")  # noqa: E731
    elif op.startswith("ssim") or op == "style_fwdbwd":
        padding = "valid" if "valid" in op else "same_zero"
        if op == "style_fwdbwd":
            y = torch.randn(shape, generator=gen).to(dev)
            x = torch.randn(shape, generator=gen).to(dev)
            y.requires_grad_(True)
            fn = lambda: F.style_loss(x, y, "l1", backend="cuda")  # noqa: E731
        elif "_l1_" in op:
            fn = lambda: F.l1_ssim_loss(x, y, padding=padding, backend="cuda")  # noqa: E731
        else:
            fn = lambda: F.ssim_loss(x, y, padding=padding, backend="cuda")  # noqa: E731
    elif op == "psnr_y_crop4_quant":
        fn = lambda: F.psnr(x, y, reduction="none", y_channel=True, crop_border=4, quantize=True,  # noqa: E731
                            backend="cuda")
    else:
        raise ValueError(f"op must be one of perf_model's cases, got {op!r}")
    backward = op.endswith("fwdbwd")
    if backward:
        x.requires_grad_(True)

    def step():
        x.grad = None
        if backward:
            fn().backward()
        else:
            with torch.no_grad():
                fn()

    return step


def kernel_times(step, reps):
    """{kernel base name: median over reps of its device time per call (s)}, wall time per call."""
    from torch.profiler import ProfilerActivity, profile

    for _ in range(3):
        step()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(reps):
        step()
    torch.cuda.synchronize()
    wall = (time.perf_counter() - t0) / reps
    per_rep = []
    for _ in range(reps):
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            step()
            torch.cuda.synchronize()
        times = {}
        for ev in prof.events():
            if ev.device_type.name != "CUDA":
                continue
            name = next((k for k in KERNELS if k in ev.name), None)
            if name:
                times[name] = times.get(name, 0.0) + ev.device_time_total * 1e-6
        per_rep.append(times)
    names = {k for t in per_rep for k in t}
    return {k: statistics.median(t.get(k, 0.0) for t in per_rep) for k in names}, wall


KERNELS = ("pixel_fwd_kernel", "pixel_bwd_kernel", "pixel_finalize_kernel", "psnr_fwd_kernel",
           "psnr_finalize_kernel", "ssim_fwd_kernel", "ssim_grad_kernel", "ssim_adjoint_kernel", "tiles_wmma_kernel",
           "tiles_kernel", "apply_wmma_kernel", "apply_kernel", "finalize_kernel", "loss_kernel", "scale_kernel")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=10)
    args = ap.parse_args(argv)
    if not torch.cuda.is_available():
        print("perf_check: no CUDA device")
        return 2
    gpu, name = gpu_figures()
    dev = torch.device("cuda")
    cells = pm.audit_cells()
    print(f"perf_check on {name}; model figures: {gpu.name} ({gpu.bw / 1e12:g} TB/s, FP32 {gpu.fp32 / 1e12:g} TFLOPS)")
    print(f"{'case':<44} {'kernel':<22} {'predicted':>10} {'measured':>10} {'meas/pred':>9}  bound")
    cases = [(op, shape, what) for op, shape, what in pm.BAR_CASES] + [(p[0], p[1], p[2]) for p in pm.PUBLISHED]
    for op, shape, what in cases:
        _, wall_pred, rows = pm.predict_op(op, shape, gpu, cells=cells)
        measured, wall = kernel_times(step_for(op, shape, dev), args.reps)
        pred = {}
        for r in rows:
            pred.setdefault(r["kernel"], [0.0, r["bound"]])[0] += r["t"]
        label = f"{op} {'x'.join(map(str, shape))}"
        for k in sorted(set(pred) | set(measured)):
            p, bound = pred.get(k, [float("nan"), "-"])
            m = measured.get(k, float("nan"))
            print(f"{label:<44} {k:<22} {p * 1e3:>8.3f}ms {m * 1e3:>8.3f}ms {m / p:>9.2f}  {bound}")
            label = ""
        print(f"{'':<44} {'(op wall time per call)':<22} {wall_pred * 1e3:>8.3f}ms {wall * 1e3:>8.3f}ms "
              f"{wall / wall_pred:>9.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
