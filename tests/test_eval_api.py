"""fastiqa.evaluate and the reading rules of a pair (grey vs colour, 8 vs 16 bits),
the metrics it offers (fastiqa.metrics.SR_METRICS) and their conventions."""

import importlib.util

import numpy as np
import pytest
import torch
import torch.distributed as dist
from PIL import Image

import fastiqa
import fastiqa.functional as F
from fastiqa import metrics as M
from fastiqa.evaluation import UsageError

needs_cv2 = pytest.mark.skipif(
    importlib.util.find_spec("cv2") is None, reason="16-bit colour files need opencv-python-headless (fastiqa[eval])"
)


def _rgb(seed=0, h=30, w=34):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _noisy(a, seed=1):
    return np.clip(a + np.random.default_rng(seed).normal(0, 8, a.shape), 0, 255).round().astype(np.uint8)


def _save(path, a):
    if a.dtype == np.uint16 and a.ndim == 3:
        import cv2

        assert cv2.imwrite(str(path), np.ascontiguousarray(a[..., ::-1]))
    else:
        Image.fromarray(a).save(path)
    return str(path)


def test_evaluate_folders_and_pair_lists_agree(tmp_path):
    (tmp_path / "hr").mkdir()
    (tmp_path / "sr").mkdir()
    pairs = []
    for i in range(3):
        a = _rgb(i)
        pairs.append((_save(tmp_path / "hr" / f"{i}.png", a), _save(tmp_path / "sr" / f"{i}.png", _noisy(a, i))))
    by_folder = fastiqa.evaluate(str(tmp_path / "hr"), tmp_path / "sr", "psnr,ssim", crop_border=2, y_channel=True)
    by_list = fastiqa.evaluate(pairs, metrics=["psnr", "ssim"], crop_border=2, y_channel=True)
    named = fastiqa.evaluate([("x", *p) for p in pairs], metrics=["psnr"])
    assert by_folder.rows == by_list.rows and by_folder.means == by_list.means
    assert [r["name"] for r in by_list.rows] == ["0", "1", "2"] and [r["name"] for r in named.rows] == ["x"] * 3
    want = [M.sr_psnr(_noisy(_rgb(i), i), _rgb(i), 2, test_y_channel=True, channel_order="rgb") for i in range(3)]
    assert [r["psnr"] for r in by_list.images] == pytest.approx(want, abs=1e-9)
    assert by_list.means["psnr"] == pytest.approx(np.mean(want), abs=1e-9) and by_list.errors == []


def test_evaluate_failures_are_rows(tmp_path):
    a = _rgb()
    good = (_save(tmp_path / "a.png", a), _save(tmp_path / "b.png", _noisy(a)))
    res = fastiqa.evaluate([good, (good[0], str(tmp_path / "missing.png"))], metrics="psnr")
    assert len(res.rows) == 2 and len(res.images) == 1
    assert res.rows[1]["error"] == "missing.png: file not found" and res.errors == [res.rows[1]["error"]]
    assert res.means["psnr"] == res.rows[0]["psnr"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"metrics": "psnr,vif"}, "unknown metric 'vif'"),
        ({"metrics": ""}, "metrics is empty"),
        ({"crop_border": -1}, "crop_border"),
        ({"workers": 0}, "workers must be an integer >= 1"),
        ({"prefetch": 0}, "prefetch must be an integer >= 1"),
        ({"device": "cuda:0"}, "no CUDA device"),
        ({"backend": "nope"}, "backend must be one of"),
    ],
)
def test_evaluate_bad_arguments_raise_value_errors(tmp_path, kwargs, message):
    if torch.cuda.is_available() and kwargs.get("device", "").startswith("cuda"):
        pytest.skip("a CUDA device is present: the device is valid here")
    with pytest.raises(ValueError, match=message):
        fastiqa.evaluate([("a.png", "b.png")], **kwargs)


@pytest.mark.parametrize("pairs, message", [([], "pairs is empty"), ([("only-one",)], r"pairs\[0\] must be")])
def test_evaluate_bad_pairs(pairs, message):
    with pytest.raises(UsageError, match=message):
        fastiqa.evaluate(pairs)


@pytest.mark.parametrize("y_channel", [False, True])
def test_grey_file_and_its_rgb_copy_score_equal(tmp_path, y_channel):
    g = _rgb()[..., 1]
    grey = _save(tmp_path / "g.png", g)
    rgb = _save(tmp_path / "c.png", np.dstack([g, g, g]))
    res = fastiqa.evaluate([(grey, rgb), (rgb, grey)], metrics="psnr,ssim,mse", y_channel=y_channel)
    for r in res.rows:
        assert r["psnr"] == float("inf") and r["ssim"] == pytest.approx(1.0, abs=1e-12) and r["mse"] == 0.0


