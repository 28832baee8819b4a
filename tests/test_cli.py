"""The `fastiqa` command: info and demo run and report what they should."""
import subprocess
import sys

import fastiqa


def run(*args):
    return subprocess.run([sys.executable, "-m", "fastiqa", *args], capture_output=True, text=True, timeout=300)


def test_info_reports_versions_backends_and_isa():
    out = run("info")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "torch" in text and "cpu vector ISA" in text
    assert "pixel" in text
    report = fastiqa.info()
    fam = report["families"]["pixel"]
    assert fam["on_cpu_tensors"] in ("cpu", "reference")
    assert fam["on_cuda_tensors"] in ("cuda", "triton", "reference")
    assert report["torch"] == __import__("torch").__version__


def test_demo_runs_and_prints_every_op():
    out = run("demo", "--shape", "1,3,16,16", "--repeat", "1", "--device", "cpu")
    assert out.returncode == 0, out.stderr
    for op in ("l1_loss", "mse_loss", "charbonnier_loss"):
        assert op in out.stdout


def test_bad_subcommand_is_an_error_not_a_traceback():
    out = run("frobnicate")
    assert out.returncode != 0
    assert "Traceback" not in out.stderr
