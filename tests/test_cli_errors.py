"""Every `fastiqa` command turns a bad argument or a device / backend that cannot run
here into one message on stderr and exit status 2, never a traceback; selftest never
passes having run nothing; `fastiqa --version` answers without importing torch."""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from fastiqa import selftest
from fastiqa.cli import main

NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is available here")

# (argv, a phrase of the message); {d} is a folder with one image pair (ref/, pred/)
BAD = [
    ([], "give a command"),
    (["frobnicate"], "invalid choice"),
    (["info", "--bogus"], "unrecognized arguments"),
    (["selftest", "--backend", "cuda", "--quick"], "--backend cuda cannot run here"),
    (["selftest", "--backend", "triton", "--quick", "--device", "cpu"], "--backend triton cannot run here"),
    (["selftest", "--device", "cuda", "--quick"], "no CUDA device"),
    (["selftest", "--device", "cuda:3", "--quick"], "--device cuda:3"),
    (["selftest", "--device", "foo"], "is not a device"),
    (["selftest", "--device", "mps"], "selftest runs on cpu and cuda"),
    (["selftest", "--family", "lpips"], "invalid choice"),
    (["selftest", "--backend", "numpy"], "invalid choice"),
    (["demo", "--device", "cuda"], "no CUDA device"),
    (["demo", "--device", "tpu"], "invalid choice"),
    (["demo", "--repeat", "0"], "--repeat must be >= 1"),
    (["demo", "--repeat", "x"], "invalid int value"),
    (["demo", "--shape", "1,2"], "four positive integers"),
    (["demo", "--shape", "a,b,c,d"], "four positive integers"),
    (["demo", "--shape", "0,3,16,16"], "four positive integers"),
    (["demo", "--shape", "1,3,8,8"], "H and W must be >= 11"),
    (["eval", "--ref", "{d}/nowhere", "--pred", "{d}/pred"], "is not a folder"),
    (["eval", "--ref", "{d}/ref"], "required: --pred"),
    (["eval", "--ref", "{d}/ref", "--pred", "{d}/pred", "--device", "cuda"], "no CUDA device"),
    (["eval", "--ref", "{d}/ref", "--pred", "{d}/pred", "--backend", "cuda"], "backend 'cuda' cannot run"),
    (["eval", "--ref", "{d}/ref", "--pred", "{d}/pred", "--workers", "0"], "workers must be"),
    (["eval", "--ref", "{d}/ref", "--pred", "{d}/pred", "--prefetch", "0"], "prefetch must be"),
    (["eval", "--ref", "{d}/ref", "--pred", "{d}/pred", "--metrics", "vif"], "unknown metric"),
    (["eval", "--ref", "{d}/ref", "--pred", "{d}/pred", "--scale", "-1"], "must be an integer >= 0"),
    (["eval", "--ref", "{d}/ref", "--pred", "{d}/pred", "--scale", "100"], "removes the whole image"),
    (["eval", "--ref", "{d}/ref", "--pred", "{d}/pred", "--csv", "{d}/nowhere/x.csv"], "folder does not exist"),
    (["eval", "--ref", "{d}/ref", "--pred", "{d}/pred", "--gpu-decode"], "gpu_decode"),
    (["human"], "give a command"),
    (["human", "init"], "required"),
    (["human", "init", "{d}/s", "--ref", "{d}/ref", "--protocol", "acr"], "required: --method"),
    (["human", "init", "{d}/s", "--ref", "{d}/nowhere", "--method", "a={d}/pred", "--protocol", "acr"],
     "is not a folder"),
    (["human", "init", "{d}/s", "--ref", "{d}/ref", "--method", "a={d}/nowhere", "--protocol", "acr"],
     "not a folder"),
    (["human", "init", "{d}/s", "--ref", "{d}/ref", "--method", "a={d}/pred", "--protocol", "pc"],
     "at least two --method"),
    (["human", "init", "{d}/s", "--ref", "{d}/ref", "--method", "a={d}/pred", "--protocol", "acr", "--scale", "7"],
     "--scale 7 is not offered"),
    (["human", "init", "{d}/s", "--ref", "{d}/ref", "--method", "a={d}/pred", "--protocol", "acr",
      "--repeats", "0"], "--repeats must be"),
    (["human", "init", "{d}/ref", "--ref", "{d}/ref", "--method", "a={d}/pred", "--protocol", "acr"],
     "already exists"),
    (["human", "init", "{d}/s", "--ref", "{d}/ref", "--method", "apred", "--protocol", "acr"], "NAME=DIR"),
    (["human", "serve", "{d}/s", "--port", "-5"], "--port must be"),
    (["human", "serve", "{d}/s", "--port", "70000"], "--port must be"),
    (["human", "serve", "{d}/s", "--max-raters", "0"], "--max-raters must be"),
    (["human", "analyze", "{d}/s", "--out", "{d}/r", "--bootstrap", "0"], "--bootstrap must be"),
    (["human", "export", "{d}/s", "--format", "xlsx"], "invalid choice"),
    (["human", "example", "{d}"], "not empty"),
]
NEEDS_NO_CUDA = ("cuda", "--gpu-decode")