@needs_cv2
@pytest.mark.parametrize("channels", [1, 3])
def test_8bit_file_and_its_16bit_copy_score_equal(tmp_path, channels):
    a = _rgb()[..., :channels] if channels == 3 else _rgb()[..., 0]
    b = _noisy(a)
    f8 = [_save(tmp_path / "a8.png", a), _save(tmp_path / "b8.png", b)]
    f16 = [
        _save(tmp_path / "a16.png", a.astype(np.uint16) * 257),
        _save(tmp_path / "b16.png", b.astype(np.uint16) * 257),
    ]
    res = fastiqa.evaluate(
        [(f8[0], f16[0]), (f8[0], f8[1]), (f16[0], f16[1]), (f8[0], f16[1])],
        metrics="psnr,ssim,mse,mae",
        y_channel=True,
    )
    same, p8, p16, mixed = res.rows
    assert same["psnr"] == float("inf") and same["mse"] == 0.0
    for m in ("psnr", "ssim", "mse", "mae"):
        assert p16[m] == pytest.approx(p8[m], rel=1e-9, abs=1e-12), m
        assert mixed[m] == pytest.approx(p8[m], rel=1e-9, abs=1e-12), m


@pytest.mark.parametrize("bits", [8, pytest.param(16, marks=needs_cv2)])
def test_metrics_from_samples_agree_with_metrics_on_y_planes(tmp_path, monkeypatch, bits):
    """On the CPU, PSNR / SSIM / MSE of the Y channel come from the decoded samples
    (fastiqa.ops.y_channel, one kernel call per pair); backend='reference' takes the Y
    planes and fastiqa.metrics: the same numbers."""
    from fastiqa.evaluation import pipeline
    from fastiqa.ops import y_channel

    calls = []
    monkeypatch.setattr(y_channel, "ssim_y", lambda *a, _f=y_channel.ssim_y, **k: calls.append(k) or _f(*a, **k))
    pairs = []
    for i in range(3):
        a = _rgb(i, h=170 + i, w=171)  # MS-SSIM needs 161 pixels after the crop
        b = _noisy(a, i)
        if bits == 16:
            a, b = a.astype(np.uint16) * 257 + i, b.astype(np.uint16) * 257
        pairs.append((_save(tmp_path / f"a{i}.png", a), _save(tmp_path / f"b{i}.png", b)))
    kw = dict(metrics="psnr,ssim,mse,mae,ms_ssim", crop_border=3, y_channel=True)
    fused = fastiqa.evaluate(pairs, **kw)
    assert len(calls) == 3 and all(k["backend"] is None for k in calls)  # one call per pair
    planes = fastiqa.evaluate(pairs, backend="reference", **kw)
    assert len(calls) == 3 and fused.errors == planes.errors == []
    for got, want in zip(fused.images, planes.images):
        for m in ("psnr", "ssim", "mse", "mae", "ms_ssim"):
            assert got[m] == pytest.approx(want[m], rel=1e-12, abs=1e-14), m
    assert "psnr" in pipeline._SampleStats.METRICS


def test_backend_applies_to_every_metric(tmp_path, monkeypatch):
    seen = []
    for name in ("psnr", "mse", "mae", "ssim", "ms_ssim"):
        original = getattr(F, name)

        def spy(*args, _original=original, _name=name, **kwargs):
            seen.append((_name, kwargs.get("backend")))
            return _original(*args, **kwargs)

        monkeypatch.setattr(F, name, spy)
    a = _rgb(h=170, w=170)
    pair = (_save(tmp_path / "a.png", a), _save(tmp_path / "b.png", _noisy(a)))
    res = fastiqa.evaluate([pair], metrics="psnr,ssim,ms_ssim,mse,mae", backend="reference")
    assert res.errors == []
    # psnr's value comes from its own fused MSE pass (sr_psnr_parts: psnr and the pooled PSNR's parts)
    assert sorted(n for n, _ in seen) == ["mae", "ms_ssim", "mse", "mse", "ssim"]
    assert all(b == "reference" for _, b in seen)


def test_sr_ms_ssim_is_ms_ssim_of_the_y_channel_cropped():
    a = _rgb(h=180, w=175)
    b = _noisy(a)
    x = torch.from_numpy(b).permute(2, 0, 1)[None].double()
    y = torch.from_numpy(a).permute(2, 0, 1)[None].double()
    xy, yy = M.to_y_channel(x, 255.0)[..., 3:-3, 3:-3], M.to_y_channel(y, 255.0)[..., 3:-3, 3:-3]
    want = float(F.ms_ssim(xy.contiguous(), yy.contiguous(), data_range=255.0, reduction="none")[0])
    got = M.sr_ms_ssim(b, a, 3, test_y_channel=True, channel_order="rgb")
    assert got == pytest.approx(want, abs=1e-12) and 0 < got < 1


def test_sr_ssim_small_image_message_names_its_real_arguments():
    a = _rgb(h=14, w=14)
    with pytest.raises(
        ValueError, match="sr_ssim needs images of at least 11x11 pixels after cropping crop_border=2"
    ) as info:
        M.sr_ssim(a, a, 2)
    assert "win_size" not in str(info.value)


