"""`fastiqa human analyze`: the votes of a study -> report.json, CSV tables, PNG plots
and summary.txt.

Rating protocols: rater screening (BT.500 kurtosis rule and the P.910 / P.913 ML
subject model, whose inconsistency is compared with the median rater's and with a
random clicker's; raters rejected by any rule are left out of the MOS), MOS (DMOS for
ACR-HR) per stimulus and per method with Student-t 95% CIs, the ML model's
recovered scores. Pairwise: rater screening (each rater's choices against the
Thurstone scores of the other raters, a likelihood ratio against random clicking,
and their agreement with their own repeats; rejected raters are left out of the
scaling), Thurstone Case V (JOD) and Bradley-Terry scores with
bootstrap-over-raters CIs and the significance matrix. Then, for every metric
(from `fastiqa eval --json` files or computed here), the P.1401 agreement with the
subjective scores, and Fisher-z tests between the metrics' correlations.
Training trials are never analysed; gold trials only in the per-rater gold check.
"""

import csv
import json
import math
import os

import numpy as np

from .errors import StudyError
from .records import records as _records
from .stats import require
from .study import REFERENCE, open_study


def _stats():
    require("fastiqa human analyze")
    from .stats import agreement, mos, pairwise, screening

    return agreement, mos, pairwise, screening


def _require_plots():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ImportError('the report plots need matplotlib: pip install "fastiqa[human]" '
                          "(or --no-plots); nothing was written") from None


