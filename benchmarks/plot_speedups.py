"""Plots fastiqa's CPU speed-ups per ISA variant from the machine-readable benchmark
rows (benchmarks/harness.py) as a PNG (needs matplotlib: pip install matplotlib).

    python benchmarks/plot_speedups.py benchmarks/results/cpu_bar_cases.csv -o benchmarks/cpu_speedups.png

(the rows of benchmarks/RESULTS.md's per-variant table; a run of your own writes its
rows as bench-<isa>-<time>.json and .csv into benchmarks/results/). One panel per baseline
implementation (eager reference, torch.compile of it, peers when measured); in each,
one bar per ISA variant for every case.
"""
import argparse
import csv
import json
import sys


def _rows(path):
    if path.endswith(".csv"):
        with open(path, newline="") as f:
            return [dict(r, median_s=float(r["median_s"])) for r in csv.DictReader(f)]
    with open(path) as f:
        return json.load(f)


def load(paths):
    """{(isa, cpu_model): {(case, impl): speed-up of fastiqa over impl}}"""
    out = {}
    for path in paths:
        rows = _rows(path)
        med = {(r["isa"], r["case"], r["impl"]): r["median_s"] for r in rows if r["device"] == "cpu"}
        for r in rows:
            own = r["impl"] in ("fastiqa", "kernel")  # kernel: fastiqa's op alone (benchmarks/harness.py)
            if r["device"] != "cpu" or own or (r["isa"], r["case"], "fastiqa") not in med:
                continue
            key = (r["isa"], r["cpu_model"])
            out.setdefault(key, {})[(r["case"], r["impl"])] = r["median_s"] / med[(r["isa"], r["case"], "fastiqa")]
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("rows", nargs="+", help="row files (.json or .csv) written by the benchmarks")
    ap.add_argument("-o", "--out", default="benchmarks/cpu_speedups.png")
    ap.add_argument("--note", default="", help="added to the title (e.g. the machine's load)")
    ap.add_argument("--impls", default="eager,compiled,pytorch_msssim", help="baselines to plot, comma-separated")
    args = ap.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = load(args.rows)
    if not data:
        sys.exit("no CPU rows with a fastiqa measurement in " + " ".join(args.rows))
    impls = [i for i in args.impls.split(",") if any(i == k[1] for d in data.values() for k in d)]
    cases = sorted({c for d in data.values() for c, _ in d})
    fig, axes = plt.subplots(len(impls), 1, figsize=(max(8, 0.6 * len(cases) * len(data)), 4.2 * len(impls)),
                             squeeze=False)
    width = 0.8 / len(data)
    for ax, impl in zip(axes[:, 0], impls):
        for k, ((isa, model), d) in enumerate(sorted(data.items())):
            xs = [i + k * width for i in range(len(cases))]
            ax.bar(xs, [d.get((c, impl), 0.0) for c in cases], width, label=f"{isa} ({model})")
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_yscale("log")
        ax.set_ylabel(f"x over {impl}")
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(cases))])
        ax.set_xticklabels(cases, rotation=30, ha="right", fontsize=7)
        ax.legend(fontsize=7)
    fig.suptitle("fastiqa CPU speed-up per ISA variant (median, same run)" + (f"\n{args.note}" if args.note else ""))
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
