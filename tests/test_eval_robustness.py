"""`fastiqa eval` never loses its output (issue 22): any file name the OS returns is
written (escaped) to the table, CSV and JSON; outputs that cannot be written are a
usage error before the first pair is read; a metric that cannot run on a pair fails
that cell only; a crop too large for many pairs is one message; links, loops,
directories and FIFOs are reported as what they are; Pillow's decompression-bomb
warning becomes a note of ours; size mismatches come from the headers, nothing decoded."""
import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
from PIL import Image

import fastiqa
from fastiqa import _imageio
from fastiqa.evaluation import pipeline, report

from support import read_csv, run_eval_cli


def _save(path, h, w, seed=0, noise=0):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    if noise:
        a = np.clip(a + rng.normal(0, noise, a.shape), 0, 255).round().astype(np.uint8)
    Image.fromarray(a).save(path)


def _pair(ref, pred, name, h=36, w=41, seed=0):
    _save(os.path.join(ref, name), h, w, seed)
    _save(os.path.join(pred, name), h, w, seed, noise=6)


@pytest.fixture
def folders(tmp_path):
    ref, pred = tmp_path / "hr", tmp_path / "sr"
    ref.mkdir()
    pred.mkdir()
    return ref, pred




def _messages(err):
    return [line for line in err.splitlines() if line.startswith("fastiqa eval: ")]


# --- file names -------------------------------------------------------------------------


@pytest.mark.skipif(sys.platform == "win32" or os.fsencode("\udce9") != b"\xe9",
                    reason="byte file names that are not UTF-8 exist on POSIX file systems only")
def test_non_utf8_file_names_are_written_escaped(folders, tmp_path, capsys):
    ref, pred = folders
    bad = b"caf\xe9.png"  # Latin-1 bytes: not UTF-8
    for folder in (ref, pred):
        _save(os.path.join(os.fsencode(folder), bad), 20, 24, noise=0 if folder is ref else 4)
    _pair(ref, pred, "\u00e9t\u00e9.png")  # valid UTF-8 stays as it is
    rc, out, err = run_eval_cli(capsys, "--ref", ref, "--pred", pred, "--csv", tmp_path / "r.csv",
                        "--json", tmp_path / "r.json")
    assert rc == 0, err
    assert "caf\\xe9" in out and "\u00e9t\u00e9" in out
    assert [r["name"] for r in read_csv(tmp_path / "r.csv")] == ["caf\\xe9", "\u00e9t\u00e9", "mean"]
    doc = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert [i["name"] for i in doc["images"]] == ["caf\\xe9", "\u00e9t\u00e9"] and doc["count"] == 2
    # the API keeps the OS's name: it opens the file
    res = fastiqa.evaluate(str(ref), str(pred), "psnr")
    assert os.fsencode(res.rows[0]["name"]) == b"caf\xe9" and not res.errors
    assert report.text(res.rows[0]["name"]) == "caf\\xe9"


@pytest.mark.skipif(sys.platform == "win32", reason="byte file names that are not UTF-8: POSIX only")
def test_non_utf8_names_on_an_ascii_terminal(folders, tmp_path):
    """The real process with an ASCII stdout/stderr: no UnicodeEncodeError, outputs written."""
    ref, pred = folders
    for folder in (ref, pred):
        _save(os.path.join(os.fsencode(folder), b"x\xff.png"), 20, 24)
    _pair(ref, pred, "\u00fcber.png")
    os.mkdir(os.path.join(os.fsencode(pred), b"d\xfe.png"))  # a problem whose message holds the name
    _save(os.path.join(os.fsencode(ref), b"d\xfe.png"), 20, 24)
    env = dict(os.environ, PYTHONIOENCODING="ascii")
    p = subprocess.run([sys.executable, "-m", "fastiqa", "eval", "--no-progress", "--ref", str(ref), "--pred",
                        str(pred), "--csv", str(tmp_path / "r.csv"), "--json", str(tmp_path / "r.json")],
                       capture_output=True, timeout=120, env=env, cwd=tmp_path)
    out, err = p.stdout.decode("ascii"), p.stderr.decode("ascii")  # nothing but ASCII was written
    assert p.returncode == 1 and "Traceback" not in err, err
    assert "x\\xff" in out and "\\xfcber" in out and "d\\xfe.png in " in err and "a directory" in err
    rows = read_csv(tmp_path / "r.csv")
    assert [r["name"] for r in rows] == ["d\\xfe", "x\\xff", "\u00fcber", "mean"]
    assert json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))["count"] == 2


