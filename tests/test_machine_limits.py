"""The machine-limit measurements of the benchmarks (benchmarks/machine_limits.py): the ISA
mirroring and the roofline arithmetic (no timing is asserted)."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import machine_limits as ml  # noqa: E402


def test_mirror_isa_env_sets_only_what_is_unset():
    env = {"FASTIQA_CPU_ISA": "avx2", "ATEN_CPU_CAPABILITY": "default"}
    assert ml.mirror_isa_env(env) == ["MKL_ENABLE_INSTRUCTIONS", "ONEDNN_MAX_CPU_ISA"]
    assert env["MKL_ENABLE_INSTRUCTIONS"] == "AVX2" and env["ONEDNN_MAX_CPU_ISA"] == "AVX2"
    assert env["ATEN_CPU_CAPABILITY"] == "default"  # a value already set wins
    assert ml.mirror_isa_env({}) == [] and ml.mirror_isa_env({"FASTIQA_CPU_ISA": "nope"}) == []
    env = {"FASTIQA_CPU_ISA": "baseline"}
    ml.mirror_isa_env(env)
    assert env["MKL_ENABLE_INSTRUCTIONS"] == "SSE4_2" and env["ATEN_CPU_CAPABILITY"] == "default"


def test_roofline_arithmetic():
    lim = dict(bw=10e9, fma=5e9)
    # 1 GB and 1 GFMA in 0.5 s: 2 GB/s (0.2 of the bandwidth), 2 GFMA/s (0.4 of the FMA rate);
    # the floor is the FMA time, 0.2 s: 0.4 of the way
    r = ml.roofline(1e9, 1e9, 0.5, lim)
    assert r["gbps"] == pytest.approx(2.0) and r["gfma_s"] == pytest.approx(2.0)
    assert r["bw_frac"] == pytest.approx(0.2) and r["fma_frac"] == pytest.approx(0.4)
    assert r["roof_frac"] == pytest.approx(0.4) and r["bound"] == "fma"
    r = ml.roofline(4e9, 0, 0.5, lim)
    assert r["roof_frac"] == pytest.approx(0.8) and r["bound"] == "bytes" and r["gfma_s"] == 0.0


def test_limits_run_in_smoke_mode(monkeypatch):
    monkeypatch.setattr(ml, "SMOKE", True)
    monkeypatch.setattr(ml, "_CACHE", {})
    lim = ml.limits("cpu")
    assert lim["bw"] > 0 and lim["fma"] > 0 and lim["fma_1t"] > 0 and lim["threads"] >= 1
    assert lim["gemm_isa"].startswith("aten=")
