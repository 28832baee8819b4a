"""LPIPS and DISTS in the evaluation conventions: fastiqa.metrics.sr_lpips / sr_dists,
SR_METRICS, the meters, fastiqa.evaluate / `fastiqa eval` and `fastiqa human analyze`.
The backbones are random stand-ins made 'published' for the test (a registry entry whose
file name carries their SHA-256 prefix, in FASTIQA_WEIGHTS_DIR), so every path runs as it
would with torchvision's files."""
import hashlib
import os

import numpy as np
import pytest
import torch
from _perceptual_peers import random_state_dict
from PIL import Image

import fastiqa
import fastiqa.functional as F
from fastiqa import meters
from fastiqa import metrics as M
from fastiqa import weights as W
from fastiqa.evaluation.options import UsageError


@pytest.fixture(scope="module")
def standins(tmp_path_factory):
    """(folder, {name: registry entry}): random alexnet / vgg16 files under names carrying
    their SHA-256 prefix; one folder for the module, so the networks are built once."""
    folder = tmp_path_factory.mktemp("weights")
    entries = {}
    for i, name in enumerate(("alexnet", "vgg16")):
        p = folder / f"{name}.tmp"
        torch.save(random_state_dict(name, seed=20 + i), p)
        sha = hashlib.sha256(p.read_bytes()).hexdigest()
        entries[name] = W.Backbone(name, f"{name}-{sha[:8]}.pth", "test")
        p.rename(folder / entries[name].file)
    return folder, entries


@pytest.fixture
def published(standins, tmp_path, monkeypatch):
    """FASTIQA_WEIGHTS_DIR holds the stand-ins, registered as the published files."""
    folder, entries = standins
    monkeypatch.setenv(W.ENV_DIR, str(folder))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    for name, b in entries.items():
        monkeypatch.setitem(W.BACKBONES, name, b)
    return folder


def _img(h, w, seed, c=3):
    return np.random.default_rng(seed).integers(0, 256, (h, w, c), dtype=np.uint8)


def test_sr_lpips_and_dists_conventions(published):
    a, b = _img(40, 44, 1), _img(40, 44, 2)
    # numpy: HWC, BGR, 0..255 -> RGB [0, 1] float32, cropped
    x = torch.from_numpy(a[..., ::-1].copy()).permute(2, 0, 1)[None].float() / 255
    y = torch.from_numpy(b[..., ::-1].copy()).permute(2, 0, 1)[None].float() / 255
    expect = F.lpips(x[..., 2:-2, 2:-2], y[..., 2:-2, 2:-2], "none").item()
    got = M.sr_lpips(a, b, crop_border=2)
    assert isinstance(got, float) and abs(got - expect) < 1e-6
    assert M.sr_lpips(a, b, 2, test_y_channel=True) == got  # the network reads RGB
    d = M.sr_dists(a, b, 2)
    assert abs(d - F.dists(x[..., 2:-2, 2:-2], y[..., 2:-2, 2:-2]).item()) < 1e-6
    v = M.sr_lpips_vgg(np.stack([a, b]), np.stack([b, b]), 0)
    assert v.shape == (2,) and v[1] == 0 and abs(v[0] - F.lpips(x, y, net="vgg").item()) < 1e-6
    grey = M.sr_lpips(a[..., 0], b[..., 0], 0)  # (H, W): R = G = B
    g3 = M.sr_lpips(np.repeat(a[..., :1], 3, 2), np.repeat(b[..., :1], 3, 2), 0)
    assert grey == pytest.approx(g3, rel=1e-6)
    with pytest.raises(ValueError, match="at least 31x31 pixels"):
        M.sr_lpips(a, b, crop_border=7)
    with pytest.raises(ValueError, match="crop_border=22 removes the whole"):
        M.sr_dists(a, b, crop_border=22)
    assert {"lpips", "lpips_vgg", "dists"} <= set(M.SR_METRICS)
    assert M.SR_METRICS["lpips"].backbone == "alexnet" and M.SR_METRICS["dists"].backbone == "vgg16"


def test_meters(published):
    m = meters.MeterCollection(lpips=meters.LPIPSMeter(crop_border=1), dists=meters.DISTSMeter())
    batches = [(torch.rand(n, 3, 33, 35), torch.rand(n, 3, 33, 35)) for n in (2, 1)]
    vals = {"lpips": [], "dists": []}
    for p, t in batches:
        m.update(p, t)
        vals["lpips"] += list(M.sr_lpips(p, t, 1))
        vals["dists"] += list(M.sr_dists(p, t, 0))
    out = m.compute()
    for k in vals:
        assert abs(out[k] - float(np.mean(vals[k]))) < 1e-9


