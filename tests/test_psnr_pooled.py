"""PSNR over a set (issue 19 item 6): fastiqa.functional.psnr(reduction="pooled"), PSNRMeter's
pooled PSNR and `fastiqa eval`'s psnr_pooled, against a float64 oracle written here:
10 log10(R^2 / (total squared error / total element count)), images of different sizes
weighed by their element counts. The two-rank versions: tests/test_meters_distributed.py
and tests/test_eval_distributed.py."""

import math

import numpy as np
import pytest
import torch
from PIL import Image

import fastiqa
import fastiqa.functional as F
from fastiqa import metrics as M
from fastiqa.meters import MeterCollection, PSNRMeter, SSIMMeter

from support import cpu_backends, read_csv, run_eval_cli, tol

BACKENDS = cpu_backends("psnr")
DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]

# BT.601 luma of [0, 1] RGB in the images' units (the published SR convention), written out
Y_W = (65.481, 128.553, 24.966)


def _y(rgb, r):
    """(N, 3, H, W) RGB in [0, r] -> (N, 1, H, W) Y in the same units, float64."""
    rgb = rgb.double()
    return (16.0 * r / 255.0 + sum(w * rgb[:, c] for c, w in enumerate(Y_W)) / 255.0)[:, None]


def _crop(t, k):
    return t[..., k:t.shape[-2] - k, k:t.shape[-1] - k]


def oracle_pooled(pairs, r=1.0, y_channel=False, crop=0, eps=0.0):
    """10 log10(r^2 / (sum of squared errors / number of elements)) over every pair, float64.
    pairs: [(x, y)] of (N, C, H, W) tensors, sizes may differ between pairs."""
    sse, n = 0.0, 0
    for x, y in pairs:
        x, y = x.double(), y.double()
        if y_channel:
            x, y = _y(x, r), _y(y, r)
        d = _crop(x, crop) - _crop(y, crop)
        sse += float((d * d).sum())
        n += d.numel()
    return 10.0 * math.log10(r * r / (sse / n + eps))


