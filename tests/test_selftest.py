"""`fastiqa selftest` on this machine: every family on reference / cpu / triton
(interpreted) passes against the float64 oracle, and a wrong kernel makes it fail."""
import json

import pytest
import torch

import fastiqa.selftest as selftest
from fastiqa.cli import main as cli_main


@pytest.mark.parametrize("family", ["pixel", "ssim", "psnr", "gram"])
def test_selftest_family_passes(family, capsys):
    rc = cli_main(["selftest", "--quick", "--json", "--device", "cpu", "--family", family,
                   "--backend", "reference", "--backend", "cpu"])
    report = json.loads(capsys.readouterr().out)
    rows = report["rows"]
    assert rc == 0, [r for r in rows if r["verdict"] != "PASS"]
    assert {r["backend"] for r in rows} >= {"reference"}
    assert {r["dtype"] for r in rows} == {"float32", "float64", "float16", "bfloat16"}


def test_selftest_triton_interpreted_rows(capsys):
    pytest.importorskip("triton", reason="triton not installed")
    rc = selftest.main(["--quick", "--device", "cpu", "--backend", "triton", "--family", "pixel"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "triton" in out and "PASS" in out


def test_selftest_reports_a_mismatch(monkeypatch, capsys):
    # a kernel off by 1e-3 relative must be a FAIL row and exit code 1
    family, name, op, ref = selftest.OPS[0]
    wrong = (family, name, lambda x, y, b: op(x, y, b) * 1.001, ref)
    monkeypatch.setattr(selftest, "OPS", (wrong,))
    rc = selftest.main(["--quick", "--device", "cpu", "--backend", "reference"])
    out = capsys.readouterr().out
    assert rc == 1
    assert "FAIL" in out and "selftest:" in out.splitlines()[-1]


def test_float64_rule_rejects_a_real_error():
    o = torch.ones(3, dtype=torch.float64)
    selftest.check(o + 1e-15, o, o)
    with pytest.raises(AssertionError):
        selftest.check(o + 1e-12, o, o)
