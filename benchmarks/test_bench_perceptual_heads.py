"""LPIPS and DISTS distance heads alone (the backbone excluded), forward and forward+backward,
at the VGG16 layer shapes of 8x3x256x256 images (relu1_2 ... relu5_3; DISTS adds the image),
float32: the packages' own head code ("eager": lpips 0.1.4's normalize_tensor, squared
difference, 1x1 lin conv, spatial average; DISTS_pytorch 0.1's per-layer loop), fastiqa's
head (fastiqa/functional/_heads.py) and torch.compile of fastiqa's head, in the same run.

    pytest benchmarks/test_bench_perceptual_heads.py
    FASTIQA_CPU_ISA=avx2 pytest benchmarks/test_bench_perceptual_heads.py   # one run per ISA variant
    FASTIQA_BENCH_SMOKE=1 pytest benchmarks/ --benchmark-disable      # small shapes, proves it runs

fastiqa's heads run the perceptual op family (fastiqa/ops/perceptual.py): on CPU tensors the
compiled kernels of csrc/cpu/perceptual_impl.h (the ISA variant of FASTIQA_CPU_ISA, recorded in
every row), on CUDA tensors the Triton kernels. The issue's target is a fused head >= 3x the
lpips head code fwd+bwd on the avx2 and avx512 variants. The backbone included:
benchmarks/test_bench_perceptual_metrics.py.

Memory floor (floor_bytes, bytes moved per call, all layers): both features read once, plus,
with the backward, both gradients written once: 2 x 4 B (fwd) or 4 x 4 B (fwd+bwd) per
feature element; at 8x3x256x256 the five layers hold 64.0M elements per input: 512 MB (LPIPS
fwd), 1.02 GB (LPIPS fwd+bwd); DISTS adds the 8x3x256x256 image (524 MB, 1.05 GB).
A fused backward that recomputes its statistics (DISTS; the LPIPS channel norms come from cache)
reads the features twice, so its floor is not reachable by design: the floor counts the
unavoidable traffic only. fmas: the kernels' arithmetic per feature element pair (LPIPS
forward ~6, forward+backward ~20; DISTS ~5 and ~14), for the roofline's FMA side.
"""
import pytest
import torch
import torch.nn.functional as TF

from fastiqa.functional import _heads

from harness import IMPLS, SMOKE, devices, run_case

N = 2 if SMOKE else 8
CHANNELS = (64, 128, 256, 512, 512)
SIDES = (8, 4, 2, 2, 1) if SMOKE else (256, 128, 64, 32, 16)
SHAPES = [(N, c, s, s) for c, s in zip(CHANNELS, SIDES)]


def lpips_package_head(f0s, f1s, lins):
    """lpips.LPIPS.forward after the backbone (version 0.1, spatial=False)."""
    val = 0
    for f0, f1, w in zip(f0s, f1s, lins):
        n0 = f0 / (torch.sqrt(torch.sum(f0 ** 2, dim=1, keepdim=True)) + 1e-10)
        n1 = f1 / (torch.sqrt(torch.sum(f1 ** 2, dim=1, keepdim=True)) + 1e-10)
        val = val + TF.conv2d((n0 - n1) ** 2, w.view(1, -1, 1, 1)).mean([2, 3], keepdim=True)
    return val.reshape(-1)


def dists_package_head(f0s, f1s, abs_):
    """DISTS_pytorch DISTS.forward after the backbone (alpha, beta already divided by their sum)."""
    dist1 = dist2 = 0
    for f0, f1, ab in zip(f0s, f1s, abs_):
        alpha, beta = ab[0].view(1, -1, 1, 1), ab[1].view(1, -1, 1, 1)
        xm, ym = f0.mean([2, 3], keepdim=True), f1.mean([2, 3], keepdim=True)
        s1 = (2 * xm * ym + 1e-6) / (xm ** 2 + ym ** 2 + 1e-6)
        dist1 = dist1 + (alpha * s1).sum(1, keepdim=True)
        xv, yv = ((f0 - xm) ** 2).mean([2, 3], keepdim=True), ((f1 - ym) ** 2).mean([2, 3], keepdim=True)
        cov = (f0 * f1).mean([2, 3], keepdim=True) - xm * ym
        s2 = (2 * cov + 1e-6) / (xv + yv + 1e-6)
        dist2 = dist2 + (beta * s2).sum(1, keepdim=True)
    return (1 - (dist1 + dist2)).reshape(-1)


_COMPILED = {}


def impl_fn(metric, impl):
    ours = _heads.lpips_head if metric == "lpips" else _heads.dists_head
    if impl == "eager":
        return lpips_package_head if metric == "lpips" else dists_package_head
    if impl == "compiled":
        if metric not in _COMPILED:
            _COMPILED[metric] = torch.compile(ours, backend="eager" if SMOKE else "inductor")
        return _COMPILED[metric]
    return ours


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("metric", ["lpips", "dists"])
@pytest.mark.parametrize("mode", ["fwd", "fwdbwd"])
@pytest.mark.parametrize("device", devices())
def test_bench_head(benchmark, impl, metric, mode, device):
    shapes = SHAPES if metric == "lpips" else [(N, 3, SIDES[0], SIDES[0])] + SHAPES
    g = torch.Generator().manual_seed(0)
    f0s = [torch.rand(s, generator=g).to(device).requires_grad_(mode == "fwdbwd") for s in shapes]
    f1s = [torch.rand(s, generator=g).to(device).requires_grad_(mode == "fwdbwd") for s in shapes]
    if metric == "lpips":
        weights = [torch.rand(s[1], generator=g).to(device) for s in shapes]
    else:
        ab = [torch.rand(2, s[1], generator=g) for s in shapes]
        total = sum(float(w.sum()) for w in ab)
        weights = [(w / total).to(device) for w in ab]
    fn = impl_fn(metric, impl)

    def step():
        v = fn(f0s, f1s, weights)
        if mode == "fwdbwd":
            torch.autograd.grad(v.sum(), f0s + f1s)
        return v

    step()  # compile / first-touch outside the timing
    elems = sum(torch.Size(s).numel() for s in shapes)
    floor = 4 * elems * (4 if mode == "fwdbwd" else 2)
    fmas = elems * {("lpips", "fwd"): 6, ("lpips", "fwdbwd"): 20, ("dists", "fwd"): 5,
                    ("dists", "fwdbwd"): 14}[(metric, mode)]
    benchmark.group = f"{metric}-head-{mode} vgg16-8x3x256x256 float32 {device}"
    run_case(benchmark, benchmark.group, impl, step, floor, device, rounds=1 if SMOKE else 5, fmas=fmas)
