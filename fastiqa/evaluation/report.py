"""The results as a table, CSV and JSON. Everything here depends only on the rows
(sorted by item index) and the settings, never on the number of ranks or workers,
so a distributed run writes the same bytes as a single process.

File names: any name the OS returns is written. On POSIX a name is bytes; Python
gives the bytes that are not UTF-8 as surrogate escapes (os.fsdecode), which no
UTF-8 file can hold. Every text written here (table, CSV, JSON, messages) passes
through `text`: valid UTF-8 stays as it is, each other byte becomes the four
characters \\xNN (Python's backslashreplace), e.g. the file b"caf\\xe9.png" is the
name caf\\xe9. The rows of fastiqa.evaluate keep the OS's str (it opens the file).
The CSV and JSON files are UTF-8 (JSON with ASCII escapes, json.dump's default).

A row is either failed as a whole (its "error": the pair could not be read, paired,
sized or cropped) or scored, possibly with cells that failed (its "metric_errors":
{metric: {"kind", "message"}}): such a cell is empty in the CSV with "metric: reason"
in the error column, absent from the row's JSON entry and listed in "failed", and
the mean of each metric is over the rows that have it.

Beside the mean of the per-image PSNRs, psnr_pooled is the PSNR of the set as one
signal (pooled_psnr: total squared error over total sample count, [0, 1] scale): the
table's "pooled" line, a CSV column filled on the mean row, a key of the JSON "mean"
and of EvalResult.means; what torchmetrics' PSNR gives with dim=None.
"""
import csv
import json
import math

from .. import metrics as M


def text(s) -> str:
    """s with the bytes of a file name that are not UTF-8 (surrogate escapes) written \\xNN."""
    s = str(s)
    try:
        return s.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a lone surrogate of another origin (a Windows name): \\udNNN
        return s.encode("utf-8", "backslashreplace").decode("utf-8")


def _fmt(v):
    return "inf" if math.isinf(v) else ("nan" if math.isnan(v) else f"{v:.4f}")


def _json_value(v):
    return v if math.isfinite(v) else ("inf" if v > 0 else "-inf" if v < 0 else "nan")


def scored(rows):
    """The rows that were scored (some of their cells may have failed)."""
    return [r for r in rows if r.get("error") is None]


def cell_errors(row):
    """{metric: message} of the row's failed cells."""
    return {m: e["message"] for m, e in row.get("metric_errors", {}).items()}


def messages(rows):
    """Every failure, in row order: the failed rows' errors, then per row "name: metric:
    reason" for each failed cell (unescaped: what fastiqa.evaluate returns)."""
    out = []
    for r in rows:
        if r.get("error") is not None:
            out.append(r["error"])
        out += [f"{r['name']}: {m}: {msg}" for m, msg in cell_errors(r).items()]
    return out


# the set statistics reported beside the per-image means: {metric: its column}
POOLED = {"psnr": "psnr_pooled"}


def pooled_columns(metrics):
    """The pooled columns of these metrics, in their order (psnr -> psnr_pooled)."""
    return [POOLED[m] for m in metrics if m in POOLED]


def pooled_psnr(rows):
    """The PSNR of the rows with a psnr value as one set (fastiqa.metrics.pooled_psnr of
    their summed "sq_err" and "samples"): pairs weigh by their sample counts."""
    cells = [r for r in scored(rows) if "psnr" in r]
    return M.pooled_psnr(math.fsum(r["sq_err"] for r in cells), sum(r["samples"] for r in cells))


def means(rows, metrics):
    """{metric: mean over the rows that have it} (nan when there are none), and beside
    psnr its pooled value psnr_pooled (pooled_psnr)."""
    out = {}
    for m in metrics:
        vals = [r[m] for r in scored(rows) if m in r]
        out[m] = math.fsum(vals) / len(vals) if vals else float("nan")
        if m == "psnr":
            out[POOLED[m]] = pooled_psnr(rows)
    return out


def problems(rows, crop_border):
    """The lines the CLI prints for the failures (escaped): one per failure, except that
    a crop that removes whole images, and each metric that the crop leaves too little
    image for, is one line however many pairs it hits."""
    crop_rows = [r for r in rows if r.get("error_kind") == "crop"]
    small = {}
    for r in scored(rows):
        for m, e in r.get("metric_errors", {}).items():
            if e["kind"] == "too_small":
                small.setdefault(m, []).append(r)
    lines = []
    for r in rows:
        if r.get("error") is not None and not (len(crop_rows) > 1 and r.get("error_kind") == "crop"):
            lines.append(text(r["error"]))
        for m, e in r.get("metric_errors", {}).items():
            if not (e["kind"] == "too_small" and len(small[m]) > 1):
                lines.append(text(f"{r['name']}: {m}: {e['message']}"))
    if len(crop_rows) > 1:
        lines.append(text(f"crop border {crop_border} (--scale / --crop-border) removes the whole image of "
                          f"{len(crop_rows)} pairs, e.g. {crop_rows[0]['error']}"))
    for m, hit in small.items():
        if len(hit) > 1:
            first = hit[0]
            lines.append(text(f"{m}: {len(hit)} pairs are too small for it (its cells are empty, the other metrics "
                              f"are kept), e.g. {first['name']}: {first['metric_errors'][m]['message']}"))
    return lines


