"""Fuzzing of the SSIM family on volumes (N, C, D, H, W), the components too: random shapes, per-axis windows,
sigmas, paddings, dtypes, layouts and reductions; the compiled CPU kernels against the
float64 reference (values, and the gradients of both inputs through a random weighting of
the output). Derandomized (reproducible); FASTIQA_FUZZ_EXAMPLES sets a large random run as
for tests/test_fuzz_ops.py."""

import pytest
import torch
from _fuzz_cases import fuzz_settings
from hypothesis import given
from hypothesis import strategies as st

import fastiqa.functional as F

from support import cpu_backends

pytestmark = pytest.mark.skipif("cpu" not in cpu_backends("ssim"), reason="no compiled CPU kernels here")

FNS = {
    "ssim": lambda a, b, r, kw: F.ssim(a, b, reduction=r, **kw),
    "ssim_components": lambda a, b, r, kw: torch.stack(F.ssim(a, b, reduction=r, return_components=True, **kw)),
    "ssim_loss": lambda a, b, r, kw: F.ssim_loss(a, b, reduction="none" if r == "map" else r, **kw),
    "l1_ssim_loss": lambda a, b, r, kw: F.l1_ssim_loss(a, b, reduction="none" if r == "map" else r, alpha=0.4,
                                                       **kw),
}


@st.composite
def volume_cases(draw):
    win = tuple(draw(st.sampled_from((3, 5, 7))) for _ in range(3))
    sigma = tuple(draw(st.sampled_from((0.6, 1.0, 1.5))) for _ in range(3))
    sides = tuple(draw(st.integers(w, w + 6)) for w in win)
    return dict(fn=draw(st.sampled_from(sorted(FNS))), win=win, sigma=sigma,
                shape=(draw(st.integers(1, 2)), draw(st.integers(1, 3)), *sides),
                padding=draw(st.sampled_from(("valid", "same_zero", "same_reflect"))),
                dtype=draw(st.sampled_from((torch.float32, torch.float64))),
                layout=draw(st.sampled_from(("contiguous", "channels_last_3d", "transposed"))),
                reduction=draw(st.sampled_from(("mean", "none", "map"))), seed=draw(st.integers(0, 2 ** 31 - 1)))


def _inputs(case):
    g = torch.Generator().manual_seed(case["seed"])
    shape = case["shape"]
    if case["layout"] == "transposed":  # H and W swapped in memory
        shape = (*shape[:3], shape[4], shape[3])
    x = torch.rand(shape, generator=g, dtype=torch.float64) * 0.5 + 0.25
    y = (x + 0.1 * torch.randn(shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    x, y = x.to(case["dtype"]), y.to(case["dtype"])
    if case["layout"] == "transposed":
        x, y = x.transpose(3, 4), y.transpose(3, 4)
    elif case["layout"] == "channels_last_3d":
        x, y = x.to(memory_format=torch.channels_last_3d), y.to(memory_format=torch.channels_last_3d)
    return x, y


def check_volume_case(case):
    x0, y0 = _inputs(case)
    fn = FNS[case["fn"]]
    kw = dict(win_size=case["win"], win_sigma=case["sigma"], padding=case["padding"])
    x, y = x0.clone().requires_grad_(), y0.clone().requires_grad_()
    out = fn(x, y, case["reduction"], dict(kw, backend="cpu"))
    xr, yr = x0.detach().double().requires_grad_(), y0.detach().double().requires_grad_()
    want = fn(xr, yr, case["reduction"], dict(kw, backend="reference"))
    f32 = case["dtype"] == torch.float32
    rtol, atol = (1e-4, 1e-5) if f32 else (1e-9, 1e-11)
    torch.testing.assert_close(out.double(), want, rtol=rtol, atol=atol)
    w = torch.rand(want.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    (out * w.to(out.dtype)).sum().backward()
    (want * w).sum().backward()
    for got, ref in ((x.grad, xr.grad), (y.grad, yr.grad)):
        scale = max(ref.abs().max().item(), 1e-3)
        torch.testing.assert_close(got.double(), ref, rtol=rtol * 10, atol=atol * 10 * scale)


@fuzz_settings(default=12)
@given(case=volume_cases())
def test_fuzz_volumes_fast(case):
    check_volume_case(case)


@pytest.mark.slow
@fuzz_settings(default=150)
@given(case=volume_cases())
def test_fuzz_volumes(case):
    check_volume_case(case)
