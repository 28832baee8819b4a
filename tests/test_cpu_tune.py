"""Per-family CPU ISA levels (fastiqa.cpu_isa.select_family) and their measured choice
(fastiqa/cpu_tune.py, `fastiqa cpu-tune`): which level runs, which one wins over which,
the tune file's life (saved, applied, ignored), and `fastiqa info`'s reasons."""
import json
import os
import subprocess
import sys

import pytest
import torch

import fastiqa.functional as F
from fastiqa import _ext, cpu_isa, cpu_tune
from fastiqa.info import collect, format_report

pytestmark = pytest.mark.skipif(not _ext.LOADED, reason="compiled kernels not built")

LEVELS = cpu_isa.available()
TWO = pytest.mark.skipif(len(LEVELS) < 2, reason="this CPU supports one ISA level only")


@pytest.fixture(autouse=True)
def _clean_levels(monkeypatch):
    """Every test starts and ends with no forced level and no family level."""
    monkeypatch.delenv("FASTIQA_CPU_ISA", raising=False)
    before = cpu_isa.select("auto")
    for f in cpu_isa.families():
        cpu_isa.select_family(f, "auto")
    yield
    for f in cpu_isa.families():
        cpu_isa.select_family(f, "auto")
    cpu_isa.select(before if before else "auto")


def _ssim_and_l1(dtype=torch.float32):
    g = torch.Generator().manual_seed(3)
    x = torch.rand(2, 3, 37, 41, generator=g, dtype=dtype)
    y = torch.rand(2, 3, 37, 41, generator=g, dtype=dtype)
    x.requires_grad_(True)
    s = F.ssim_loss(x, y, backend="cpu")
    (gs,) = torch.autograd.grad(s, x)
    c = F.charbonnier_loss(x, y, backend="cpu")
    (gc,) = torch.autograd.grad(c, x)
    return s.detach(), gs, c.detach(), gc


def _same(a, b):
    return all(torch.equal(u, v) for u, v in zip(a, b))


def test_families_are_the_kernel_tables():
    assert {"pixel", "psnr", "ssim", "gram"} <= set(cpu_isa.families())
    for f in cpu_isa.families():
        assert cpu_isa.family_level(f) == LEVELS[0]


@TWO
def test_family_level_runs_only_that_family():
    """ssim on the second level and charbonnier on the first: bitwise the results of the
    whole process forced to each level (the levels' sums differ, so a mix-up shows)."""
    hi, lo = LEVELS[0], LEVELS[-1]
    with cpu_isa.using(hi):
        s_hi, gs_hi, c_hi, gc_hi = _ssim_and_l1()
    with cpu_isa.using(lo):
        s_lo, gs_lo, c_lo, gc_lo = _ssim_and_l1()
    assert not torch.equal(gs_hi, gs_lo), "identical SSIM gradients: the test cannot tell the levels apart"
    assert cpu_isa.select_family("ssim", lo) == "auto"
    assert cpu_isa.family_level("ssim") == lo and cpu_isa.family_level("pixel") == hi
    s, gs, c, gc = _ssim_and_l1()
    assert _same((s, gs), (s_lo, gs_lo)) and _same((c, gc), (c_hi, gc_hi))
    assert cpu_isa.select_family("ssim", "auto") == lo
    assert _same(_ssim_and_l1()[:2], (s_hi, gs_hi))


@TWO
def test_forced_process_level_wins_over_family_level():
    hi, lo = LEVELS[0], LEVELS[-1]
    cpu_isa.select_family("ssim", lo)
    assert not cpu_isa.forced()
    with cpu_isa.using(hi):
        assert cpu_isa.forced() and cpu_isa.family_level("ssim") == hi
        assert "forced in this process" in cpu_tune.reason("ssim")
    assert not cpu_isa.forced(), "using() must give back 'auto', not force the level it found"
    assert cpu_isa.family_level("ssim") == lo


def test_bad_family_and_level_name_the_argument():
    with pytest.raises(ValueError, match="family='nope'"):
        cpu_isa.select_family("nope", "auto")
    with pytest.raises(ValueError, match="family='nope'"):
        cpu_isa.family_level("nope")
    with pytest.raises(ValueError, match="level='sse9'"):
        cpu_isa.select_family("ssim", "sse9")
    with pytest.raises(RuntimeError, match="family=nope"):  # the op itself checks too
        torch.ops.fastiqa_C.cpu_isa_select_family("nope", "auto")


@TWO
@pytest.mark.parametrize("factor,expect_switch", [(1.5, True), (1.02, False)])
def test_tune_keeps_widest_unless_clearly_beaten(tmp_path, monkeypatch, factor, expect_switch):
    """The widest level is slower by `factor` on every family: replaced only beyond MARGIN,
    and then by the widest of the (equally) fastest levels."""
    monkeypatch.setenv("FASTIQA_CPU_TUNE_FILE", str(tmp_path / "t.json"))
    hi, lo = LEVELS[0], LEVELS[1]

    def timer(call, repeats):
        call()
        return 1e-3 * (factor if torch.ops.fastiqa_C.cpu_isa_family(family[0]) == hi else 1.0)

    family = [None]
    real = cpu_tune._probes

    def probes(scale):
        out = {}
        for name, make in real(scale).items():
            def factory(name=name, make=make):
                family[0] = name
                return make()
            out[name] = factory
        return out

    monkeypatch.setattr(cpu_tune, "_probes", probes)
    entry = cpu_tune.tune(rounds=1, repeats=1, scale=0.1, timer=timer)
    for name in ("pixel", "psnr", "ssim", "gram"):
        got = entry["families"][name]
        assert got["level"] == (lo if expect_switch else hi), got
        assert cpu_isa.family_level(name) == got["level"]
        assert set(got["ms"]) == set(LEVELS)
    saved = json.loads((tmp_path / "t.json").read_text())
    assert saved["machines"][cpu_tune.machine_key()]["families"]["ssim"]["level"] == entry["families"]["ssim"]["level"]
    assert "cpu-tune" in cpu_tune.reason("ssim")


