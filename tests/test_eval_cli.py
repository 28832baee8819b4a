"""`fastiqa eval` end to end on generated image folders: BasicSR's numbers, the CSV
and JSON (failures included), usage errors (exit 2, one message), the real process."""
import json
import subprocess
import sys

import _basicsr_metrics as B
import numpy as np
import pytest
import torch
from PIL import Image

from support import read_csv, run_eval_cli


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




def test_eval_matches_basicsr_and_writes_csv_json(tmp_path, capsys):
    ref, pred, arrays = _make_folders(tmp_path)
    rc, out, err = run_eval_cli(capsys, "--ref", ref, "--pred", pred, "--suffix", "_x4_SR", "--scale", "4",
                                "--y-channel",
                        "--csv", tmp_path / "r.csv", "--json", tmp_path / "r.json")
    assert rc == 0, err
    assert "mean" in out and "im2" in out
    rows = read_csv(tmp_path / "r.csv")
    assert [r["name"] for r in rows] == ["im0", "im1", "im2", "mean"]
    assert all(r["error"] == "" for r in rows)
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["count"] == 3 and doc["crop_border"] == 4 and doc["errors"] == [] and doc["failed"] == []
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


def test_table_mean_row_has_no_count_in_the_size_column(tmp_path, capsys):
    ref, pred, _ = _make_folders(tmp_path, n=3, suffix="")
    rc, out, _ = run_eval_cli(capsys, "--ref", ref, "--pred", pred, "--metrics", "psnr")
    mean_line = next(line for line in out.splitlines() if line.startswith("mean"))
    assert rc == 0 and "im" not in mean_line.split()[1] and len(mean_line.split()) == 2


def test_eval_bad_files_are_rows_of_csv_and_json_and_the_rest_kept(tmp_path, capsys):
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
    rc, out, err = run_eval_cli(capsys, "--ref", ref, "--pred", pred, "--crop-border", "2", "--json",
                                tmp_path / "r.json",
                        "--csv", tmp_path / "r.csv")
    assert rc == 1
    for message in ("im1.png: no prediction", "extra.png: no reference", "small: size mismatch",
                    "broken.png: cannot read image", "several references share the name 'twice'"):
        assert err.count(message) == (2 if "twice" in message else 1), message
    doc = json.loads((tmp_path / "r.json").read_text())
    assert [r["name"] for r in doc["images"]] == ["im0", "im2"]
    assert len(doc["errors"]) == 6 and [f["error"] for f in doc["failed"]] == doc["errors"]
    rows = read_csv(tmp_path / "r.csv")
    assert [r["name"] for r in rows] == ["broken", "im0", "im1", "im2", "small", "twice", "twice", "extra", "mean"]
    by_name = {r["name"]: r for r in rows}
    assert "no prediction" in by_name["im1"]["error"] and by_name["im1"]["psnr"] == ""
    assert "cannot read image" in by_name["broken"]["error"] and "size mismatch" in by_name["small"]["error"]
    assert "no reference" in by_name["extra"]["error"] and by_name["im0"]["error"] == ""
    assert float(by_name["mean"]["psnr"]) == pytest.approx(np.mean([i["psnr"] for i in doc["images"]]))


@pytest.mark.parametrize("argv, message", [
    (["--ref", "NOPE", "--pred", "NOPE"], "is not a folder"),
    (["--metrics", "psnr,vif"], "unknown metric 'vif'"),
    (["--device", "cuda"], "no CUDA device"),
    (["--scale", "-1"], ">= 0"),
    (["--workers", "0"], "workers must be an integer >= 1"),
    (["--backend", "cuda"], "backend 'cuda' cannot run psnr on cpu"),
    (["--backend", "triton"], "backend 'triton' cannot run psnr on cpu"),
    (["--scale", "40"], "crop border 40 (--scale / --crop-border) removes the whole image of every pair"),
    (["--csv", "no/such/folder/r.csv"], "its folder does not exist"),
    (["--gpu-decode"], "gpu_decode decodes JPEG on a CUDA device"),
])
def test_eval_usage_errors_are_one_message_and_exit_2(tmp_path, capsys, monkeypatch, argv, message):
    if torch.cuda.is_available() and ("cuda" in argv or "--gpu-decode" in argv):
        pytest.skip("a CUDA device is present: this argument is valid here")
    monkeypatch.setenv("TRITON_INTERPRET", "0")  # Triton on CPU tensors only runs interpreted
    monkeypatch.chdir(tmp_path)
    ref, pred, _ = _make_folders(tmp_path, n=3, suffix="")
    args = ["--ref", ref, "--pred", pred, *argv] if argv[0] != "--ref" else [*argv]
    rc, out, err = run_eval_cli(capsys, *args)
    assert rc == 2 and message in err
    assert len(err.strip().splitlines()) == 1, err  # one message, not one per image


def test_crop_too_large_for_some_images_is_per_image(tmp_path, capsys):
    ref, pred, _ = _make_folders(tmp_path, n=2, suffix="")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(ref / "tiny.png")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(pred / "tiny.png")
    rc, _, err = run_eval_cli(capsys, "--ref", ref, "--pred", pred, "--scale", "4")
    assert rc == 1 and "tiny: crop border 4 removes the whole 8x8 image" in err


def test_eval_empty_folder(tmp_path, capsys):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    rc, _, err = run_eval_cli(capsys, "--ref", tmp_path / "a", "--pred", tmp_path / "b")
    assert rc == 2 and "holds no images" in err


def test_eval_all_metrics_and_backends(tmp_path, capsys):
    ref, pred, _ = _make_folders(tmp_path, n=1, h=170, w=172, suffix="")
    rc, out, err = run_eval_cli(capsys, "--ref", ref, "--pred", pred, "--metrics", "psnr,ssim,ms_ssim,mse,mae",
                        "--backend", "reference", "--json", tmp_path / "a.json")
    assert rc == 0, err
    got = json.loads((tmp_path / "a.json").read_text())["images"][0]
    assert 0 < got["ms_ssim"] < 1 and 0 < got["mse"] < 0.01 and 0 < got["mae"] < 0.1
    assert got["psnr"] == pytest.approx(-10 * np.log10(got["mse"]), abs=1e-9)  # mse on [0, 1]


def test_eval_quiet(tmp_path, capsys):
    ref, pred, _ = _make_folders(tmp_path, n=2, suffix="")
    rc, out, _ = run_eval_cli(capsys, "--ref", ref, "--pred", pred, "--quiet")
    assert rc == 0 and out.startswith("psnr=") and "ssim=" in out and len(out.splitlines()) == 1


def test_eval_command_line_process(tmp_path):
    """The real `python -m fastiqa eval` process: messages and exit codes, no traceback."""
    ref, pred, _ = _make_folders(tmp_path, n=2, suffix="")
    (pred / "im1.png").write_bytes(b"broken")
    run = lambda *a: subprocess.run([sys.executable, "-m", "fastiqa", "eval", "--no-progress", *map(str, a)],
                                    capture_output=True, text=True, timeout=120, cwd=tmp_path)
    p = run("--ref", ref, "--pred", pred, "--scale", "2", "--y-channel")
    assert p.returncode == 1 and "Traceback" not in p.stderr
    assert "im1.png: cannot read image" in p.stderr and "im0" in p.stdout
    p = run("--ref", ref)  # argparse: usage message, exit 2
    assert p.returncode == 2 and "Traceback" not in p.stderr and "--pred" in p.stderr
