"""Each fastiqa kernel's distance from the machine's floor, from the machine-readable benchmark
rows (benchmarks/harness.py; the limits are measured in the same run by
benchmarks/machine_limits.py): a markdown table and a roofline plot (matplotlib).

    python benchmarks/plot_roofline.py ROWS.csv [ROWS.csv ...] -o roofline.png --table [--impl kernel]

(ROWS: the bench-<isa>-<time>.csv files a benchmark run writes into benchmarks/results/, one
per ISA variant).

Roofline (Williams et al. 2009), per ISA variant: x = arithmetic intensity I = FMAs / bytes
that must move (the floor bytes of the row), y = achieved GFMA/s; the roof is
min(I x triad bandwidth, GEMM FMA rate), both measured in the run (a dashed roof: the copy
bandwidth of cache-resident sizes). roof_frac = the floor time max(bytes / bandwidth,
FMAs / FMA rate) over the measured time, bandwidth = the faster of the DRAM triad and a copy
of the case's own size: 1.0 = at the floor. The table gives it for the median round and for the
fastest (the limits are best-of runs; a shared machine's noise lands in the median).
"""
import argparse
import csv
import sys

FIELDS = ("case", "impl", "isa", "median_s", "floor_bytes", "fmas", "gbps", "gfma_s", "bw_frac", "fma_frac",
          "roof_frac", "bound", "bw_limit_gbps", "fma_limit_gfma_s", "bw_dram_gbps", "min_s", "roof_frac_best")
# fields that older row files lack, and what stands in for them
FALLBACK = {"bw_dram_gbps": "bw_limit_gbps", "min_s": "median_s", "roof_frac_best": "roof_frac"}


def load(paths, impl="fastiqa"):
    """The rows of `impl` with a roofline (fmas or bytes counted), one per (isa, case): the last wins."""
    out = {}
    for path in paths:
        with open(path, newline="") as f:
            for r in csv.DictReader(f):
                if r.get("impl") != impl or r.get("device", "cpu") != "cpu" or r.get("roof_frac") in ("", "nan"):
                    continue
                row = {k: r.get(k) if r.get(k) not in (None, "") else r.get(FALLBACK.get(k, k)) for k in FIELDS}
                for k in FIELDS[3:]:
                    if k != "bound" and k not in ("isa",):
                        row[k] = float(row[k])
                out[(row["isa"], row["case"])] = row
    return sorted(out.values(), key=lambda r: (r["case"], r["isa"]))


def table(rows):
    """Markdown: one line per case and ISA variant."""
    lines = ["| case | ISA | median | bytes | FMAs | GB/s | GFMA/s | bandwidth limit | of bandwidth | of FMA rate "
             "| floor / time | fastest | floor / fastest | bound |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in rows:
        lines.append(f"| {r['case']} | {r['isa']} | {r['median_s'] * 1e3:.3g} ms | {r['floor_bytes'] / 1e6:.3g} MB "
                     f"| {r['fmas'] / 1e6:.4g} M | {r['gbps']:.1f} | {r['gfma_s']:.1f} | {r['bw_limit_gbps']:.0f} GB/s "
                     f"| {r['bw_frac']:.2f} "
                     f"| {r['fma_frac']:.2f} | {r['roof_frac']:.2f} ({1 / r['roof_frac']:.1f}x above) "
                     f"| {r['min_s'] * 1e3:.3g} ms | {r['roof_frac_best']:.2f} ({1 / r['roof_frac_best']:.1f}x) "
                     f"| {r['bound']} |")
    limits = sorted({(r["isa"], r["bw_dram_gbps"], r["fma_limit_gfma_s"]) for r in rows})
    lines.append("")
    lines += [f"limits ({isa} run): DRAM triad {bw:.1f} GB/s, GEMM {fma:.1f} GFMA/s; bandwidth limit of a case: the "
              f"faster of the triad and a copy of the case's own size" for isa, bw, fma in limits]
    return "\n".join(lines)


def plot(rows, out, note=""):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    isas = sorted({r["isa"] for r in rows})
    fig, axes = plt.subplots(1, len(isas), figsize=(6.5 * len(isas), 5), squeeze=False)
    for ax, isa in zip(axes[0], isas):
        mine = [r for r in rows if r["isa"] == isa and r["fmas"] > 0]
        if not mine:
            continue
        bw, fma = mine[0]["bw_dram_gbps"], mine[0]["fma_limit_gfma_s"]
        lo = min(r["fmas"] / r["floor_bytes"] for r in mine) / 4
        hi = max(max(r["fmas"] / r["floor_bytes"] for r in mine) * 4, 2 * fma / bw)
        xs = [lo * (hi / lo) ** (k / 200) for k in range(201)]
        ax.plot(xs, [min(x * bw, fma) for x in xs], color="black",
                label=f"roof: {bw:.0f} GB/s (DRAM), {fma:.0f} GFMA/s")
        cache = max(r["bw_limit_gbps"] for r in mine)
        if cache > 1.05 * bw:  # tensors that live in a cache: their roof (a copy of their size)
            ax.plot(xs, [min(x * cache, fma) for x in xs], color="gray", linestyle="--",
                    label=f"roof in cache: {cache:.0f} GB/s")
        for r in mine:
            x = r["fmas"] / r["floor_bytes"]
            ax.scatter([x], [r["gfma_s"]], s=18)
            ax.annotate(f"{r['case']} ({r['roof_frac']:.2f})", (x, r["gfma_s"]), fontsize=6,
                        xytext=(3, -3), textcoords="offset points")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("FMAs per byte that must move")
        ax.set_ylabel("achieved GFMA/s")
        ax.set_title(f"{isa}: (floor time / time) beside each case", fontsize=9)
        ax.legend(fontsize=7, loc="lower right")
    fig.suptitle("fastiqa CPU kernels against the machine's roofline" + (f"\n{note}" if note else ""), fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("rows", nargs="+", help="row files (.csv) written by the benchmarks")
    ap.add_argument("-o", "--out", default="roofline.png")
    ap.add_argument("--note", default="", help="added to the title (e.g. the machine's load)")
    ap.add_argument("--table", action="store_true", help="also print the markdown table")
    ap.add_argument("--impl", default="fastiqa",
                    help="the rows of this implementation: fastiqa (the call) or kernel (the op alone)")
    args = ap.parse_args(argv)
    rows = load(args.rows, args.impl)
    if not rows:
        sys.exit(f"no {args.impl} CPU rows with a roofline in " + " ".join(args.rows))
    if args.table:
        print(table(rows))
    print(f"wrote {plot(rows, args.out, args.note)}")


if __name__ == "__main__":
    main()