@pytest.mark.parametrize("fn", [M.sr_psnr, M.sr_ssim, M.sr_mse])
def test_empty_images_are_called_empty(fn):
    z = np.zeros((0, 32, 3), np.uint8)
    with pytest.raises(ValueError, match=r"empty images \(32x0 pixels"):
        fn(z, z, 0)


@pytest.mark.skipif(
    not dist.is_available() or not dist.is_gloo_available(), reason="torch.distributed with gloo unavailable"
)
def test_evaluate_reuses_an_initialised_process_group(tmp_path):
    a = _rgb()
    pairs = [(_save(tmp_path / f"a{i}.png", a), _save(tmp_path / f"b{i}.png", _noisy(a, i))) for i in range(3)]
    alone = fastiqa.evaluate(pairs, metrics="psnr")
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'init'}", rank=0, world_size=1)
    try:
        grouped = fastiqa.evaluate(pairs, metrics="psnr")
        assert dist.is_initialized()  # used as it is, left initialised
    finally:
        dist.destroy_process_group()
    assert grouped.rows == alone.rows


def test_msssim_meter_is_the_mean_of_sr_ms_ssim():
    from fastiqa.meters import MSSSIMMeter, PSNRMeter

    hr = np.stack([_rgb(i, h=164, w=166) for i in range(3)])
    sr = np.stack([_noisy(a, 7) for a in hr])
    meter, psnr = MSSSIMMeter(crop_border=1, test_y_channel=True), PSNRMeter(crop_border=1)
    meter.update(sr[:2], hr[:2])
    meter.update(sr[2:], hr[2:])
    psnr.update(sr, hr)
    want = np.mean([M.sr_ms_ssim(s, h, 1, test_y_channel=True) for s, h in zip(sr, hr)])
    assert meter.compute() == pytest.approx(want, abs=1e-12)
    assert psnr.compute() == pytest.approx(float(np.mean(M.sr_psnr(sr, hr, 1))), abs=1e-9)


def test_gpu_jpeg_plumbing_with_a_stand_in_decoder(tmp_path, monkeypatch):
    """--gpu-decode: the workers read JPEG bytes, the scoring thread decodes them (on
    the GPU with torchvision; here a stand-in decoding the bytes with Pillow on CPU)."""
    import io

    from fastiqa.evaluation import pipeline
    from fastiqa.evaluation.options import Options
    from fastiqa.evaluation.pairing import Item

    def stand_in(t, device):
        if t.dim() != 1:
            return t
        arr = np.array(Image.open(io.BytesIO(t.numpy().tobytes())).convert("RGB"))
        return torch.from_numpy(arr).permute(2, 0, 1)[None]

    monkeypatch.setattr(pipeline, "_decode_on_gpu", stand_in)
    a = _rgb()
    Image.fromarray(a).save(tmp_path / "a.jpg", quality=90)
    Image.fromarray(_noisy(a)).save(tmp_path / "b.jpg", quality=90)
    opts = Options(("psnr",), gpu_decode=True)
    item = Item(0, "x", str(tmp_path / "a.jpg"), str(tmp_path / "b.jpg"))
    _, loaded, err, _, _ = pipeline.load(item, opts)
    assert err is None and all(t.dim() == 1 and t.dtype == torch.uint8 for t, _ in loaded)  # bytes, not pixels
    rows, _ = pipeline.run([item], opts)
    want = fastiqa.evaluate([(str(tmp_path / "a.jpg"), str(tmp_path / "b.jpg"))], metrics="psnr").rows[0]["psnr"]
    assert rows[0]["psnr"] == pytest.approx(want, abs=0.05)  # Pillow vs OpenCV JPEG decoding may differ by 1 level


def test_scoring_threads_leave_cores_to_the_decoders_and_are_restored(monkeypatch):
    """While scoring on the CPU, torch's intra-op threads are the cores the decoding
    workers leave (at least 1); the caller's setting comes back afterwards, also on error."""
    from fastiqa.evaluation import pipeline
    from fastiqa.evaluation.options import Options

    before = torch.get_num_threads()
    monkeypatch.setattr(pipeline, "_cores", lambda: 4)
    torch.set_num_threads(4)
    try:
        seen = []
        with pipeline.metric_threads(Options(("psnr",), workers=1)):
            seen.append(torch.get_num_threads())
        with pipeline.metric_threads(Options(("psnr",), workers=8)):
            seen.append(torch.get_num_threads())
        assert seen == [3, 1] and torch.get_num_threads() == 4
        with pytest.raises(RuntimeError):
            with pipeline.metric_threads(Options(("psnr",), workers=2)):
                raise RuntimeError("boom")
        assert torch.get_num_threads() == 4
    finally:
        torch.set_num_threads(before)