# --- outputs ----------------------------------------------------------------------------


def _unwritable_folder(tmp_path):
    """A folder in which no file can be created, or None (root writes anywhere but /sys)."""
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        (locked / "probe").write_text("")
    except OSError:
        return locked
    (locked / "probe").unlink()
    probe = "/sys/kernel"
    if os.path.isdir(probe):
        try:
            open(os.path.join(probe, "fastiqa_probe"), "a").close()
        except OSError:
            return probe
    return None


def test_outputs_are_checked_before_the_first_pair(folders, tmp_path, capsys, monkeypatch):
    ref, pred = folders
    _pair(ref, pred, "a.png")
    opened = []
    monkeypatch.setattr(pipeline, "read_file", lambda p: opened.append(p) or _imageio.read_file(p))
    (tmp_path / "adir").mkdir()
    cases = [(["--csv", tmp_path / "adir"], "cannot write --csv"),
             (["--json", tmp_path / "adir"], "it is a directory"),
             (["--csv", tmp_path / "o.csv", "--json", tmp_path / "o.csv"], "--csv and --json name the same file"),
             (["--csv", tmp_path / "a.png" / "x.csv"], "its folder does not exist")]
    locked = _unwritable_folder(tmp_path)
    if locked is not None:
        cases.append((["--csv", tmp_path / "good.csv", "--json", os.path.join(locked, "r.json")],
                      "cannot write --json"))
    for argv, message in cases:
        rc, out, err = run_eval_cli(capsys, "--ref", ref, "--pred", pred, *argv)
        assert rc == 2 and message in err and out == "", (argv, err)
        assert len(_messages(err)) == 1, err
    assert opened == []  # not one image read
    assert not (tmp_path / "good.csv").exists() and not (tmp_path / "o.csv").exists()  # the check leaves nothing


def test_an_existing_output_is_untouched_by_the_check_and_then_replaced(folders, tmp_path, capsys):
    ref, pred = folders
    _pair(ref, pred, "a.png")
    (tmp_path / "r.csv").write_text("old\n")
    rc, _, err = run_eval_cli(capsys, "--ref", ref, "--pred", pred, "--csv", tmp_path / "r.csv")
    assert rc == 0, err
    assert (tmp_path / "r.csv").read_text().startswith("name,width,height")


