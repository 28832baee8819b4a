"""Fuzzing of the masked SSIM (issue 19 item 3): random images and volumes, windows, paddings,
dtypes, layouts, reductions and masks ((N, 1) / (N, C), bool / float, sparse or empty regions,
nan_policy); the compiled CPU kernels against the reference backend run in float64 (values, and the
gradients of both inputs through a random weighting of the output, which must be 0 where m = 0).
Derandomized (reproducible); FASTIQA_FUZZ_EXAMPLES sets a large random run as for
tests/test_fuzz_ops.py."""

import pytest
import torch
from _fuzz_cases import fuzz_settings
from hypothesis import given
from hypothesis import strategies as st

import fastiqa.functional as F
from fastiqa import _ext

pytestmark = pytest.mark.skipif(not _ext.has_kernel("ssim_masked_fwd", "CPU"), reason="no compiled masked CPU kernel")

FNS = {
    "ssim": lambda a, b, r, kw: F.ssim(a, b, reduction=r, **kw),
    "ssim_loss": lambda a, b, r, kw: F.ssim_loss(a, b, reduction="none" if r == "map" else r, **kw),
    "l1_ssim_loss": lambda a, b, r, kw: F.l1_ssim_loss(a, b, reduction="none" if r == "map" else r, alpha=0.4,
                                                       **kw),
}


@st.composite
def mask_cases(draw):
    axes = draw(st.sampled_from((2, 2, 3)))
    win = tuple(draw(st.sampled_from((3, 5, 7))) for _ in range(axes))
    sides = tuple(draw(st.integers(w, w + 8)) for w in win)
    return dict(fn=draw(st.sampled_from(sorted(FNS))), win=win,
                shape=(draw(st.integers(1, 2)), draw(st.integers(1, 3)), *sides),
                padding=draw(st.sampled_from(("valid", "same_zero", "same_reflect"))),
                dtype=draw(st.sampled_from((torch.float32, torch.float64))),
                layout=draw(st.sampled_from(("contiguous", "transposed"))),
                reduction=draw(st.sampled_from(("mean", "none", "map"))),
                mask=draw(st.sampled_from(("bool1", "boolc", "float1", "floatc"))),
                density=draw(st.sampled_from((0.0, 0.05, 0.5, 1.0))),
                nan_policy=draw(st.sampled_from(("propagate", "omit"))), seed=draw(st.integers(0, 2 ** 31 - 1)))


def _inputs(case):
    g = torch.Generator().manual_seed(case["seed"])
    shape = case["shape"]
    if case["layout"] == "transposed":  # the last two axes swapped in memory
        shape = (*shape[:-2], shape[-1], shape[-2])
    x = torch.rand(shape, generator=g, dtype=torch.float64) * 0.5 + 0.25
    y = (x + 0.1 * torch.randn(shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    mshape = (shape[0], 1 if case["mask"].endswith("1") else shape[1], *shape[2:])
    r = torch.rand(mshape, generator=g, dtype=torch.float64)
    m = r < case["density"]
    m = m if case["mask"].startswith("bool") else m * (r * 3 + 0.1)
    if case["nan_policy"] == "omit":
        x[(torch.rand(shape, generator=g) < 0.03)] = float("nan")
    x, y = x.to(case["dtype"]), y.to(case["dtype"])
    if case["layout"] == "transposed":
        x, y, m = x.transpose(-1, -2), y.transpose(-1, -2), m.transpose(-1, -2)
    return x, y, m


def check_mask_case(case):
    x0, y0, m = _inputs(case)
    fn = FNS[case["fn"]]
    kw = dict(win_size=case["win"], padding=case["padding"], mask=m, nan_policy=case["nan_policy"])
    x, y = x0.clone().requires_grad_(), y0.clone().requires_grad_()
    out = fn(x, y, case["reduction"], dict(kw, backend="cpu"))
    xr, yr = x0.detach().double().requires_grad_(), y0.detach().double().requires_grad_()
    want = fn(xr, yr, case["reduction"], dict(kw, backend="reference"))
    f32 = case["dtype"] == torch.float32
    rtol, atol = (1e-4, 1e-5) if f32 else (1e-9, 1e-11)
    torch.testing.assert_close(out.double(), want, rtol=rtol, atol=atol, equal_nan=True)
    w = torch.rand(want.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    (out.nan_to_num() * w.to(out.dtype)).sum().backward()
    (want.nan_to_num() * w).sum().backward()
    zero = (m == 0).expand(x0.shape)
    if case["nan_policy"] == "omit":
        zero = zero | torch.isnan(x0)
    for got, ref in ((x.grad, xr.grad), (y.grad, yr.grad)):
        scale = max(ref.abs().max().item(), 1e-3)
        torch.testing.assert_close(got.double(), ref, rtol=rtol * 10, atol=atol * 10 * scale)
        assert torch.all(got[zero] == 0)


@fuzz_settings(default=12)
@given(case=mask_cases())
def test_fuzz_masks_fast(case):
    check_mask_case(case)


@pytest.mark.slow
@fuzz_settings(default=150)
@given(case=mask_cases())
def test_fuzz_masks_many(case):
    check_mask_case(case)
