"""`fastiqa human analyze` and `export` on simulated studies with a known truth:
recovered scores correlate with the truth, random clickers are flagged by the
P.913 model, metrics agree with scores built from them; bad input to both commands."""
import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from _human_support import make_folders, make_study, simulate_votes

from fastiqa import cli
from fastiqa.human import StudyError, analyze, export, init_study
from fastiqa.human.analyze import compute_metrics

scipy = pytest.importorskip("scipy", reason="analysis needs scipy (pip install fastiqa[human])")
HAS_MPL = True
try:
    import matplotlib  # noqa: F401  (only whether it is there)
except ImportError:
    HAS_MPL = False

GOOD = {f"r{i}": (b, s) for i, (b, s) in enumerate(zip(np.linspace(-0.5, 0.5, 12), np.linspace(0.3, 0.6, 12)))}


def _cli(capsys, *argv):
    rc = cli.main(["human", *map(str, argv)])
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    return rc, out.out, out.err


@pytest.fixture(scope="module")
def acr_study(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("acr")
    study = make_study(tmp, "acr", repeats=2, gold=2, training=1)
    rng = np.random.default_rng(0)
    truth = {(c, m): float(rng.uniform(1.5, 4.5)) for c in study.contents for m in ["reference", *study.methods]}
    simulate_votes(study, {**GOOD, "clicker1": "random", "clicker2": "random"}, truth, rng)
    report = analyze(study.folder, str(tmp / "report"), compute=False, plots=HAS_MPL)
    return study, truth, report, tmp


def test_synthetic_study_recovers_the_truth(acr_study):
    study, truth, report, _ = acr_study
    stim = report["subjective"]["stimuli"]
    t = np.array([truth[(s["content"], s["method"])] for s in stim])
    assert np.corrcoef(t, [s["ml_score"] for s in stim])[0, 1] > 0.95
    assert np.corrcoef(t, [s["mean"] for s in stim])[0, 1] > 0.95


def test_random_clickers_are_flagged_by_the_ml_model(acr_study):
    _, _, report, _ = acr_study
    raters = {r["rater"]: r for r in report["subjective"]["raters"]}
    assert raters["clicker1"]["ml_flagged"] and raters["clicker2"]["ml_flagged"]
    assert not any(raters[n]["ml_flagged"] or raters[n]["rejected"] for n in GOOD)
    assert report["subjective"]["rejected"] == ["clicker1", "clicker2"]
    assert "P.913 ML model" in raters["clicker1"]["reason"]
    biases = [raters[n]["ml_bias"] for n in sorted(GOOD, key=lambda n: int(n[1:]))]
    assert scipy.stats.spearmanr(biases, np.linspace(-0.5, 0.5, 12))[0] > 0.8  # known biases recovered in order


def test_report_files(acr_study):
    study, _, report, tmp = acr_study
    out = tmp / "report"
    doc = json.loads((out / "report.json").read_text())
    assert doc["protocol"] == "acr" and doc["raters"] == 14
    for name in ("stimuli.csv", "raters.csv", "methods.csv", "summary.txt"):
        assert (out / name).stat().st_size > 0
    assert "Rater screening: 2 of 14 rejected" in (out / "summary.txt").read_text()
    with open(out / "methods.csv") as f:
        rows = list(csv.DictReader(f))
    assert {r["method"] for r in rows} == set(study.methods)
    if HAS_MPL:
        for name in ("mos_per_method.png", "raters.png", "heatmap.png"):
            assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_gold_and_training_are_not_analysed(acr_study):
    _, _, report, _ = acr_study
    n = sum(m["n"] for m in report["subjective"]["methods"])
    assert n == 12 * 9 * 2  # kept raters x stimuli x repeats: no training or gold vote counted
    r0 = next(r for r in report["subjective"]["raters"] if r["rater"] == "r0")
    assert r0["gold_hidden_ref"].endswith("/1") and r0["gold_repeat"].endswith("/1")


@pytest.mark.parametrize("protocol", ["acr-hr", "dcr"])
def test_metric_agreement_on_scores_made_from_psnr(tmp_path, protocol):
    study = make_study(tmp_path, protocol, repeats=1,
                       methods={f"n{k}": ("noise", s) for k, s in enumerate((4.0, 10.0, 20.0))} |
                               {f"b{k}": ("blur", s) for k, s in enumerate((0.6, 1.2, 2.4))})
    table = compute_metrics(study)
    psnr = {k: v["psnr"] for k, v in table.items()}
    lo, hi = min(psnr.values()), max(psnr.values())
    truth = {k: 1.0 + 3.5 * (p - lo) / (hi - lo) for k, p in psnr.items()}
    truth.update({(c, "reference"): 4.8 for c in study.contents})
    rng = np.random.default_rng(1)
    simulate_votes(study, {f"r{i}": (0.0, 0.3) for i in range(10)}, truth, rng)
    report = analyze(study.folder, str(tmp_path / "report"), plots=HAS_MPL)
    a = {r["metric"]: r for r in report["agreement"]}
    assert a["psnr"]["plcc_logistic"] > 0.9 and a["psnr"]["srocc"] > 0.85 and a["psnr"]["n"] == 18
    assert report["fisher_z"][0]["metric_1"] == "psnr" and 0 <= report["fisher_z"][0]["p"] <= 1
    if HAS_MPL:
        assert (tmp_path / "report" / "metric_psnr.png").exists()


def test_pairwise_study_recovers_the_order(tmp_path):
    study = make_study(tmp_path, "pc", gold=1)
    truth = {(c, m): q for c in study.contents for m, q in zip(study.methods, (1.5, 0.5, -1.0))}
    simulate_votes(study, {f"r{i}": (0.0, 1.0483) for i in range(30)}, truth, np.random.default_rng(2))
    report = analyze(study.folder, str(tmp_path / "report"), bootstrap=40, compute=False, plots=HAS_MPL)
    jod = {m["method"]: m["score"] for m in report["subjective"]["thurstone"]["methods"]}
    bt = {m["method"]: m["score"] for m in report["subjective"]["bt"]["methods"]}
    assert jod["blur"] == 0 and jod["noise"] < 0 and jod["jpeg"] < jod["noise"]
    assert -3.5 < jod["jpeg"] < -1.5  # truth: -2.5 JOD
    assert bt["jpeg"] < bt["noise"] < bt["blur"]
    assert report["subjective"]["thurstone"]["significant"][0][2]
    if HAS_MPL:
        assert (tmp_path / "report" / "jod_ranking.png").exists()


def test_metrics_from_eval_json_match_the_computed_ones(tmp_path, capsys):
    ref, dirs = make_folders(str(tmp_path / "src"))
    study = init_study(str(tmp_path / "study"), ref, dirs, "acr")
    simulate_votes(study, {f"r{i}": (0.0, 0.5) for i in range(4)},
                   {(c, m): 3.0 + (hash(m) % 3) * 0.5 for c in study.contents for m in study.methods},
                   np.random.default_rng(3))
    files = []
    for name, d in dirs.items():
        path = tmp_path / f"{name}.json"
        assert cli.main(["eval", "--no-progress", "--quiet", "--ref", ref, "--pred", d, "--json", str(path)]) in (0,)
        files.append(str(path))
    files[0] = f"blur={files[0]}"
    capsys.readouterr()
    rc, out, err = _cli(capsys, "analyze", study.folder, "--out", tmp_path / "rep", "--metrics", *files, "--no-plots")
    assert rc == 0, err
    given = json.loads((tmp_path / "rep" / "report.json").read_text())["metrics"]
    computed = compute_metrics(study)
    for row in given:
        assert row["psnr"] == pytest.approx(computed[(row["content"], row["method"])]["psnr"], rel=1e-9)
    assert "psnr" in out and "report written to" in out


# --- export -------------------------------------------------------------------------------
def test_export_csv_and_sureal(acr_study, tmp_path):
    study, _, report, _ = acr_study
    export(study.folder, "csv", str(tmp_path / "v.csv"))
    with open(tmp_path / "v.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == report["votes"] and {"rater", "kind", "value", "viewport_w", "dpr"} <= set(rows[0])
    export(study.folder, "sureal", str(tmp_path / "ds.py"))
    ns = {}
    exec((tmp_path / "ds.py").read_text(), ns)
    assert len(ns["ref_videos"]) == 3 and len(ns["dis_videos"]) == 9
    assert all(len(d["os"]) == 14 and len(d["os"]["r0"]) == 2 for d in ns["dis_videos"])


def test_sureal_reads_the_export_and_agrees(acr_study, tmp_path):
    pytest.importorskip("sureal", reason="sureal is not installed (pip install sureal)")
    import contextlib
    import importlib.util
    import io

    from sureal.dataset_reader import RawDatasetReader
    from sureal.subjective_model import MosModel

    study, _, report, _ = acr_study
    export(study.folder, "sureal", str(tmp_path / "ds.py"))
    spec = importlib.util.spec_from_file_location("ds", tmp_path / "ds.py")
    ds = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ds)
    with contextlib.redirect_stdout(io.StringIO()):
        res = MosModel(RawDatasetReader(ds)).run_modeling()
    # all raters (ours drops the two rejected): compare with a plain mean over everyone's test votes
    votes = {}
    for d in ds.dis_videos:
        votes[d["method"], d["content_id"]] = np.mean([np.mean(v) for v in d["os"].values()])
    np.testing.assert_allclose(res["quality_scores"], [votes[d["method"], d["content_id"]] for d in ds.dis_videos],
                               atol=1e-9)


def test_export_pwcmp(tmp_path):
    study = make_study(tmp_path, "pc")
    simulate_votes(study, {"a": (0, 1.0), "b": (0, 1.0)}, {(c, m): 0.0 for c in study.contents for m in study.methods},
                   np.random.default_rng(4))
    export(study.folder, "pwcmp", str(tmp_path / "p.csv"))
    with open(tmp_path / "p.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["observer", "scene", "condition_A", "condition_B", "is_A_selected"]
    assert len(rows) == 2 * 9 and {r["is_A_selected"] for r in rows} <= {"0", "1"}


# --- bad input ------------------------------------------------------------------------------
def test_analyze_bad_input(tmp_path, capsys):
    study = make_study(tmp_path, "acr")
    rc, _, err = _cli(capsys, "analyze", study.folder, "--out", tmp_path / "r")
    assert rc == 1 and "has no votes yet" in err
    rc, _, err = _cli(capsys, "analyze", tmp_path / "src", "--out", tmp_path / "r")
    assert rc == 1 and "is not a study" in err
    simulate_votes(study, {"a": (0, 0.5), "b": (0, 0.5)}, {(c, m): 3.0 for c in study.contents for m in study.methods},
                   np.random.default_rng(5))
    (tmp_path / "bad.json").write_text("{}")
    rc, _, err = _cli(capsys, "analyze", study.folder, "--out", tmp_path / "r", "--metrics", tmp_path / "bad.json")
    assert rc == 1 and "not a `fastiqa eval --json` file" in err
    rc, _, err = _cli(capsys, "analyze", study.folder, "--out", tmp_path / "r", "--bootstrap", "0")
    assert rc == 2 and "--bootstrap must be >= 1" in err


def test_export_bad_input(tmp_path, capsys):
    study = make_study(tmp_path, "acr")
    rc, _, err = _cli(capsys, "export", study.folder, "--format", "pwcmp")
    assert rc == 1 and "pwcmp is for pairwise (pc) studies" in err
    rc, _, err = _cli(capsys, "export", study.folder, "--format", "csv", "--out", tmp_path / "no" / "x.csv")
    assert rc == 1 and "its folder does not exist" in err
    with pytest.raises(StudyError, match="unknown export format"):
        export(study.folder, "xlsx", str(tmp_path / "x"))
    rc, out, _ = _cli(capsys, "export", study.folder, "--format", "csv")
    assert rc == 0 and out.strip().endswith("votes.csv")


def test_analyze_without_scipy_names_the_extra(tmp_path, capsys, monkeypatch):
    study = make_study(tmp_path, "acr")
    monkeypatch.setitem(sys.modules, "scipy", None)
    rc, _, err = _cli(capsys, "analyze", study.folder, "--out", tmp_path / "r")
    assert rc == 1 and 'pip install "fastiqa[human]"' in err


def test_import_fastiqa_does_not_import_the_analysis_deps():
    code = ("import sys, fastiqa, fastiqa.cli, fastiqa.human, fastiqa.human.server; fastiqa.cli.build_parser(); "
            "print([m for m in ('scipy', 'matplotlib') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=os.path.dirname(__file__))
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr


# --- screening of pairwise and small studies, the summary, PLCC reasons, extras -----------------------
def test_pairwise_screening_flags_random_clickers_and_no_careful_rater(tmp_path):
    study = make_study(tmp_path, "pc", repeats=2, gold=2, training=1)
    truth = {(c, m): q for c in study.contents for m, q in zip(study.methods, (1.5, 0.5, -1.0))}
    careful = {f"r{i}": (0.0, 1.0) for i in range(12)}
    simulate_votes(study, {**careful, "clicker1": "random", "clicker2": "random"}, truth, np.random.default_rng(6))
    report = analyze(study.folder, str(tmp_path / "report"), bootstrap=40, compute=False, plots=False)
    sub = report["subjective"]
    raters = {r["rater"]: r for r in sub["raters"]}
    assert sub["rejected"] == ["clicker1", "clicker2"]
    assert "less than random clicking would" in raters["clicker1"]["reason"]
    assert all(raters[n]["consensus_agreement"] > 0.6 and raters[n]["consensus_llr"] > 0 for n in careful)
    assert report["votes_analysed"] == 12 * 18  # the clickers' votes are left out of the scaling
    summary = (tmp_path / "report" / "summary.txt").read_text()
    assert "Rater screening: 2 of 14 rejected (left out of the scaling)" in summary


def test_pairwise_screening_flags_nobody_when_the_conditions_look_alike(tmp_path):
    study = make_study(tmp_path, "pc", repeats=2, gold=2)
    truth = {(c, m): 0.0 for c in study.contents for m in study.methods}
    simulate_votes(study, {f"r{i}": (0.0, 1.0) for i in range(8)}, truth, np.random.default_rng(7))
    report = analyze(study.folder, str(tmp_path / "report"), bootstrap=20, compute=False, plots=False)
    assert report["subjective"]["rejected"] == []  # their choices are coin flips too: nothing to tell


@pytest.mark.parametrize("seed", range(3))
def test_a_random_clicker_among_three_dcr_raters_is_flagged(tmp_path, seed):
    study = make_study(tmp_path, "dcr")
    rng = np.random.default_rng(10 + seed)
    truth = {(c, m): float(rng.uniform(1.5, 4.5)) for c in study.contents for m in ["reference", *study.methods]}
    simulate_votes(study, {"ann": (0.0, 0.4), "bob": (0.3, 0.5), "clicker": "random"}, truth, rng)
    report = analyze(study.folder, str(tmp_path / "report"), compute=False, plots=False)
    raters = {r["rater"]: r for r in report["subjective"]["raters"]}
    assert report["subjective"]["rejected"] == ["clicker"], raters
    assert "spread of random votes" in raters["clicker"]["reason"] or "median" in raters["clicker"]["reason"]


def test_summary_separates_analysed_training_and_gold_votes(acr_study):
    _, _, report, tmp = acr_study
    # 14 raters x (18 test + 2 gold + 1 training); the two clickers' 36 test votes are not analysed
    assert report["votes"] == 14 * 21 and report["votes_by_kind"] == {"test": 14 * 18, "training": 14, "gold": 28}
    first = (tmp / "report" / "summary.txt").read_text().splitlines()[0]
    assert first.endswith("294 vote(s) from 14 rater(s): 216 analysed, 36 from rejected raters, 14 training, "
                          "28 gold (rater checks)")


def test_a_metric_without_plcc_says_why(acr_study):
    from fastiqa.human.analyze import metric_agreement, summary_text

    study, _, report, _ = acr_study
    keys = [(s["content"], s["method"]) for s in report["subjective"]["stimuli"]]
    mos = {k: s["mean"] for k, s in zip(keys, report["subjective"]["stimuli"])}
    table = {k: {"two_levels": float(k[1] == "blur"), "backwards": -mos[k]} for k in keys}
    rows, _, _ = metric_agreement(study, report["subjective"], table)
    rows = {r["metric"]: r for r in rows}
    assert rows["two_levels"]["no_plcc"].startswith("no PLCC: 2 distinct metric value(s)")
    assert "flat" in rows["backwards"]["no_plcc"] and rows["backwards"]["srocc"] < -0.9
    text = summary_text(study, dict(report, agreement=list(rows.values()), fisher_z=[]))
    assert "PLCC nan" not in text and "two_levels no PLCC: 2 distinct" in text


def test_analyze_checks_matplotlib_before_writing(tmp_path, capsys, monkeypatch):
    study = make_study(tmp_path, "acr")
    simulate_votes(study, {"a": (0, 0.5), "b": (0, 0.5)}, {(c, m): 3.0 for c in study.contents for m in study.methods},
                   np.random.default_rng(8))
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    rc, _, err = _cli(capsys, "analyze", study.folder, "--out", tmp_path / "r")
    assert rc == 1 and "matplotlib" in err and "--no-plots" in err
    assert not (tmp_path / "r").exists()  # nothing half-written
    rc, _, err = _cli(capsys, "analyze", study.folder, "--out", tmp_path / "r", "--no-plots", "--no-metrics")
    assert rc == 0 and (tmp_path / "r" / "summary.txt").exists()
