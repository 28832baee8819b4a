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


def _rows_csv(path):
    import csv

    import plot_roofline as pr
    rows = [dict(case="ssim", impl="fastiqa", isa="avx2", median_s=0.01, floor_bytes=1e7, fmas=2e8, gbps=1.0,
                 gfma_s=20.0, bw_frac=0.05, fma_frac=0.4, roof_frac=0.4, bound="fma", bw_limit_gbps=20.0,
                 fma_limit_gfma_s=50.0, device="cpu"),
            dict(case="ssim", impl="eager", isa="avx2", median_s=0.1, floor_bytes=1e7, fmas=2e8, gbps=0.1,
                 gfma_s=2.0, bw_frac=0.005, fma_frac=0.04, roof_frac=0.04, bound="fma", bw_limit_gbps=20.0,
                 fma_limit_gfma_s=50.0, device="cpu"),
            dict(case="l1", impl="fastiqa", isa="avx2", median_s=0.001, floor_bytes=1e7, fmas=1e6, gbps=10.0,
                 gfma_s=1.0, bw_frac=0.5, fma_frac=0.02, roof_frac=0.5, bound="bytes", bw_limit_gbps=20.0,
                 fma_limit_gfma_s=50.0, device="cpu", min_s=0.0008, roof_frac_best=0.625)]
    rows[0].update(min_s="", roof_frac_best="")  # a row file from before these fields: the median stands in
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return pr


def test_roofline_table_and_plot(tmp_path):
    """benchmarks/plot_roofline.py: only fastiqa's rows, one table line each, the floor ratio."""
    pr = _rows_csv(tmp_path / "rows.csv")
    rows = pr.load([str(tmp_path / "rows.csv")])
    assert [r["case"] for r in rows] == ["l1", "ssim"]
    text = pr.table(rows)
    assert "| ssim | avx2 | 10 ms |" in text and "0.40 (2.5x above)" in text and "0.50 (2.0x above)" in text
    assert "| 0.8 ms | 0.62 (1.6x) |" in text and "| 10 ms | 0.40 (2.5x) |" in text  # fastest round, floor / it
    assert "triad 20.0 GB/s, GEMM 50.0 GFMA/s" in text
    assert "| 20 GB/s | 0.50 |" in text  # each case's bandwidth limit (rows without bw_dram_gbps: the same)
    pytest.importorskip("matplotlib", reason="matplotlib (the bench extra) draws the plot")
    out = pr.plot(rows, str(tmp_path / "roof.png"))
    assert (tmp_path / "roof.png").stat().st_size > 1000 and out.endswith("roof.png")
