"""`fastiqa eval` end to end on generated image folders, bad folders included,
and the image reader (8/16-bit PNG, JPEG, TIFF, BMP)."""
import csv
import json
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

import _basicsr_metrics as B
import fastiqa.functional as F
from fastiqa import cli
from fastiqa._imageio import ImageReadError, read_image


def _make_folders(tmp_path, n=3, h=36, w=41, suffix="_x4_SR", seed=0):
    rng = np.random.default_rng(seed)
    ref, pred = tmp_path / "hr", tmp_path / "sr"
    ref.mkdir()
    pred.mkdir()
    arrays = {}
    for i in range(n):
        a = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        b = np.clip(a + rng.normal(0, 6, a.shape), 0, 255).round().astype(np.uint8)
        Image.fromarray(a).save(ref / f"im{i}.png")
        Image.fromarray(b).save(pred / f"im{i}{suffix}.png")
        arrays[f"im{i}"] = (b, a)
    return ref, pred, arrays


def _run(capsys, *argv):
    rc = cli.main(["eval", "--no-progress", *map(str, argv)])
    out = capsys.readouterr()
    assert "Traceback" not in out.err and "Traceback" not in out.out
    return rc, out.out, out.err


def test_eval_matches_basicsr_and_writes_csv_json(tmp_path, capsys):
    ref, pred, arrays = _make_folders(tmp_path)
    rc, out, err = _run(capsys, "--ref", ref, "--pred", pred, "--suffix", "_x4_SR", "--scale", "4", "--y-channel",
                        "--csv", tmp_path / "r.csv", "--json", tmp_path / "r.json")
    assert rc == 0, err
    assert "mean" in out and "im2" in out
    with open(tmp_path / "r.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["name"] for r in rows] == ["im0", "im1", "im2", "mean"]
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["count"] == 3 and doc["crop_border"] == 4 and doc["errors"] == []
    psnrs, ssims = [], []
    for r in rows[:3]:
        sr, hr = arrays[r["name"]]
        bgr = lambda a: a[..., ::-1]  # BasicSR reads BGR with cv2
        want_p = B.calculate_psnr(bgr(sr), bgr(hr), 4, "HWC", True)
        want_s = B.calculate_ssim(bgr(sr), bgr(hr), 4, "HWC", True)
        assert float(r["psnr"]) == pytest.approx(want_p, abs=1e-5)
        assert float(r["ssim"]) == pytest.approx(want_s, abs=1e-6)
        psnrs.append(want_p)
        ssims.append(want_s)
    assert doc["mean"]["psnr"] == pytest.approx(np.mean(psnrs), abs=1e-5)
    assert float(rows[3]["ssim"]) == pytest.approx(np.mean(ssims), abs=1e-6)


def test_eval_bad_files_are_reported_and_the_rest_kept(tmp_path, capsys):
    ref, pred, _ = _make_folders(tmp_path, n=3, suffix="")
    (pred / "im1.png").unlink()  # missing prediction
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(pred / "extra.png")  # prediction without reference
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(ref / "small.png")  # size mismatch
    Image.fromarray(np.zeros((21, 20, 3), np.uint8)).save(pred / "small.png")
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(ref / "twice.png")  # ambiguous reference names
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(ref / "twice.bmp")
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(pred / "twice.png")
    (ref / "broken.png").write_bytes(b"not a png")  # unreadable
    (pred / "broken.png").write_bytes(b"not a png either")
    rc, out, err = _run(capsys, "--ref", ref, "--pred", pred, "--crop-border", "2", "--json", tmp_path / "r.json")
    assert rc == 1
    assert "im1.png: no prediction" in err
    assert "extra.png: no reference" in err
    assert "small: size mismatch" in err
    assert "broken.png: cannot read image" in err
    assert "several references share the name 'twice'" in err
    doc = json.loads((tmp_path / "r.json").read_text())
    assert [r["name"] for r in doc["images"]] == ["im0", "im2"]
    assert len(doc["errors"]) == 6


@pytest.mark.parametrize("argv, message", [
    (["--ref", "NOPE", "--pred", "NOPE"], "is not a folder"),
    (["--metrics", "psnr,lpips"], "unknown metric 'lpips'"),
    (["--device", "cuda"], "no CUDA device"),
    (["--scale", "-1"], ">= 0"),
])
def test_eval_usage_errors(tmp_path, capsys, argv, message):
    if "--device" in argv:
        import torch

        if torch.cuda.is_available():
            pytest.skip("a CUDA device is present: --device cuda is valid here")
    ref, pred, _ = _make_folders(tmp_path, n=1, suffix="")
    args = ["--ref", ref, "--pred", pred, *argv] if argv[0] != "--ref" else [*argv]
    rc, out, err = _run(capsys, *args)
    assert rc == 2 and message in err


def test_eval_empty_folder(tmp_path, capsys):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    rc, _, err = _run(capsys, "--ref", tmp_path / "a", "--pred", tmp_path / "b")
    assert rc == 2 and "holds no images" in err


def test_eval_ms_ssim_available_or_clear_message(tmp_path, capsys):
    ref, pred, _ = _make_folders(tmp_path, n=1, h=200, w=200, suffix="")
    rc, out, err = _run(capsys, "--ref", ref, "--pred", pred, "--metrics", "psnr,ms_ssim")
    if getattr(F, "ms_ssim", None) is None:
        assert rc == 2 and "ms_ssim is not available in this build" in err
    else:
        assert rc == 0 and "ms_ssim" in out


def test_eval_16bit_and_other_formats(tmp_path, capsys):
    rng = np.random.default_rng(5)
    ref, pred = tmp_path / "hr", tmp_path / "sr"
    ref.mkdir()
    pred.mkdir()
    a16 = rng.integers(0, 65536, (24, 27, 3)).astype(np.uint16)
    b16 = np.clip(a16 + rng.normal(0, 500, a16.shape), 0, 65535).astype(np.uint16)
    (ref / "c16.png").write_bytes(_png16(a16))
    (pred / "c16.png").write_bytes(_png16(b16, filters=(4, 3, 1, 2, 0)))
    g = rng.integers(0, 256, (24, 27), dtype=np.uint8)
    Image.fromarray(g).save(ref / "g8.bmp")
    Image.fromarray(np.clip(g + 3, 0, 255).astype(np.uint8)).save(pred / "g8.tif")
    rc, out, err = _run(capsys, "--ref", ref, "--pred", pred, "--metrics", "psnr", "--json", tmp_path / "r.json")
    assert rc == 0, err
    doc = json.loads((tmp_path / "r.json").read_text())
    got = {r["name"]: r["psnr"] for r in doc["images"]}
    mse16 = np.mean((a16.astype(np.float64) / 65535 - b16.astype(np.float64) / 65535) ** 2)
    assert got["c16"] == pytest.approx(10 * np.log10(1 / mse16), abs=1e-9)
    mse8 = np.mean((g.astype(np.float64) - np.clip(g + 3, 0, 255)) ** 2)
    assert got["g8"] == pytest.approx(10 * np.log10(255 ** 2 / mse8), abs=1e-9)


def _paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    return np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))