def test_one_output_failing_keeps_the_other(folders, tmp_path, capsys, monkeypatch):
    ref, pred = folders
    _pair(ref, pred, "a.png")

    def disk_full(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(report, "write_csv", disk_full)
    rc, _, err = run_eval_cli(capsys, "--ref", ref, "--pred", pred, "--csv", tmp_path / "r.csv", "--json",
                              tmp_path / "r.json")
    assert rc == 1 and "could not write --csv" in err and "No space left on device" in err
    assert json.loads((tmp_path / "r.json").read_text())["count"] == 1


# --- one failed metric: one failed cell ---------------------------------------------------


def test_metric_too_small_fails_its_cell_only(folders, tmp_path, capsys):
    ref, pred = folders
    for i in range(3):
        _pair(ref, pred, f"im{i}.png", h=40, w=48, seed=i)
    rc, out, err = run_eval_cli(capsys, "--ref", ref, "--pred", pred, "--metrics", "psnr,ms_ssim,ssim",
                        "--csv", tmp_path / "r.csv", "--json", tmp_path / "r.json")
    assert rc == 1
    res = fastiqa.evaluate(str(ref), str(pred), "psnr,ms_ssim,ssim")
    assert len(res.images) == 3 and all("psnr" in r and "ssim" in r and "ms_ssim" not in r for r in res.images)
    assert np.isfinite(res.means["psnr"]) and np.isfinite(res.means["ssim"]) and np.isnan(res.means["ms_ssim"])
    assert res.means["psnr"] == pytest.approx(np.mean([r["psnr"] for r in res.images]))
    rows = read_csv(tmp_path / "r.csv")
    assert all(r["psnr"] and r["ssim"] and r["ms_ssim"] == "" for r in rows[:3])
    assert all(r["error"].startswith("ms_ssim: needs images of at least 161x161 pixels") for r in rows[:3])
    assert float(rows[3]["psnr"]) == pytest.approx(res.means["psnr"])
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["count"] == 3 and doc["counts"] == {"psnr": 3, "ms_ssim": 0, "ssim": 3}
    assert [set(i) for i in doc["images"]] == [{"name", "height", "width", "psnr", "ssim"}] * 3
    assert [f["metric"] for f in doc["failed"]] == ["ms_ssim"] * 3 and doc["mean"]["ms_ssim"] == "nan"
    assert len([m for m in _messages(err) if "ms_ssim" in m]) == 1  # one message for the three pairs
    assert "failed" in out and "im2" in out


@pytest.mark.parametrize("y_channel", [False, True])
def test_metric_error_fails_its_cell_only(folders, capsys, monkeypatch, y_channel):
    """A metric's own error (here forced) on one pair: that cell, named; the rest kept.
    With --y-channel the SSIM runs on the samples with the MSE in one pass: PSNR stays."""
    ref, pred = folders
    for i in range(2):
        _pair(ref, pred, f"im{i}.png", seed=i)

    def broken(*a, **k):
        raise RuntimeError("kernel exploded")

    monkeypatch.setattr(pipeline.Y, "ssim_y", broken)
    spec = pipeline.M.SR_METRICS["ssim"]
    monkeypatch.setitem(pipeline.M.SR_METRICS, "ssim", spec._replace(fn=broken))
    argv = ["--ref", ref, "--pred", pred, "--metrics", "psnr,ssim,mae"] + (["--y-channel"] if y_channel else [])
    rc, _, err = run_eval_cli(capsys, *argv)
    assert rc == 1 and "im0: ssim: RuntimeError: kernel exploded" in err
    res = fastiqa.evaluate(str(ref), str(pred), "psnr,ssim,mae", y_channel=y_channel)
    assert [sorted(r) for r in res.images] == [sorted(["index", "name", "height", "width", "psnr", "mae",
                                                       "sq_err", "samples", "metric_errors"])] * 2
    assert res.images[0]["metric_errors"]["ssim"]["kind"] == "metric"
    assert np.isfinite(res.means["psnr"]) and np.isfinite(res.means["mae"]) and len(res.errors) == 2


# --- crop: one message --------------------------------------------------------------------


def test_scale_too_large_for_ssim_is_one_message(folders, capsys):
    ref, pred = folders
    for i in range(6):
        _pair(ref, pred, f"im{i}.png", h=32, w=32, seed=i)
    rc, out, err = run_eval_cli(capsys, "--ref", ref, "--pred", pred, "--scale", "15")
    msgs = _messages(err)
    assert rc == 1 and len(msgs) == 2, err  # the SSIM line and the summary
    assert "ssim: 6 pairs are too small" in msgs[0] and "after cropping 15 from each border" in msgs[0]
    res = fastiqa.evaluate(str(ref), str(pred), crop_border=15)
    assert all(np.isfinite(r["psnr"]) for r in res.images) and len(res.images) == 6


def test_crop_removing_many_images_is_one_message(folders, capsys):
    ref, pred = folders
    _pair(ref, pred, "big.png", h=40, w=40)
    for i in range(4):
        _pair(ref, pred, f"tiny{i}.png", h=8, w=8, seed=i)
    rc, _, err = run_eval_cli(capsys, "--ref", ref, "--pred", pred, "--scale", "4", "--metrics", "psnr")
    msgs = _messages(err)
    assert rc == 1 and len(msgs) == 2, err
    assert "crop border 4 (--scale / --crop-border) removes the whole image of 4 pairs" in msgs[0]


# --- links, loops, directories, FIFOs -----------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "symlink") or sys.platform == "win32", reason="POSIX symbolic links")
def test_links_loops_and_directories_are_reported_as_what_they_are(folders, tmp_path, capsys):
    ref, pred = folders
    _pair(ref, pred, "good.png")
    for name in ("loop.png", "dangling.png", "dir.png", "fifo.png"):
        _save(ref / name, 20, 20)
    os.symlink("loop.png", pred / "loop.png")
    os.symlink("nowhere.png", pred / "dangling.png")
    (pred / "dir.png").mkdir()
    if hasattr(os, "mkfifo"):
        os.mkfifo(pred / "fifo.png")  # reading it would block: reported, never opened
    else:
        _save(pred / "fifo.png", 20, 20)
    rc, _, err = run_eval_cli(capsys, "--ref", ref, "--pred", pred, "--json", tmp_path / "r.json")
    assert rc == 1
    assert f"loop.png in {pred}: a symbolic link loop" in err
    assert f"dangling.png in {pred}: a broken symbolic link (to 'nowhere.png'" in err
    assert f"dir.png in {pred}: a directory, not an image file" in err
    if hasattr(os, "mkfifo"):
        assert f"fifo.png in {pred}: not a regular file" in err
    assert "no prediction" not in err
    doc = json.loads((tmp_path / "r.json").read_text())
    assert [i["name"] for i in doc["images"]] == ["good"]
    # explicit pairs: the same accounts, as read errors
    res = fastiqa.evaluate([(str(ref / "dir.png"), str(pred / "dir.png")),
                            (str(ref / "loop.png"), str(pred / "loop.png"))], metrics="psnr")
    assert "dir.png: a directory" in res.errors[0] and "loop.png: a symbolic link loop" in res.errors[1]


# --- Pillow's decompression-bomb limit ------------------------------------------------------


def test_decompression_bomb_warning_becomes_our_note(folders, tmp_path, capsys, monkeypatch):
    ref, pred = folders
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 40x40 = 1600: a warning; 50x50: Pillow's error
    monkeypatch.setattr(_imageio, "decoders", lambda: {"cv2": None, "tifffile": None})  # Pillow decodes
    _pair(ref, pred, "warn.png", h=40, w=40)
    _pair(ref, pred, "refused.png", h=50, w=50)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rc, _, err = run_eval_cli(capsys, "--ref", ref, "--pred", pred, "--metrics", "psnr", "--csv",
                                  tmp_path / "r.csv")
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]
    assert rc == 1 and "DecompressionBombWarning" not in err
    notes = [m for m in _messages(err) if "note:" in m]
    assert len(notes) == 2 and all("40x40 pixels is more than Pillow's decompression-bomb limit" in n for n in notes)
    assert "refused.png: 50x50 pixels is more than twice Pillow's decompression-bomb limit" in err
    rows = {r["name"]: r for r in read_csv(tmp_path / "r.csv")}
    assert rows["warn"]["psnr"] != "" and "twice Pillow's" in rows["refused"]["error"]


# --- size mismatch from the headers -------------------------------------------------------


@pytest.mark.parametrize("ext", [".png", ".jpg", ".bmp", ".tif"])
def test_size_mismatch_found_before_decoding(folders, capsys, monkeypatch, ext):
    ref, pred = folders
    _save(ref / f"a{ext}", 30, 30)
    _save(pred / f"a{ext}", 30, 31)
    decoded = []
    monkeypatch.setattr(pipeline, "decode", lambda path, *a: decoded.append(path) or _imageio.decode(path, *a))
    rc, _, err = run_eval_cli(capsys, "--ref", ref, "--pred", pred, "--metrics", "psnr")
    assert rc == 1 and "a: size mismatch, reference 30x30 vs prediction 31x30 (W x H)" in err
    assert decoded == []


def test_image_size_reads_headers():
    assert _imageio.image_size(b"not an image") is None
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + (12000).to_bytes(4, "big") + (9000).to_bytes(4, "big") + bytes(13)
    assert _imageio.image_size(png) == (12000, 9000)  # a header alone: nothing to decode