def format_table(rows, metrics, mean):
    """One line per item (failed ones, and failed cells, show 'failed'), then the mean
    and, when psnr is asked, the pooled line (psnr_pooled under psnr)."""
    names = [text(r["name"]) for r in rows]
    width = max([len("pooled" if pooled_columns(metrics) else "mean")] + [len(n) for n in names])
    head = f"{'image':<{width}}  {'size':>9}" + "".join(f"  {m:>9}" for m in metrics)
    lines = [head, "-" * len(head)]
    for r, name in zip(rows, names):
        if r.get("error") is None:
            size = f"{r['width']}x{r['height']}"
            lines.append(f"{name:<{width}}  {size:>9}"
                         + "".join(f"  {_fmt(r[m]) if m in r else 'failed':>9}" for m in metrics))
        else:
            lines.append(f"{name:<{width}}  {'-':>9}" + "".join(f"  {'failed':>9}" for _ in metrics))
    lines.append("-" * len(head))
    lines.append(f"{'mean':<{width}}  {'':>9}" + "".join(f"  {_fmt(mean[m]):>9}" for m in metrics))
    if pooled_columns(metrics):  # the set as one signal, under its metric's column
        lines.append(f"{'pooled':<{width}}  {'':>9}"
                     + "".join(f"  {_fmt(mean[POOLED[m]]) if m in POOLED else '':>9}" for m in metrics))
    return "\n".join(lines)


def _csv_error(r):
    if r.get("error") is not None:
        return text(r["error"])
    return text("; ".join(f"{m}: {msg}" for m, msg in cell_errors(r).items()))


def write_csv(path, rows, metrics, mean):
    """name, width, height, the metrics (repr: full precision), the pooled columns
    (psnr_pooled when psnr is asked: empty on the images' rows), error; failed items
    have empty values and their reason, failed cells are empty and named with their
    reason in the error column; the last row is the mean, with the pooled values.
    UTF-8, names escaped (text)."""
    pooled = pooled_columns(metrics)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["name", "width", "height", *metrics, *pooled, "error"])
        for r in rows:
            if r.get("error") is None:
                w.writerow([text(r["name"]), r["width"], r["height"], *[repr(r[m]) if m in r else "" for m in metrics],
                            *[""] * len(pooled), _csv_error(r)])
            else:
                w.writerow([text(r["name"]), "", "", *[""] * (len(metrics) + len(pooled)), _csv_error(r)])
        w.writerow(["mean", "", "", *[repr(mean[m]) for m in (*metrics, *pooled)], ""])


def json_document(rows, metrics, mean, settings):
    """settings (ref, pred, suffix, crop_border, y_channel) first, then count (scored
    rows), counts (per metric: the rows its mean is over), mean (and psnr_pooled beside
    psnr: over the same rows as psnr's mean), images (the scored
    rows, without their failed cells), errors (messages) and failed ({name, error} for
    a failed row, {name, metric, error} for a failed cell). Strings escaped (text)."""
    ok = scored(rows)
    failed = []
    for r in rows:
        if r.get("error") is not None:
            failed.append({"name": text(r["name"]), "error": text(r["error"])})
        failed += [{"name": text(r["name"]), "metric": m, "error": text(f"{r['name']}: {m}: {msg}")}
                   for m, msg in cell_errors(r).items()]
    return {
        **{k: text(v) if isinstance(v, str) else v for k, v in settings.items()},
        "metrics": list(metrics), "count": len(ok),
        "counts": {m: sum(m in r for r in ok) for m in metrics},
        "mean": {m: _json_value(mean[m]) for m in (*metrics, *pooled_columns(metrics))},
        "images": [{"name": text(r["name"]), "height": r["height"], "width": r["width"],
                    **{m: _json_value(r[m]) for m in metrics if m in r}} for r in ok],
        "errors": [f["error"] for f in failed],
        "failed": failed,
    }


def write_json(path, doc):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2, allow_nan=False)
        f.write("\n")


def summary(metrics, mean):
    """The --quiet line: metric=mean ... (psnr_pooled=... after psnr)."""
    return " ".join(f"{m}={_fmt(mean[m])}" + (f" {POOLED[m]}={_fmt(mean[POOLED[m]])}" if m in POOLED else "")
                    for m in metrics)
