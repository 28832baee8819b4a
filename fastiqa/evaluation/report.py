"""The results as a table, CSV and JSON. Everything here depends only on the rows
(sorted by item index) and the settings, never on the number of ranks or workers,
so a distributed run writes the same bytes as a single process."""
import csv
import json
import math


def _fmt(v):
    return "inf" if math.isinf(v) else ("nan" if math.isnan(v) else f"{v:.4f}")


def _json_value(v):
    return v if math.isfinite(v) else ("inf" if v > 0 else "-inf" if v < 0 else "nan")


def means(rows, metrics):
    """{metric: mean over the rows without error} (nan when there are none)."""
    ok = [r for r in rows if r.get("error") is None]
    return {m: (math.fsum(r[m] for r in ok) / len(ok) if ok else float("nan")) for m in metrics}


def format_table(rows, metrics, mean):
    """One line per item (failed ones show '-'), then the mean of the counted ones."""
    width = max([len("mean")] + [len(r["name"]) for r in rows])
    head = f"{'image':<{width}}  {'size':>9}" + "".join(f"  {m:>9}" for m in metrics)
    lines = [head, "-" * len(head)]
    for r in rows:
        if r.get("error") is None:
            size = f"{r['width']}x{r['height']}"
            lines.append(f"{r['name']:<{width}}  {size:>9}" + "".join(f"  {_fmt(r[m]):>9}" for m in metrics))
        else:
            lines.append(f"{r['name']:<{width}}  {'-':>9}" + "".join(f"  {'failed':>9}" for _ in metrics))
    lines.append("-" * len(head))
    lines.append(f"{'mean':<{width}}  {'':>9}" + "".join(f"  {_fmt(mean[m]):>9}" for m in metrics))
    return "\n".join(lines)


def write_csv(path, rows, metrics, mean):
    """name, width, height, the metrics (repr: full precision), error; failed items
    have empty values and their reason; the last row is the mean."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["name", "width", "height", *metrics, "error"])
        for r in rows:
            if r.get("error") is None:
                w.writerow([r["name"], r["width"], r["height"], *[repr(r[m]) for m in metrics], ""])
            else:
                w.writerow([r["name"], "", "", *[""] * len(metrics), r["error"]])
        w.writerow(["mean", "", "", *[repr(mean[m]) for m in metrics], ""])


def json_document(rows, metrics, mean, settings):
    """settings (ref, pred, suffix, crop_border, y_channel) first, then count, mean,
    images (the counted rows), errors (messages) and failed ({name, error})."""
    ok = [r for r in rows if r.get("error") is None]
    bad = [r for r in rows if r.get("error") is not None]
    return {
        **settings, "metrics": list(metrics), "count": len(ok),
        "mean": {m: _json_value(mean[m]) for m in metrics},
        "images": [{"name": r["name"], "height": r["height"], "width": r["width"],
                    **{m: _json_value(r[m]) for m in metrics}} for r in ok],
        "errors": [r["error"] for r in bad],
        "failed": [{"name": r["name"], "error": r["error"]} for r in bad],
    }


def write_json(path, doc):
    with open(path, "w") as f:
        json.dump(doc, f, indent=2, allow_nan=False)
        f.write("\n")


def summary(metrics, mean):
    """The --quiet line: metric=mean ..."""
    return " ".join(f"{m}={_fmt(mean[m])}" for m in metrics)