# --- metrics ---------------------------------------------------------------------------
def load_metric_files(study, specs):
    """{(content, method): {metric: value}} from `fastiqa eval --json` files; a spec is
    PATH (its "pred" folder names the method) or METHOD=PATH."""
    by_dir = {os.path.realpath(m["dir"]): m["name"] for m in study.doc["methods"]}
    table = {}
    for spec in specs:
        method, path = spec.split("=", 1) if "=" in spec and not os.path.exists(spec) else (None, spec)
        try:
            with open(path) as f:
                doc = json.load(f)
            images = doc["images"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StudyError(f"--metrics {spec}: not a `fastiqa eval --json` file ({exc})") from None
        if method is None:
            method = by_dir.get(os.path.realpath(str(doc.get("pred", ""))))
            if method is None:
                raise StudyError(
                    f"--metrics {spec}: its prediction folder {doc.get('pred')!r} is not a method of "
                    f"the study; write METHOD=FILE"
                )
        if method not in study.methods:
            raise StudyError(f"--metrics {spec}: {method!r} is not a method of the study ({', '.join(study.methods)})")
        for row in images:
            vals = {k: float(v) for k, v in row.items() if k not in ("name", "height", "width")}
            table.setdefault((row["name"], method), {}).update(vals)
    return table


def default_metrics():
    """What analyze computes when no eval JSON is given: psnr and ssim, and lpips and dists
    when their ImageNet backbones are on this machine (fastiqa.weights; never downloaded)."""
    from .. import metrics as M
    from .. import weights

    out = ["psnr", "ssim"]
    for m in ("lpips", "dists"):
        try:
            weights.find(M.SR_METRICS[m].backbone)
        except (weights.WeightsNotFoundError, weights.WeightsMismatchError):
            continue
        out.append(m)
    return tuple(out)


def compute_metrics(study, metrics=None):
    """{(content, method): {metric: value}} computed with fastiqa on the study's stimuli (CPU);
    metrics: names of fastiqa.metrics.SR_METRICS, default default_metrics()."""
    from ..evaluation import evaluate

    metrics = default_metrics() if metrics is None else tuple(metrics)
    table = {}
    for method in study.methods:
        pairs = [
            (c, study.stimulus_path(study.stimulus(c, REFERENCE)), study.stimulus_path(study.stimulus(c, method)))
            for c in study.contents
        ]
        res = evaluate(pairs, metrics=list(metrics), device="cpu")
        if res.errors:
            raise StudyError("computing the metrics failed: " + "; ".join(res.errors))
        for r in res.images:
            table[(r["name"], method)] = {m: r[m] for m in metrics}
    return table


# --- rating protocols ---------------------------------------------------------------------
def _matrix(recs, raters, keys, with_reps):
    ri = {r: k for k, r in enumerate(raters)}
    ki = {k: n for n, k in enumerate(keys)}
    reps = 1 + max((r["rep"] for r in recs), default=0)
    m = np.full((len(keys), len(raters), reps), np.nan)
    for r in recs:
        m[ki[(r["content"], r["method"])], ri[r["rater"]], r["rep"]] = r["value"]
    return m if with_reps else m.transpose(0, 2, 1).reshape(len(keys) * reps, len(raters))


def _gold_report(study, recs):
    """Per rater: hidden references rated in the top two levels, repeats within one level."""
    top = max(v for v, _ in study.doc["labels"])
    tests = {}
    for r in recs:
        if r["kind"] == "test":
            tests.setdefault((r["rater"], r["content"], r["method"]), []).append(r["value"])
    out = {}
    for r in recs:
        if r["kind"] != "gold":
            continue
        g = out.setdefault(r["rater"], {"hidden_ref": [0, 0], "repeat": [0, 0]})
        if r["gold"] == "hidden_ref":
            g["hidden_ref"][0] += r["value"] >= top - 1
            g["hidden_ref"][1] += 1
        else:
            seen = tests.get((r["rater"], r["content"], r["method"]))
            if seen:
                g["repeat"][0] += abs(r["value"] - seen[0]) <= 1
                g["repeat"][1] += 1
    return out


def analyze_ratings(study, recs):
    agreement, mos, pairwise, screening = _stats()
    test = [r for r in recs if r["kind"] == "test"]
    if not test:
        raise StudyError("no test votes yet (training and gold trials are not analysed)")
    top = max(v for v, _ in study.doc["labels"])
    scores = mos.differential_scores(test, top) if study.protocol == "acr-hr" else test
    raters = sorted({r["rater"] for r in scores})
    keys = sorted({(r["content"], r["method"]) for r in scores})
    bt = screening.bt500_screen(_matrix(scores, raters, keys, False))
    random_sd = screening.random_spread([v for v, _ in study.doc["labels"]])
    if study.protocol == "acr-hr":  # differential scores: the difference of two random votes
        random_sd *= math.sqrt(2)
    ml = screening.ml_subject_model(_matrix(scores, raters, keys, True), floor=1 / math.sqrt(12),
                                    random_sd=random_sd)  # floor: the quantisation noise of a scale step
    rater_rows = []
    for k, name in enumerate(raters):
        reasons = [bt[k]["reason"]] if bt[k]["rejected"] else []
        if ml["flagged_median"][k]:
            reasons.append(
                f"P.913 ML model: inconsistency {ml['inconsistency'][k]:.2f} > "
                f"{screening.INCONSISTENT_FACTOR:g} x median {float(np.median(ml['inconsistency'])):.2f}"
            )
        elif ml["flagged_random"][k]:
            reasons.append(
                f"P.913 ML model: inconsistency {ml['inconsistency'][k]:.2f} > {screening.RANDOM_FRACTION:g} x "
                f"{random_sd:.2f}, the spread of random votes on this scale"
            )
        rater_rows.append(
            {
                "rater": name,
                "votes": bt[k]["n"],
                "bt500_P": bt[k]["P"],
                "bt500_Q": bt[k]["Q"],
                "bt500_rejected": bt[k]["rejected"],
                "ml_bias": float(ml["bias"][k]),
                "ml_bias_ci": float(ml["bias_ci"][k]),
                "ml_inconsistency": float(ml["inconsistency"][k]),
                "ml_flagged": bool(ml["flagged"][k]),
                "rejected": bool(reasons),
                "reason": "; ".join(reasons),
            }
        )
    rejected = {r["rater"] for r in rater_rows if r["rejected"]}
    kept = [r for r in scores if r["rater"] not in rejected]
    if not kept:  # never leave the report empty: say so and keep everyone
        kept, rejected = scores, set()
    per_stim = mos.group_mos(kept, lambda r: (r["content"], r["method"]))
    per_method = mos.group_mos(kept, lambda r: r["method"])
    ml_by_key = {k: (float(ml["psi"][n]), float(ml["psi_ci"][n])) for n, k in enumerate(keys)}
    stimuli = [
        {"content": c, "method": m, **per_stim[(c, m)], "ml_score": ml_by_key[(c, m)][0], "ml_ci": ml_by_key[(c, m)][1]}
        for (c, m) in keys
        if (c, m) in per_stim
    ]
    methods = [{"method": m, **per_method[m]} for m in study.rated_methods() if m in per_method]
    gold = _gold_report(study, recs)
    for row in rater_rows:
        g = gold.get(row["rater"], {})
        row["gold_hidden_ref"] = "%d/%d" % tuple(g.get("hidden_ref", (0, 0)))
        row["gold_repeat"] = "%d/%d" % tuple(g.get("repeat", (0, 0)))
    return {
        "score": "DMOS" if study.protocol == "acr-hr" else "MOS",
        "stimuli": stimuli,
        "methods": methods,
        "raters": rater_rows,
        "rejected": sorted(rejected),
        "ml_iterations": int(ml["iterations"]),
    }


# --- pairwise -----------------------------------------------------------------------------
def _pc_screen(study, recs, idx, screening):
    """Per rater: choices against the other raters' consensus (test and gold votes), repeats."""
    judged = [r for r in recs if r["kind"] in ("test", "gold")]
    con = screening.consensus_pairs([(r["rater"], idx[r["winner"]], idx[r["loser"]]) for r in judged], len(idx))
    firsts, gold = {}, {}
    for r in recs:
        if r["kind"] == "test":
            firsts.setdefault((r["rater"], r["content"], frozenset((r["a"], r["b"]))), r["winner"])
    for r in recs:
        if r["kind"] == "gold":
            first = firsts.get((r["rater"], r["content"], frozenset((r["a"], r["b"]))))
            if first is not None:
                g = gold.setdefault(r["rater"], [0, 0])
                g[0] += first == r["winner"]
                g[1] += 1
    rows = []
    for k, name in enumerate(con["raters"]):
        flagged = bool(con["flagged"][k])
        rows.append({
            "rater": name,
            "votes": sum(r["rater"] == name and r["kind"] == "test" for r in recs),
            "gold_repeat": "%d/%d" % tuple(gold.get(name, (0, 0))),
            "consensus_agreement": float(con["agreement"][k]),
            "consensus_llr": float(con["llr"][k]),
            "consensus_llr_expected": float(con["expected_llr"][k]),
            "consensus_z": float(con["z"][k]),
            "rejected": flagged,
            "reason": (f"choices follow the other raters' consensus less than random clicking would "
                       f"(log-likelihood ratio {con['llr'][k]:+.1f}, expected {con['expected_llr'][k]:+.1f} "
                       f"for a consistent rater, z = {con['z'][k]:+.1f}; agrees on "
                       f"{100 * con['agreement'][k]:.0f}% of choices)") if flagged else "",
        })
    return rows


def analyze_pairs(study, recs, samples=500, seed=0, alpha=0.01):
    agreement, mos, pairwise, screening = _stats()
    if not any(r["kind"] == "test" for r in recs):
        raise StudyError("no test votes yet (training and gold trials are not analysed)")
    idx = {m: k for k, m in enumerate(study.methods)}
    n = len(study.methods)
    raters = _pc_screen(study, recs, idx, screening)
    rejected = {r["rater"] for r in raters if r["rejected"]}
    test = [r for r in recs if r["kind"] == "test" and r["rater"] not in rejected]
    if not test:  # never leave the report empty: say so and keep everyone
        rejected = set()
        test = [r for r in recs if r["kind"] == "test"]
    comps = [(r["rater"], idx[r["winner"]], idx[r["loser"]]) for r in test]
    out = {"anchor": study.methods[0], "raters": raters, "rejected": sorted(rejected)}
    for model, unit in (("thurstone", "JOD"), ("bt", "log-strength")):
        b = pairwise.bootstrap(comps, n, model, alpha, anchor=0, samples=samples, seed=seed)
        out[model] = {
            "unit": unit,
            "methods": [
                {
                    "method": m,
                    "score": float(b["scores"][k]),
                    "ci_low": float(b["ci_low"][k]),
                    "ci_high": float(b["ci_high"][k]),
                }
                for m, k in idx.items()
            ],
            "p": b["p"].tolist(),
            "significant": b["significant"].tolist(),
        }
    per_content = []
    for c in study.contents:
        cc = pairwise.count_matrix([(idx[r["winner"]], idx[r["loser"]]) for r in test if r["content"] == c], n)
        if cc.sum():
            q = pairwise.fit(cc, "thurstone", alpha, anchor=0)
            per_content += [
                {"content": c, "method": m, "jod": float(q[k]), "comparisons": int(cc[k].sum() + cc[:, k].sum())}
                for m, k in idx.items()
            ]
    out["stimuli"] = per_content
    return out


# --- agreement ------------------------------------------------------------------------------
def metric_agreement(study, subjective, metric_table):
    """P.1401 figures for each metric against MOS/DMOS (rating) or per-image JOD (pc)."""
    agreement, mos, pairwise, screening = _stats()
    if study.protocol == "pc":
        rows = [(s["content"], s["method"], s["jod"], None, None) for s in subjective["stimuli"]]
    else:
        rows = [
            (s["content"], s["method"], s["mean"], s["std"], s["n"])
            for s in subjective["stimuli"]
            if s["method"] != REFERENCE
        ]
    names = sorted({m for v in metric_table.values() for m in v})
    out, fits = [], {}
    for name in names:
        pts = [(metric_table.get((c, m), {}).get(name, math.nan), y, s, k) for c, m, y, s, k in rows]
        x = np.array([p[0] for p in pts], float)
        y = np.array([p[1] for p in pts], float)
        higher = agreement.HIGHER_IS_BETTER.get(name, True)
        std = None if study.protocol == "pc" else np.array([p[2] for p in pts], float)
        cnt = None if study.protocol == "pc" else np.array([p[3] for p in pts], float)
        try:
            a = agreement.agreement(x, y, std, cnt, higher_is_better=higher)
        except ValueError as exc:
            out.append({"metric": name, "error": str(exc)})
            continue
        why = _no_plcc_reason(x, y, a)
        if why:
            a.update(no_plcc=why, plcc_logistic=math.nan, plcc_poly3=math.nan)
        out.append({"metric": name, **a})
        fits[name] = (x, y, a)
    tests = []
    ok = [r for r in out if "error" not in r and math.isfinite(r["plcc_logistic"])]
    for i in range(len(ok)):
        for j in range(i + 1, len(ok)):
            r1, r2 = ok[i], ok[j]
            z, p = agreement.fisher_z(
                min(r1["plcc_logistic"], 0.9999), r1["n"], min(r2["plcc_logistic"], 0.9999), r2["n"]
            )
            tests.append({"metric_1": r1["metric"], "metric_2": r2["metric"], "z": z, "p": p, "significant": p < 0.05})
    return out, tests, fits


def _no_plcc_reason(x, y, a):
    """Why the metric gets no PLCC (None when it gets one): too few distinct values for the
    4-parameter mapping, or a flat best increasing mapping."""
    keep = np.isfinite(x) & np.isfinite(y)
    nx, ny = len(np.unique(x[keep])), len(np.unique(y[keep]))
    if nx < 4 or ny < 4:
        return (f"no PLCC: {nx} distinct metric value(s) and {ny} distinct subjective score(s) among "
                f"{int(keep.sum())} stimuli; the 4-parameter mapping needs at least 4 of each")
    if not math.isfinite(a["plcc_logistic"]):
        return (f"no PLCC: the best increasing mapping is flat (the scores do not rise with the metric; "
                f"SROCC {a['srocc']:+.3f})")
    return None


# --- output ---------------------------------------------------------------------------------
def _csv(path, rows):
    if not rows:
        return
    keys = list(dict.fromkeys(k for r in rows for k in r if not isinstance(r[k], (list, dict))))
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, keys, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


def _clean(obj):
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        return _clean(obj.item())
    return obj


def summary_text(study, report):
    k = report["votes_by_kind"]
    sub = report["subjective"]
    analysed = report["votes_analysed"]
    lines = [
        f"Study {study.doc['title']}: {study.protocol.upper()}, {len(study.methods)} method(s), "
        f"{len(study.contents)} image(s), {report['votes']} vote(s) from {report['raters']} rater(s): "
        f"{analysed} analysed, {k.get('test', 0) - analysed} from rejected raters, "
        f"{k.get('training', 0)} training, {k.get('gold', 0)} gold (rater checks)"
    ]
    if study.protocol == "pc":
        lines.append("Thurstone Case V scores (JOD, 0 = %s; 95%% bootstrap CI over raters):" % sub["anchor"])
        for m in sorted(sub["thurstone"]["methods"], key=lambda m: -m["score"]):
            lines.append(f"  {m['method']:<16} {m['score']:+.2f}  [{m['ci_low']:+.2f}, {m['ci_high']:+.2f}]")
        rej = [r for r in sub["raters"] if r["rejected"]]
        lines.append(f"Rater screening: {len(rej)} of {len(sub['raters'])} rejected (left out of the scaling)")
        for r in rej:
            lines.append(f"  {r['rater']}: {r['reason']}")
    else:
        lines.append(f"{sub['score']} per method (95% CI, Student t):")
        for m in sorted(sub["methods"], key=lambda m: -m["mean"]):
            lines.append(f"  {m['method']:<16} {m['mean']:.2f} +- {m['ci']:.2f}  (n={m['n']})")
        rej = [r for r in sub["raters"] if r["rejected"]]
        lines.append(f"Rater screening: {len(rej)} of {len(sub['raters'])} rejected")
        for r in rej:
            lines.append(f"  {r['rater']}: {r['reason']}")
    for a in report["agreement"]:
        if "error" in a:
            lines.append(f"{a['metric']}: {a['error']}")
        elif "no_plcc" in a:
            lines.append(f"{a['metric']:<8} {a['no_plcc']}  SROCC {a['srocc']:.3f}  KROCC {a['krocc']:.3f}")
        else:
            lines.append(
                f"{a['metric']:<8} PLCC {a['plcc_logistic']:.3f} (logistic) {a['plcc_poly3']:.3f} (poly3)  "
                f"SROCC {a['srocc']:.3f}  KROCC {a['krocc']:.3f}  RMSE {a['rmse_logistic']:.3f}"
                + (f"  outliers {a['outlier_ratio']:.2f}" if "outlier_ratio" in a else "")
            )
    for t in report["fisher_z"]:
        lines.append(
            f"Fisher z {t['metric_1']} vs {t['metric_2']}: z = {t['z']:+.2f}, p = {t['p']:.3f}"
            + (" (significant)" if t["significant"] else "")
        )
    return "\n".join(lines) + "\n"


def analyze(study_dir, out_dir, metrics=None, compute=True, bootstrap=500, seed=0, plots=True):
    """Analyse a study into out_dir; returns the report (also written as report.json).
    Everything it needs (scipy; matplotlib for the plots) is checked before anything is written."""
    _stats()
    if plots:
        _require_plots()
    study = open_study(study_dir)
    recs = _records(study)
    if not recs:
        raise StudyError(f"{study_dir!r} has no votes yet; serve it with `fastiqa human serve` first")
    os.makedirs(out_dir, exist_ok=True)
    if study.protocol == "pc":
        sub = analyze_pairs(study, recs, samples=bootstrap, seed=seed)
    else:
        sub = analyze_ratings(study, recs)
    table = load_metric_files(study, metrics) if metrics else (compute_metrics(study) if compute else {})
    agree, ztests, fits = metric_agreement(study, sub, table)
    report = {
        "study": study.doc["title"],
        "protocol": study.protocol,
        "votes": len(recs),
        "votes_by_kind": {kind: sum(r["kind"] == kind for r in recs) for kind in ("test", "training", "gold")},
        "votes_analysed": sum(r["kind"] == "test" and r["rater"] not in set(sub["rejected"]) for r in recs),
        "raters": len({r["rater"] for r in recs}),
        "subjective": sub,
        "agreement": agree,
        "fisher_z": ztests,
        "metrics": [{"content": c, "method": m, **v} for (c, m), v in sorted(table.items())],
    }
    with open(os.path.join(out_dir, "report.json"), "w") as f:
        json.dump(_clean(report), f, indent=1)
    _csv(os.path.join(out_dir, "stimuli.csv"), sub["stimuli"])
    _csv(os.path.join(out_dir, "raters.csv"), sub["raters"])
    _csv(os.path.join(out_dir, "agreement.csv"), agree)
    if study.protocol == "pc":
        _csv(
            os.path.join(out_dir, "methods.csv"),
            [dict(m, model=k) for k in ("thurstone", "bt") for m in sub[k]["methods"]],
        )
    else:
        _csv(os.path.join(out_dir, "methods.csv"), sub["methods"])
    text = summary_text(study, report)
    with open(os.path.join(out_dir, "summary.txt"), "w") as f:
        f.write(text)
    report["summary"] = text
    if plots:
        from . import plots as _plots

        report["plots"] = _plots.write_all(study, report, fits, recs, out_dir)
    return report