def _folders(root, sizes):
    ref, pred = root / "ref", root / "pred"
    ref.mkdir()
    pred.mkdir()
    for i, (h, w) in enumerate(sizes):
        a = _img(h, w, 10 + i)
        b = np.clip(a.astype(int) + np.random.default_rng(i).integers(-30, 30, a.shape), 0, 255).astype(np.uint8)
        Image.fromarray(a).save(ref / f"im{i}.png")
        Image.fromarray(b).save(pred / f"im{i}.png")
    return str(ref), str(pred)


def test_evaluate_with_lpips_and_dists(published, tmp_path):
    ref, pred = _folders(tmp_path, [(40, 48), (36, 37), (20, 26)])
    res = fastiqa.evaluate(ref, pred, "psnr,ssim,lpips,dists", crop_border=2, y_channel=True, device="cpu")
    rows = {r["name"]: r for r in res.rows}
    for name in ("im0", "im1"):
        a = np.array(Image.open(os.path.join(ref, name + ".png")))
        b = np.array(Image.open(os.path.join(pred, name + ".png")))
        x, y = (torch.from_numpy(v).permute(2, 0, 1)[None].float()[..., 2:-2, 2:-2] / 255 for v in (b, a))
        assert abs(rows[name]["lpips"] - F.lpips(x, y).item()) < 1e-5  # RGB although y_channel
        assert abs(rows[name]["dists"] - F.dists(x, y).item()) < 1e-5
        assert rows[name]["psnr"] == pytest.approx(M.sr_psnr(b, a, 2, "HWC", True, channel_order="rgb"), abs=1e-9)
    # 20x26 cropped by 2 leaves 16x22: too small for AlexNet's LPIPS only
    assert "lpips" not in rows["im2"] and rows["im2"]["metric_errors"]["lpips"]["kind"] == "too_small"
    assert "dists" in rows["im2"] and "ssim" in rows["im2"]
    assert res.means["lpips"] == pytest.approx((rows["im0"]["lpips"] + rows["im1"]["lpips"]) / 2)
    res = fastiqa.evaluate(ref, pred, ["lpips"], crop_border=2, backend="reference", device="cpu")  # no op
    assert [r.get("lpips") for r in res.rows[:2]] == [rows["im0"]["lpips"], rows["im1"]["lpips"]]


def test_eval_refuses_before_reading_when_weights_are_missing(tmp_path, monkeypatch):
    monkeypatch.setenv(W.ENV_DIR, str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    with pytest.raises(UsageError, match=r"metric dists: no vgg16 weights.*fastiqa weights fetch vgg16"):
        fastiqa.evaluate(str(tmp_path / "nope"), str(tmp_path / "nope2"), "psnr,dists")


def test_eval_cli_metrics_and_device(published, tmp_path, capsys):
    from fastiqa.cli import main

    ref, pred = _folders(tmp_path, [(40, 40)])
    rc = main(["eval", "--ref", ref, "--pred", pred, "--metrics", "psnr,ssim,lpips,dists", "--device", "cpu",
               "--json", str(tmp_path / "o.json"), "--no-progress"])
    assert rc == 0
    import json

    doc = json.load(open(tmp_path / "o.json"))
    assert {"lpips", "dists", "psnr", "ssim"} <= set(doc["images"][0])


def test_human_analyze_agreement(published, tmp_path):
    pytest.importorskip("scipy", reason="fastiqa human analyze needs scipy (fastiqa[human])")
    from fastiqa.human.analyze import compute_metrics, default_metrics, metric_agreement
    from fastiqa.human.stats.agreement import HIGHER_IS_BETTER

    assert default_metrics() == ("psnr", "ssim", "lpips", "dists")
    assert not HIGHER_IS_BETTER["lpips"] and not HIGHER_IS_BETTER["dists"] and not HIGHER_IS_BETTER["lpips_vgg"]
    from _human_support import make_study

    study = make_study(tmp_path, "acr", methods={f"n{k}": ("noise", s) for k, s in enumerate((4.0, 12.0, 30.0))},
                       size=(48, 40))
    table = compute_metrics(study)
    assert all({"psnr", "ssim", "lpips", "dists"} <= set(v) for v in table.values())
    # scores made from the negated LPIPS: LPIPS must agree (SROCC 1 after its lower-is-better flip)
    sub = {"stimuli": [{"content": c, "method": m, "mean": -v["lpips"], "std": 0.1, "n": 5}
                       for (c, m), v in table.items()]}
    agree, _, _ = metric_agreement(study, sub, table)
    lp = next(a for a in agree if a["metric"] == "lpips")
    assert lp["srocc"] == pytest.approx(1.0)