@pytest.fixture(scope="module")
def pair_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    img = np.random.default_rng(0).integers(0, 256, (24, 24, 3), dtype=np.uint8)
    for sub in ("ref", "pred"):
        os.makedirs(d / sub)
        Image.fromarray(img).save(d / sub / "a.png")
    return d


@pytest.mark.parametrize("argv,phrase", BAD, ids=[" ".join(a) or "(none)" for a, _ in BAD])
def test_bad_input_is_one_message_and_exit_2(argv, phrase, pair_dir, capsys, monkeypatch):
    if any(n in a for a in argv for n in NEEDS_NO_CUDA) and torch.cuda.is_available():
        pytest.skip("a CUDA device is available here: the case is not an error")
    monkeypatch.setenv("TRITON_INTERPRET", "0")  # Triton cannot run on CPU tensors then
    argv = [a.format(d=pair_dir) for a in argv]
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse's usage errors
        rc = exc.code
    err = capsys.readouterr().err
    assert rc == 2, err
    assert phrase in err, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) <= 1 or lines[0].startswith("usage:"), err  # one message (argparse: usage + message)


def test_selftest_that_ran_no_row_does_not_pass(monkeypatch, capsys):
    monkeypatch.setattr(selftest, "run_rows", lambda *a, **k: [])
    rc = main(["selftest", "--quick", "--device", "cpu", "--backend", "reference"])
    assert rc == 2
    assert "no row ran" in capsys.readouterr().err


def test_selftest_help_states_the_exit_status(capsys):
    with pytest.raises(SystemExit):
        main(["selftest", "--help"])
    assert "1 a row fails" in capsys.readouterr().out.replace("\n", " ").replace("  ", " ")


@pytest.mark.slow  # an interpreter of its own; the cases above run in this one
@NO_CUDA
def test_a_real_process_prints_one_line_and_exits_2():
    out = subprocess.run([sys.executable, "-m", "fastiqa", "selftest", "--device", "cuda", "--quick"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().splitlines() == [out.stderr.strip()] and "no CUDA device" in out.stderr
    assert out.stdout == ""


@pytest.mark.parametrize("entry", ["module", "script"])
def test_version_does_not_import_torch(entry):
    script = os.path.join(os.path.dirname(sys.executable), "fastiqa")
    if entry == "script" and not os.path.exists(script):
        pytest.skip(f"no console script at {script} (fastiqa not installed into this interpreter's bin)")
    cmd = [sys.executable, "-X", "importtime"] + (["-m", "fastiqa"] if entry == "module" else [script])
    out = subprocess.run(cmd + ["--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    from fastiqa import __version__

    assert out.stdout.strip() == f"fastiqa {__version__}"
    imported = [line.rsplit("|", 1)[-1].strip() for line in out.stderr.splitlines() if line.startswith("import time")]
    assert "fastiqa" in imported, out.stderr[-2000:]  # the -X importtime listing is there
    assert not [m for m in imported if m.split(".")[0] in ("torch", "numpy")], "--version imported torch / numpy"
