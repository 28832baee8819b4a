"""The `fastiqa` command: info and demo run and report what they should."""
import subprocess
import sys

import fastiqa
from fastiqa.cli import main


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
    # the masked SSIM's own op pair is listed, built wherever the SSIM kernels are (volumes run in ssim_fwd's)
    assert "ssim_masked" in text
    masked = report["families"]["ssim_masked"]
    assert masked["built_cpu"] == report["families"]["ssim"]["built_cpu"]
    assert masked["on_cpu_tensors"] in ("cpu", "reference")


def test_demo_runs_and_prints_every_op(capsys):
    # in this process (the entry point's process is tested above; bad arguments: tests/test_cli_errors.py)
    assert main(["demo", "--shape", "1,3,16,16", "--repeat", "1", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    for op in ("l1_loss", "mse_loss", "charbonnier_loss", "ssim_loss", "l1_ssim_loss", "style_loss", "gram_matrix"):
        assert f"cpu    {op}" in out, out