def _png16(arr, filters=(0,)):
    """A 16-bit PNG written here with the given filter types cycling over the rows."""
    h, w, c = arr.shape
    raw = arr.astype(">u2").view(np.uint8).reshape(h, w * c * 2).astype(np.int64)
    bpp = 2 * c
    lines, prev = [], np.zeros(w * c * 2, np.int64)
    for r in range(h):
        ft = filters[r % len(filters)]
        line = raw[r]
        left = np.concatenate([np.zeros(bpp, np.int64), line[:-bpp]])
        upleft = np.concatenate([np.zeros(bpp, np.int64), prev[:-bpp]])
        pred = {0: 0, 1: left, 2: prev, 3: (left + prev) // 2, 4: _paeth(left, prev, upleft)}[ft]
        lines.append(bytes([ft]) + ((line - pred) % 256).astype(np.uint8).tobytes())
        prev = line

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    ctype = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, ctype, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"".join(lines))) + chunk(b"IEND", b""))


@pytest.mark.parametrize("channels", [3, 4, 2])
def test_png16_decoder_every_filter(tmp_path, channels):
    arr = np.random.default_rng(channels).integers(0, 65536, (9, 13, channels)).astype(np.uint16)
    p = tmp_path / "x.png"
    p.write_bytes(_png16(arr, filters=(0, 1, 2, 3, 4)))
    got, full = read_image(str(p))
    assert full == 65535 and got.dtype == np.uint16
    np.testing.assert_array_equal(got, arr[..., : 3 if channels >= 3 else 1])


