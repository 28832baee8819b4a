"""Report plots (matplotlib, headless Agg backend): MOS per method with CIs or the
JOD ranking, rater bias / inconsistency, stimulus x rater heat map, metric vs
subjective score with the fitted P.1401 mappings."""
import os

import numpy as np


def _plt():
    try:
        import matplotlib
    except ImportError:
        raise ImportError("the report plots need matplotlib: pip install \"fastiqa[human]\"") from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, out_dir, name):
    path = os.path.join(out_dir, name)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def plot_methods(plt, study, sub, out_dir):
    if study.protocol == "pc":
        ms = sorted(sub["thurstone"]["methods"], key=lambda m: m["score"])
        y = [m["score"] for m in ms]
        err = [[m["score"] - m["ci_low"] for m in ms], [m["ci_high"] - m["score"] for m in ms]]
        fig, ax = plt.subplots(figsize=(6, 0.6 * len(ms) + 1.6))
        ax.errorbar(y, range(len(ms)), xerr=err, fmt="o", color="#33658a", capsize=4)
        ax.set_yticks(range(len(ms)), [m["method"] for m in ms])
        ax.axvline(0, color="grey", lw=0.8)
        ax.set_xlabel(f"quality (JOD, 0 = {sub['anchor']}; 1 JOD = 75% preference)")
        ax.set_title("Thurstone Case V ranking, 95% bootstrap CI over raters")
        return _save(fig, out_dir, "jod_ranking.png")
    ms = sub["methods"]
    fig, ax = plt.subplots(figsize=(1.1 * len(ms) + 2.5, 3.6))
    ax.bar(range(len(ms)), [m["mean"] for m in ms], yerr=[m["ci"] for m in ms], capsize=5, color="#86bbd8",
           edgecolor="#33658a")
    ax.set_xticks(range(len(ms)), [m["method"] for m in ms])
    lo, hi = study.doc["labels"][0][0], study.doc["labels"][-1][0]
    ax.set_ylim(lo, hi + (0.5 if study.protocol != "acr-hr" else 1.5))
    ax.set_ylabel(sub["score"])
    ax.set_title(f"{sub['score']} per method, 95% CI (Student t)")
    return _save(fig, out_dir, "mos_per_method.png")


def plot_raters(plt, sub, out_dir):
    rs = sub["raters"]
    fig, ax = plt.subplots(figsize=(5.2, 4))
    for r in rs:
        c = "#c0392b" if r["rejected"] else "#33658a"
        ax.errorbar(r["ml_bias"], r["ml_inconsistency"], xerr=r["ml_bias_ci"], fmt="o", color=c, capsize=3)
        ax.annotate(r["rater"], (r["ml_bias"], r["ml_inconsistency"]), fontsize=8, xytext=(4, 3),
                    textcoords="offset points")
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_xlabel("bias (P.913 ML model)")
    ax.set_ylabel("inconsistency")
    ax.set_title("Raters (red: rejected)")
    return _save(fig, out_dir, "raters.png")


def plot_heatmap(plt, study, recs, out_dir):
    test = [r for r in recs if r["kind"] == "test"]
    raters = sorted({r["rater"] for r in test})
    keys = sorted({(r["content"], r["method"]) for r in test})
    m = np.full((len(keys), len(raters)), np.nan)
    acc = {}
    for r in test:
        acc.setdefault((keys.index((r["content"], r["method"])), raters.index(r["rater"])), []).append(r["value"])
    for (i, j), v in acc.items():
        m[i, j] = np.mean(v)
    fig, ax = plt.subplots(figsize=(0.45 * len(raters) + 3.5, 0.28 * len(keys) + 1.8))
    im = ax.imshow(m, aspect="auto", cmap="viridis")
    ax.set_xticks(range(len(raters)), raters, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(keys)), [f"{c} / {k}" for c, k in keys], fontsize=8)
    fig.colorbar(im, ax=ax, label="vote (mean of repeats)")
    ax.set_title("Votes: stimulus x rater")
    return _save(fig, out_dir, "heatmap.png")


def plot_metric(plt, name, x, y, a, score, out_dir):
    from .stats.agreement import logistic4, poly3

    keep = np.isfinite(x) & np.isfinite(y)
    sx = x[keep] * (1 if a["higher_is_better"] else -1)
    fig, ax = plt.subplots(figsize=(5.2, 4))
    ax.scatter(sx, y[keep], s=22, color="#33658a", label="stimuli")
    if "no_plcc" not in a:
        grid = np.linspace(sx.min(), sx.max(), 200)
        ax.plot(grid, logistic4(grid, *a["logistic"]), color="#f26419", label="4-parameter logistic")
        ax.plot(grid, poly3(grid, a["poly3"]), color="#2f4858", ls="--", label="monotonic cubic")
        ax.set_title(f"{name}: PLCC {a['plcc_logistic']:.3f}, SROCC {a['srocc']:.3f}")
    else:  # no fitted lines, and the reason instead of "nan"
        ax.set_title(f"{name}: SROCC {a['srocc']:.3f}, no PLCC", fontsize=10)
        ax.text(0.02, 0.02, a["no_plcc"].replace("; ", ";\n"), transform=ax.transAxes, fontsize=7, va="bottom")
    ax.set_xlabel(name if a["higher_is_better"] else f"-{name}")
    ax.set_ylabel(score)
    ax.legend(fontsize=8)
    return _save(fig, out_dir, f"metric_{name}.png")


def write_all(study, report, fits, recs, out_dir):
    plt = _plt()
    sub = report["subjective"]
    paths = [plot_methods(plt, study, sub, out_dir)]
    if study.protocol != "pc":
        paths += [plot_raters(plt, sub, out_dir), plot_heatmap(plt, study, recs, out_dir)]
    score = "JOD (per image)" if study.protocol == "pc" else sub["score"]
    for name, (x, y, a) in fits.items():
        paths.append(plot_metric(plt, name, x, y, a, score, out_dir))
    plt.close("all")
    return paths