def _write(path, families, version=None, key=None):
    data = {"format": 1, "machines": {key or cpu_tune.machine_key(): {
        "fastiqa": version or cpu_tune.__version__, "date": "2026-12-07 00:00 UTC",
        "families": {f: {"level": lv, "ms": {}, "reason": "test"} for f, lv in families.items()}}}}
    path.write_text(json.dumps(data))


@TWO
def test_apply_reads_this_machines_entry_only(tmp_path, monkeypatch):
    lo = LEVELS[-1]
    f = tmp_path / "t.json"
    monkeypatch.setenv("FASTIQA_CPU_TUNE_FILE", str(f))
    _write(f, {"ssim": lo}, key="another CPU | avx2,baseline")
    cpu_tune.apply()
    assert cpu_isa.family_level("ssim") == LEVELS[0]
    _write(f, {"ssim": lo}, version="0.0.1")  # measured by another fastiqa: not applied, and said why
    cpu_tune.apply()
    assert cpu_isa.family_level("ssim") == LEVELS[0] and "fastiqa 0.0.1" in cpu_tune.reason("ssim")
    _write(f, {"ssim": lo, "gone_family": lo})
    cpu_tune.apply()
    assert cpu_isa.family_level("ssim") == lo and cpu_isa.family_level("gram") == LEVELS[0]
    report = collect()
    assert report["cpu_isa_families"]["ssim"] == {"level": lo, "why": cpu_tune.reason("ssim")}
    assert f"ssim        {lo}" in format_report(report)  # family names padded to 11 (ssim_masked)


def test_apply_warns_once_on_a_bad_file_and_changes_nothing(tmp_path, monkeypatch):
    f = tmp_path / "t.json"
    f.write_text("{ not json")
    monkeypatch.setenv("FASTIQA_CPU_TUNE_FILE", str(f))
    with pytest.warns(RuntimeWarning, match="ignoring the CPU tune file"):
        cpu_tune.apply()
    assert all(cpu_isa.family_level(fam) == LEVELS[0] for fam in cpu_isa.families())


def test_tune_refuses_when_the_variable_forces_a_level(monkeypatch):
    monkeypatch.setenv("FASTIQA_CPU_ISA", LEVELS[-1])
    with pytest.raises(RuntimeError, match="FASTIQA_CPU_ISA forces"):
        cpu_tune.tune(save=False)
    with pytest.raises(ValueError, match="rounds=0"):
        monkeypatch.delenv("FASTIQA_CPU_ISA")
        cpu_tune.tune(rounds=0, save=False)


def test_tune_file_location(monkeypatch, tmp_path):
    monkeypatch.setenv("FASTIQA_CPU_TUNE_FILE", "none")
    assert cpu_tune.tune_file() is None
    monkeypatch.delenv("FASTIQA_CPU_TUNE_FILE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cpu_tune.tune_file() == os.path.join(str(tmp_path), "fastiqa", "cpu_tune.json")


@TWO
def test_applied_at_import_and_overridden_by_the_variable(tmp_path):
    """A new interpreter applies the file at import; FASTIQA_CPU_ISA beats it."""
    f = tmp_path / "t.json"
    _write(f, {"ssim": LEVELS[-1]})
    code = "import fastiqa; from fastiqa import cpu_isa; print(cpu_isa.family_level('ssim'))"
    env = dict(os.environ, FASTIQA_CPU_TUNE_FILE=str(f))
    env.pop("FASTIQA_CPU_ISA", None)
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.split()[-1] == LEVELS[-1], r.stderr
    env["FASTIQA_CPU_ISA"] = LEVELS[0]
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.split()[-1] == LEVELS[0], r.stderr


def test_cli_measures_and_reports_without_saving(tmp_path):
    env = dict(os.environ, FASTIQA_CPU_TUNE_FILE=str(tmp_path / "t.json"))
    env.pop("FASTIQA_CPU_ISA", None)
    r = subprocess.run([sys.executable, "-m", "fastiqa", "cpu-tune", "--rounds", "1", "--no-save"], env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    rows = {line.split()[0]: line.split()[1] for line in r.stdout.splitlines()[1:-1]}
    assert set(rows) >= {"pixel", "psnr", "ssim", "gram"} and set(rows.values()) <= set(LEVELS)
    assert "not saved" in r.stdout and not (tmp_path / "t.json").exists()
    env["FASTIQA_CPU_ISA"] = LEVELS[-1]
    r = subprocess.run([sys.executable, "-m", "fastiqa", "cpu-tune"], env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 2 and "FASTIQA_CPU_ISA" in r.stderr
