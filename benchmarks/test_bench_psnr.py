"""Per-image PSNR (fastiqa.functional.psnr) vs the eager reference written the
published way (convert to Y, crop, round, MSE, per image), torch.compile of it,
and torchmetrics / piq when installed. (`fastiqa eval` throughput: test_bench_eval.py.)

Floor: forward reads x and y once (2 tensors); the output is N numbers. "kernel":
fastiqa_C::psnr_fwd (the per-image MSE) called directly, without the Python layer. FMAs (vector FP
operations, an FMA counting one): fmas() below.
The bar on a 2-thread CPU: 8x3x256x256 float32, Y channel + crop 4 + quantise,
fastiqa at least 4x faster than "eager" in the same run.

    pytest benchmarks/test_bench_psnr.py                      # full
    FASTIQA_BENCH_SMOKE=1 pytest benchmarks/ --benchmark-disable   # proves it runs
Uses the shared machinery of benchmarks/harness.py (ratio to eager, fraction of
the memory floor, summary table) when present, a minimal stand-in otherwise.
"""
import importlib.util
import os

import pytest
import torch

import fastiqa.functional as F
from fastiqa._codes import LossKind
from fastiqa.backends import reference as R

try:
    from harness import KERNEL, SMOKE, devices, kernel_step, run_case
except ImportError:  # running without the shared benchmarks/harness.py
    SMOKE = os.environ.get("FASTIQA_BENCH_SMOKE", "0") == "1"
    KERNEL = "kernel"

    def kernel_step(op, *args):
        def step():
            with torch._C._AutoDispatchBelowAutograd():
                op(*args)
        return step

    def devices():
        return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])

    def run_case(benchmark, case_key, impl, fn, floor_bytes, device, rounds=None, fmas=0):
        def timed():
            out = fn()
            if torch.device(device).type == "cuda":
                torch.cuda.synchronize()
            return out

        rounds = rounds or (1 if SMOKE else 20)
        benchmark.pedantic(timed, rounds=rounds, iterations=1, warmup_rounds=0 if SMOKE else 3)
        benchmark.extra_info.update(floor_bytes=floor_bytes)


SHAPES = [(2, 3, 32, 32)] if SMOKE else [(8, 3, 256, 256), (4, 3, 512, 512)]


def fmas(opts, shape, grad=False):
    """Per sample of the cropped region: the difference and its square summed (2); the Y
    channel per pixel: 3 FMAs per image and the difference (7) + the square summed (1) = 8;
    quantisation: scale and round both images (4); the gradient: 3 (Y) or 1 per sample."""
    n, c, h, w = shape
    crop = opts.get("crop_border", 0)
    px = n * (h - 2 * crop) * (w - 2 * crop)
    per = (8 if opts["y_channel"] else 2) + (4 if opts.get("quantize") else 0) + (
        (3 if opts["y_channel"] else 1) if grad else 0)
    return per * px * (1 if opts["y_channel"] else c)
OPTIONS = {
    "plain": dict(y_channel=False, crop_border=0, quantize=False),
    "y-crop4": dict(y_channel=True, crop_border=4, quantize=False),  # the quantised case's yardstick (1.3x bar)
    "y-crop4-quant": dict(y_channel=True, crop_border=4, quantize=True),
}


def eager_published(opts):
    """The published way, one step after the other: round, convert to Y, crop, MSE per image, PSNR."""
    def fn(x, y):
        return R.psnr(x, y, 1.0, "none", None, opts["y_channel"], opts["crop_border"], opts["quantize"])
    return fn


def _peer(name, opts):
    """The peer's per-image PSNR, or None when it is absent, broken, or has no such convention."""
    if opts["y_channel"] or opts["crop_border"] or opts["quantize"]:
        return None  # the peers have no BT.601-Y / crop / quantise convention of this kind
    try:
        if name == "torchmetrics" and importlib.util.find_spec("torchmetrics"):
            from torchmetrics.functional.image import peak_signal_noise_ratio

            return lambda x, y: peak_signal_noise_ratio(x, y, data_range=1.0, reduction="none", dim=(1, 2, 3))
        if name == "piq" and importlib.util.find_spec("piq"):
            import piq

            return lambda x, y: piq.psnr(x, y, data_range=1.0, reduction="none")
    except ImportError:  # e.g. piq without torchvision
        return None
    return None


IMPLS = ("eager", "fastiqa", "compiled", "torchmetrics", "piq", KERNEL)  # eager first: ratios need it


@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("shape", SHAPES, ids=["x".join(map(str, s)) for s in SHAPES])
@pytest.mark.parametrize("opt", list(OPTIONS))
@pytest.mark.parametrize("impl", IMPLS)
def test_psnr_per_image(benchmark, impl, opt, shape, device):
    opts = OPTIONS[opt]
    if SMOKE and impl == "compiled" and opt != "y-crop4-quant":
        pytest.skip("smoke mode compiles one case only")
    if impl == KERNEL:
        fn = None
    elif impl == "fastiqa":
        fn = lambda x, y: F.psnr(x, y, reduction="none", **opts)
    elif impl == "eager":
        fn = eager_published(opts)
    elif impl == "compiled":
        fn = torch.compile(eager_published(opts))
    else:
        fn = _peer(impl, opts)
        if fn is None:
            pytest.skip(f"{impl} not installed (or not importable), or without this convention")
    benchmark.group = f"psnr-{opt}-{'x'.join(map(str, shape))}-{device}"
    gen = torch.Generator().manual_seed(0)
    y = torch.rand(shape, generator=gen).to(device)
    x = (y + 0.05 * torch.randn(shape, generator=gen).to(device)).clamp(0, 1)

    def step():
        with torch.no_grad():
            return fn(x, y)

    if impl == KERNEL:
        step = kernel_step(torch.ops.fastiqa_C.psnr_fwd.default, x, y, int(LossKind.MSE), opts["crop_border"],
                           opts["y_channel"], opts["quantize"], 1.0, False)
    run_case(benchmark, benchmark.group, impl, step, 2 * x.numel() * x.element_size(), device,
             fmas=fmas(opts, shape))


@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("impl", ["eager", "fastiqa", "compiled"])
def test_psnr_loss_fwd_bwd(benchmark, impl, device):
    """PSNR as a loss (Y channel), forward + backward."""
    if SMOKE and impl == "compiled":
        pytest.skip("smoke mode compiles one case only")
    shape = SHAPES[0]
    benchmark.group = f"psnr-loss-y-fwdbwd-{'x'.join(map(str, shape))}-{device}"
    ref = lambda a, b: -R.psnr(a, b, 1.0, "mean", 1e-8, True, 0, False)
    fn = {"fastiqa": lambda a, b: -F.psnr(a, b, reduction="mean", eps=1e-8, y_channel=True),
          "eager": ref, "compiled": torch.compile(ref)}[impl]
    gen = torch.Generator().manual_seed(0)
    y = torch.rand(shape, generator=gen).to(device)
    x = (y + 0.05 * torch.randn(shape, generator=gen).to(device)).clamp(0, 1).requires_grad_(True)

    def step():
        x.grad = None
        loss = fn(x, y)
        loss.backward()
        return loss

    run_case(benchmark, benchmark.group, impl, step, 3 * x.numel() * x.element_size(), device,
             fmas=fmas(dict(y_channel=True), shape, grad=True))