def test_reader_8bit_formats_and_16bit_gray(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (12, 15, 3), dtype=np.uint8)
    for ext in ("png", "bmp", "tif"):
        Image.fromarray(rgb).save(tmp_path / f"a.{ext}")
        got, full = read_image(str(tmp_path / f"a.{ext}"))
        assert full == 255
        np.testing.assert_array_equal(got, rgb)
    yy, xx = np.mgrid[0:16, 0:24]
    smooth = np.dstack([xx * 10, yy * 15, xx * 5 + yy * 5]).astype(np.uint8)
    Image.fromarray(smooth).save(tmp_path / "a.jpg", quality=95)
    got, _ = read_image(str(tmp_path / "a.jpg"))
    assert got.shape == smooth.shape and np.abs(got.astype(int) - smooth).mean() < 4
    g16 = np.random.default_rng(1).integers(0, 65536, (10, 11)).astype(np.uint16)
    Image.fromarray(g16).save(tmp_path / "g.png")
    got, full = read_image(str(tmp_path / "g.png"))
    assert full == 65535
    np.testing.assert_array_equal(got[..., 0], g16)
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 7, np.uint8)])
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    np.testing.assert_array_equal(read_image(str(tmp_path / "rgba.png"))[0], rgb)
    with pytest.raises(ImageReadError, match="file not found"):
        read_image(str(tmp_path / "none.png"))


def test_shipped_images_and_demo_evaluation(capsys):
    import argparse
    import os

    from fastiqa import eval_demo

    images = eval_demo.load_images()
    assert set(images) == {"astronaut", "chelsea", "coffee"}
    total = sum(os.path.getsize(os.path.join(eval_demo.data_dir(), f"{k}.png")) for k in images)
    assert total < 600_000
    licence = open(os.path.join(eval_demo.data_dir(), "LICENSE-images.txt")).read()
    assert all(k in licence for k in images) and "CC0" in licence and "public domain" in licence
    for hr in images.values():
        assert hr.shape == (1, 3, 256, 256) and 0 <= hr.min() and hr.max() <= 1
        d = eval_demo.degrade(hr)
        assert torch_equal_grid(d["bicubic_x4"]) and torch_equal_grid(d["noise_10"])
    eval_demo.run(argparse.Namespace(device=["cpu"], repeat=1))
    out = capsys.readouterr().out
    means = [line for line in out.splitlines() if line.startswith("mean")]
    assert len(means) == 2
    bicubic = float(means[0].split()[2])
    assert 20 < bicubic < 35  # bicubic x4 on natural photographs
    assert "fastiqa cpu" in out or "fastiqa reference" in out


def torch_equal_grid(x):
    import torch

    return torch.equal(x, torch.round(x * 255) / 255)


def test_eval_command_line_process(tmp_path):
    """The real `python -m fastiqa eval` process: messages and exit codes, no traceback."""
    import subprocess
    import sys

    ref, pred, _ = _make_folders(tmp_path, n=2, suffix="")
    (pred / "im1.png").write_bytes(b"broken")
    run = lambda *a: subprocess.run([sys.executable, "-m", "fastiqa", "eval", "--no-progress", *map(str, a)],
                                    capture_output=True, text=True, timeout=120, cwd=tmp_path)
    p = run("--ref", ref, "--pred", pred, "--scale", "2", "--y-channel")
    assert p.returncode == 1 and "Traceback" not in p.stderr
    assert "im1.png: cannot read image" in p.stderr and "im0" in p.stdout
    p = run("--ref", ref)  # argparse: usage message, exit 2
    assert p.returncode == 2 and "Traceback" not in p.stderr and "--pred" in p.stderr


def test_info_lists_the_psnr_family():
    from fastiqa.info import collect

    fam = collect()["families"]["psnr"]
    assert fam["on_cpu_tensors"] in ("cpu", "reference")