def _pair(shape, dtype=torch.float64, noise=0.1, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g, dtype=torch.float64)
    y = (x + noise * torch.randn(shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    return x.to(dtype), y.to(dtype)


# --- fastiqa.functional.psnr(reduction="pooled") ------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: str(d).replace("torch.", ""))
@pytest.mark.parametrize("shape", [(1, 1, 11, 11), (3, 3, 37, 53), (2, 5, 16, 29)], ids=lambda s: "x".join(map(str, s)))
def test_pooled_matches_float64_oracle(backend, dtype, shape):
    x, y = _pair(shape, dtype)
    got = F.psnr(x, y, reduction="pooled", backend=backend)
    assert got.dim() == 0 and got.dtype == (torch.float64 if dtype == torch.float64 else torch.float32)
    want = oracle_pooled([(x, y)])
    rtol, atol = tol(dtype)
    assert got.item() == pytest.approx(want, rel=rtol, abs=atol * 10)


@pytest.mark.parametrize("backend", BACKENDS)
def test_pooled_options_data_range_and_eps(backend):
    x, y = _pair((3, 3, 21, 26), noise=0.05, seed=1)
    for r in (1.0, 255.0):
        xs, ys = x * r, y * r
        for opts, kw in (({}, {}), ({"y_channel": True}, {"y_channel": True}), ({"crop_border": 3}, {"crop": 3}),
                         ({"y_channel": True, "crop_border": 2}, {"y_channel": True, "crop": 2})):
            got = F.psnr(xs, ys, r, "pooled", backend=backend, **opts).item()
            assert got == pytest.approx(oracle_pooled([(xs, ys)], r, **kw), abs=1e-9)
    got = F.psnr(x, y, reduction="pooled", eps=1e-3, backend=backend).item()
    assert got == pytest.approx(oracle_pooled([(x, y)], eps=1e-3), abs=1e-9)  # eps on the pooled MSE


@pytest.mark.parametrize("backend", BACKENDS)
def test_pooled_is_not_the_mean_and_equals_the_mean_mse(backend):
    # images of very different quality: the pooled value is led by the worst image
    x = torch.rand(2, 3, 15, 17, dtype=torch.float64)
    y = x.clone()
    y[0] += 0.2 * torch.randn_like(y[0])
    y[1] += 0.002 * torch.randn_like(y[1])
    pooled = F.psnr(x, y, reduction="pooled", backend=backend).item()
    mean = F.psnr(x, y, reduction="mean", backend=backend).item()
    assert mean - pooled > 10  # dB: the two conventions differ a lot here
    mse = F.mse(x, y, reduction="none", backend=backend)
    assert pooled == pytest.approx(10 * math.log10(1 / mse.mean().item()), abs=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_pooled_special_values(backend):
    x = torch.rand(2, 3, 9, 10)
    assert math.isinf(F.psnr(x, x.clone(), reduction="pooled", backend=backend).item())
    assert math.isnan(F.psnr(torch.rand(0, 3, 9, 10), torch.rand(0, 3, 9, 10), reduction="pooled").item())
    y = x.clone()
    y[1, 0, 2, 3] = float("nan")
    assert math.isnan(F.psnr(x, y, reduction="pooled", backend=backend).item())


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != "triton"])
@pytest.mark.parametrize("opts", [{}, {"y_channel": True, "crop_border": 2}], ids=["plain", "y-crop2"])
def test_pooled_gradcheck_float64(backend, opts):
    x = torch.rand(3, 3, 9, 11, dtype=torch.float64, requires_grad=True)
    y = torch.rand(3, 3, 9, 11, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: F.psnr(a, b, reduction="pooled", backend=backend, **opts), (x, y))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_pooled_gradients_match_the_oracle(backend, dtype):
    x0, y0 = _pair((2, 3, 13, 17), dtype, seed=2)
    x, y = x0.clone().requires_grad_(), y0.clone().requires_grad_()
    F.psnr(x, y, reduction="pooled", y_channel=True, crop_border=1, backend=backend).backward()
    xr, yr = x0.double().requires_grad_(), y0.double().requires_grad_()
    d = _crop(_y(xr, 1.0), 1) - _crop(_y(yr, 1.0), 1)
    (10 * torch.log10(1.0 / (d * d).mean())).backward()
    rtol, atol = tol(dtype)
    scale = max(xr.grad.abs().max().item(), 1.0)
    assert x.grad.dtype == dtype
    torch.testing.assert_close(x.grad.double(), xr.grad, rtol=rtol, atol=atol * scale)
    torch.testing.assert_close(y.grad.double(), yr.grad, rtol=rtol, atol=atol * scale)


def test_pooled_reduction_is_psnr_only():
    x, y = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    for fn in (F.mse, F.mae):
        with pytest.raises(ValueError, match="reduction"):
            fn(x, y, reduction="pooled")
    with pytest.raises(ValueError, match="reduction"):
        F.psnr(x, y, reduction="sum")
    assert "pooled" in F.PSNR_REDUCTIONS


# --- PSNRMeter / MeterCollection ----------------------------------------------------------


def _uint8_batch(n, h, w, seed, sigma=8.0):
    rng = np.random.default_rng(seed)
    hr = rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8)
    sr = np.clip(hr + rng.normal(0, sigma, hr.shape), 0, 255).round().astype(np.uint8)
    return sr, hr


def _nchw_rgb(a):
    """numpy HWC BGR batch (what fastiqa.metrics reads from numpy) -> (N, 3, H, W) RGB float64."""
    return torch.from_numpy(a[..., ::-1].copy()).permute(0, 3, 1, 2).double()


@pytest.mark.parametrize("y_channel", [False, True], ids=["rgb", "y"])
def test_meter_pools_batches_of_different_sizes(y_channel):
    batches = [_uint8_batch(2, 21, 30, 0, 4.0), _uint8_batch(1, 40, 17, 1, 20.0), _uint8_batch(3, 25, 25, 2, 9.0)]
    meters = MeterCollection(psnr=PSNRMeter(3, y_channel), ssim=SSIMMeter(3, y_channel))
    lone = PSNRMeter(3, y_channel)
    per_image = []
    for sr, hr in batches:
        meters.update(sr, hr)
        per_image += list(lone.update(sr, hr))
    want = oracle_pooled([(_nchw_rgb(sr), _nchw_rgb(hr)) for sr, hr in batches], 255.0, y_channel, 3)
    out = meters.compute()
    assert list(out) == ["psnr", "psnr_pooled", "ssim"]
    assert out["psnr_pooled"] == pytest.approx(want, abs=1e-9)
    assert lone.compute_pooled() == pytest.approx(want, abs=1e-9)
    assert out["psnr"] == pytest.approx(np.mean(per_image), abs=1e-12) and lone.compute() == out["psnr"]
    assert abs(out["psnr"] - out["psnr_pooled"]) > 0.1  # a different number, not the mean again
    # sample counts: 3 channels (1 on Y) of the cropped pixels
    c = 1 if y_channel else 3
    assert lone.samples == c * (2 * 15 * 24 + 34 * 11 + 3 * 19 * 19)


def test_meter_pools_bit_depths_on_the_unit_scale():
    # an 8-bit batch (data_range 255) and a float batch in [0, 1]: errors pooled on [0, 1]
    sr8, hr8 = _uint8_batch(2, 19, 23, 4)
    xf, yf = _pair((1, 3, 31, 13), torch.float32, noise=0.03, seed=5)
    meter = PSNRMeter(0)
    meter.update(sr8, hr8)
    meter.update(xf, yf)
    want = oracle_pooled([(_nchw_rgb(sr8) / 255, _nchw_rgb(hr8) / 255), (xf, yf)])
    assert meter.compute_pooled() == pytest.approx(want, abs=1e-9)
    single = PSNRMeter(0)
    v = single.update(sr8[0], hr8[0])  # one unbatched image: a float, as sr_psnr gives
    assert isinstance(v, float) and single.compute_pooled() == pytest.approx(single.compute(), abs=1e-9)


def test_meter_pooled_special_values():
    sr, hr = _uint8_batch(2, 12, 12, 6)
    meter = PSNRMeter(0)
    assert math.isnan(meter.compute_pooled())
    meter.update(hr, hr.copy())
    assert meter.compute_pooled() == float("inf") and meter.compute() == float("inf")
    meter.update(sr, hr)  # one noisy batch makes the pool finite, the mean stays inf
    assert math.isfinite(meter.compute_pooled()) and meter.compute() == float("inf")
    meter.reset()
    assert math.isnan(meter.compute_pooled()) and meter.samples == 0 and meter.sq_err == 0.0


def test_pooled_psnr_helper():
    assert M.pooled_psnr(0.0, 10) == float("inf")
    assert math.isnan(M.pooled_psnr(1.0, 0))
    assert math.isnan(M.pooled_psnr(float("nan"), 10))
    assert M.pooled_psnr(float("inf"), 10) == float("-inf")
    assert M.pooled_psnr(0.5, 50) == pytest.approx(20.0)


# --- fastiqa eval / fastiqa.evaluate --------------------------------------------------------


def _save(path, arr):
    Image.fromarray(arr).save(path)
    return str(path)


@pytest.fixture
def mixed_sizes(tmp_path):
    """Four pairs of different sizes (odd ones), one 16-bit, and one pair that fails."""
    ref, pred = tmp_path / "hr", tmp_path / "sr"
    ref.mkdir()
    pred.mkdir()
    rng = np.random.default_rng(7)
    pairs = []
    for i, (h, w, sigma) in enumerate([(17, 23, 3.0), (40, 31, 25.0), (29, 29, 8.0)]):
        a = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        b = np.clip(a + rng.normal(0, sigma, a.shape), 0, 255).round().astype(np.uint8)
        _save(ref / f"im{i}.png", a)
        _save(pred / f"im{i}.png", b)
        pairs.append((b.astype(np.float64) / 255, a.astype(np.float64) / 255))
    a16 = rng.integers(0, 65536, (19, 26, 3)).astype(np.uint16)  # 16-bit RGB: its own scale
    b16 = np.clip(a16 + rng.normal(0, 900, a16.shape), 0, 65535).round().astype(np.uint16)
    cv2 = pytest.importorskip("cv2", reason="writing a 16-bit colour PNG needs OpenCV (fastiqa[eval])")
    cv2.imwrite(str(ref / "im3.png"), a16[..., ::-1])
    cv2.imwrite(str(pred / "im3.png"), b16[..., ::-1])
    pairs.append((b16.astype(np.float64) / 65535, a16.astype(np.float64) / 65535))
    _save(ref / "im4.png", rng.integers(0, 256, (12, 12, 3), dtype=np.uint8))
    (pred / "im4.png").write_bytes(b"not a png")  # a failed row: left out of both means
    return ref, pred, pairs


def _chw(a):
    return torch.from_numpy(a).permute(2, 0, 1)[None]


@pytest.mark.parametrize("y_channel", [False, True], ids=["rgb", "y"])
def test_eval_pools_pairs_of_different_sizes_by_element_count(mixed_sizes, tmp_path, capsys, y_channel):
    ref, pred, pairs = mixed_sizes
    want = oracle_pooled([(_chw(p), _chw(t)) for p, t in pairs], 1.0, y_channel, 2)
    res = fastiqa.evaluate(str(ref), str(pred), "psnr,ssim", crop_border=2, y_channel=y_channel)
    assert len(res.images) == 4 and len(res.errors) == 1
    assert res.means["psnr_pooled"] == pytest.approx(want, abs=1e-9)
    assert res.means["psnr"] == pytest.approx(np.mean([r["psnr"] for r in res.images]), abs=1e-12)
    c = 1 if y_channel else 3
    assert [r["samples"] for r in res.images] == [c * (h - 4) * (w - 4) for h, w in [(17, 23), (40, 31), (29, 29),
                                                                                    (19, 26)]]
    base = ["--ref", ref, "--pred", pred, "--scale", "2", "--metrics", "psnr,ssim"] + (["--y-channel"] * y_channel)
    rc, out, _ = run_eval_cli(capsys, *base, "--csv", tmp_path / "r.csv", "--json", tmp_path / "r.json")
    assert rc == 1  # the broken pair
    rows = read_csv(tmp_path / "r.csv")
    assert rows[-1]["name"] == "mean" and float(rows[-1]["psnr_pooled"]) == pytest.approx(want, abs=1e-9)
    assert all(r["psnr_pooled"] == "" for r in rows[:-1])
    import json

    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["mean"]["psnr_pooled"] == pytest.approx(want, abs=1e-9) and doc["metrics"] == ["psnr", "ssim"]
    pooled_line = next(line for line in out.splitlines() if line.startswith("pooled"))
    assert f"{want:.4f}" in pooled_line and out.count("mean") == 1
    rc, out, _ = run_eval_cli(capsys, *base, "--quiet")
    assert f"psnr_pooled={want:.4f}" in out


def test_eval_without_psnr_has_no_pooled_column(mixed_sizes, tmp_path, capsys):
    ref, pred, _ = mixed_sizes
    rc, out, _ = run_eval_cli(capsys, "--ref", ref, "--pred", pred, "--metrics", "ssim,mse",
                              "--csv", tmp_path / "r.csv")
    assert "psnr_pooled" not in read_csv(tmp_path / "r.csv")[0] and "pooled" not in out
    res = fastiqa.evaluate(str(ref), str(pred), "mse")
    assert set(res.means) == {"mse"} and all("samples" not in r for r in res.images)


def test_eval_routes_pool_alike_and_identical_pairs_count(tmp_path):
    """The Y-channel CPU route (statistics straight from the decoded samples) and the planes
    route (forced by backend="reference") give the same psnr_pooled; an identical pair (inf
    PSNR) adds its samples and no error; a grey reference with a colour prediction counts
    3 channels (compared as R = G = B)."""
    rng = np.random.default_rng(9)
    pairs, want_pairs = [], []
    for i, (h, w) in enumerate([(21, 30), (33, 19), (26, 26)]):
        a = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        b = a.copy() if i == 1 else np.clip(a + rng.normal(0, 6 + 6 * i, a.shape), 0, 255).round().astype(np.uint8)
        pairs.append((_save(tmp_path / f"r{i}.png", a), _save(tmp_path / f"p{i}.png", b)))
        want_pairs.append((_chw(b.astype(np.float64) / 255), _chw(a.astype(np.float64) / 255)))
    fused = fastiqa.evaluate(pairs, metrics="psnr,ssim", crop_border=1, y_channel=True)
    planes = fastiqa.evaluate(pairs, metrics="psnr,ssim", crop_border=1, y_channel=True, backend="reference")
    want = oracle_pooled(want_pairs, 1.0, True, 1)
    assert fused.means["psnr_pooled"] == pytest.approx(want, abs=1e-9)
    assert planes.means["psnr_pooled"] == pytest.approx(fused.means["psnr_pooled"], abs=1e-12)
    assert fused.rows[1]["psnr"] == float("inf") and fused.rows[1]["sq_err"] == 0.0
    assert [r["samples"] for r in fused.rows] == [r["samples"] for r in planes.rows] == [19 * 28, 31 * 17, 24 * 24]
    # grey reference, colour prediction, RGB: three channels of the grey
    g = rng.integers(0, 256, (18, 22), dtype=np.uint8)
    c = np.clip(g[..., None] + rng.normal(0, 10, (18, 22, 3)), 0, 255).round().astype(np.uint8)
    grey = [(_save(tmp_path / "g.png", g), _save(tmp_path / "c.png", c))]
    res = fastiqa.evaluate(grey, metrics="psnr")
    assert res.rows[0]["samples"] == 3 * 18 * 22
    want = oracle_pooled([(_chw(c.astype(np.float64) / 255), _chw(np.repeat(g[..., None], 3, 2) / 255.0))])
    assert res.means["psnr_pooled"] == pytest.approx(want, abs=1e-9)
