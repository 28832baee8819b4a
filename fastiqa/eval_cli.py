"""`fastiqa eval`: per-image PSNR / SSIM (/ MS-SSIM) of a folder of predictions
against a folder of references, the published way.

    fastiqa eval --ref HR/ --pred SR/ --scale 4 --y-channel --csv out.csv

Pairs files by name: reference `NAME.ext` goes with prediction `NAME<suffix>.ext2`
(any supported extension; --suffix _x4_SR for BasicSR's result names). Reads
PNG, JPEG, TIFF, BMP in 8 or 16 bits (values scaled to [0, 1] by 255 or 65535).
--scale K crops K pixels from each border (the SR convention), as --crop-border K.
Prints a table and the mean; --csv / --json write them. A file that is missing,
unreadable or of another size gets a one-line message and is left out of the
mean; the exit status is then 1 (2 for bad arguments), 0 when every pair counted.
"""
import csv
import json
import math
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from . import functional as F
from . import metrics as M
from ._imageio import SUPPORTED, ImageReadError, read_image

METRICS = ("psnr", "ssim", "ms_ssim")


class UsageError(Exception):
    pass


def add_arguments(p):
    p.add_argument("--ref", required=True, help="folder of reference (ground-truth) images")
    p.add_argument("--pred", required=True, help="folder of predicted (restored) images")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--scale", type=int, help="SR scale: crops that many pixels from each border")
    g.add_argument("--crop-border", type=int, help="pixels cropped from each border (default 0)")
    p.add_argument("--y-channel", action="store_true", help="compare the BT.601 Y channel (published SR tables)")
    p.add_argument("--metrics", default="psnr,ssim", help="comma-separated: psnr, ssim, ms_ssim (default psnr,ssim)")
    p.add_argument("--suffix", default="", help="prediction name = reference name + suffix (e.g. _x4_SR)")
    p.add_argument("--device", choices=["cpu", "cuda"], help="default: cuda when available, else cpu")
    p.add_argument("--backend", choices=["reference", "cpu", "cuda", "triton"], help="force a PSNR backend")
    p.add_argument("--csv", help="write the per-image table (and the mean) to this CSV file")
    p.add_argument("--json", help="write the results to this JSON file")
    p.add_argument("--workers", type=int, default=2, help="image-decoding threads (default 2)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--quiet", action="store_true", help="print only the mean")


def _err(msg):
    print(f"fastiqa eval: {msg}", file=sys.stderr)


def _list_images(folder, what):
    if not os.path.isdir(folder):
        raise UsageError(f"--{what} {folder!r} is not a folder")
    names = sorted(f for f in os.listdir(folder)
                   if os.path.splitext(f)[1].lower() in SUPPORTED and os.path.isfile(os.path.join(folder, f)))
    if not names:
        raise UsageError(f"--{what} {folder!r} holds no images ({', '.join(SUPPORTED)})")
    return names


def pair_files(ref_dir, pred_dir, suffix=""):
    """([(name, ref_path, pred_path)], [error messages]) pairing by stem (+ suffix)."""
    refs = _list_images(ref_dir, "ref")
    preds = _list_images(pred_dir, "pred")
    by_stem = {}
    for f in preds:
        by_stem.setdefault(os.path.splitext(f)[0], []).append(f)
    pairs, errors, used = [], [], set()
    ref_stems = {}
    for f in refs:
        ref_stems.setdefault(os.path.splitext(f)[0], []).append(f)
    for f in refs:
        stem = os.path.splitext(f)[0]
        if len(ref_stems[stem]) > 1:
            errors.append(f"{f}: several references share the name {stem!r} ({', '.join(ref_stems[stem])}); keep one")
            used.update(by_stem.get(stem + suffix, []))
            continue
        cands = by_stem.get(stem + suffix, [])
        if not cands:
            errors.append(f"{f}: no prediction {stem + suffix}.* in {pred_dir}")
            continue
        if len(cands) > 1:
            errors.append(f"{f}: several predictions match ({', '.join(cands)}); keep one")
            used.update(cands)
            continue
        used.add(cands[0])
        pairs.append((stem, os.path.join(ref_dir, f), os.path.join(pred_dir, cands[0])))
    for f in preds:
        if f not in used:
            errors.append(f"{f}: no reference for this prediction in {ref_dir} (suffix {suffix!r})")
    return pairs, errors


def _load_pair(pair):
    name, ref_path, pred_path = pair
    try:
        t0 = time.perf_counter()
        try:
            ref, ref_max = read_image(ref_path)
        except ImageReadError as exc:
            return name, None, None, f"{os.path.basename(ref_path)}: {exc}", 0.0
        try:
            pred, pred_max = read_image(pred_path)
        except ImageReadError as exc:
            return name, None, None, f"{os.path.basename(pred_path)}: {exc}", 0.0
        if ref.shape != pred.shape:
            return name, None, None, (f"{name}: size mismatch, reference {ref.shape[1]}x{ref.shape[0]}x{ref.shape[2]} "
                                      f"vs prediction {pred.shape[1]}x{pred.shape[0]}x{pred.shape[2]} (WxHxC)"), 0.0
        return name, (ref, ref_max), (pred, pred_max), None, time.perf_counter() - t0
    except Exception as exc:  # never lose the other files' results
        return name, None, None, f"{name}: {type(exc).__name__}: {exc}", 0.0


def _to_tensors(pred, ref, device):
    """(x, y, data_range): (1, C, H, W) tensors of the two images on a common scale.
    8-bit pairs stay uint8 (metrics converts them to float64 once, reading the
    channels-last view in place); mixed bit depths are scaled to [0, 1]."""
    (a, fa), (b, fb) = pred, ref
    if fa == fb and a.dtype == np.uint8:
        x, y, r = torch.from_numpy(a), torch.from_numpy(b), float(fa)
    else:
        x = torch.from_numpy(a.astype(np.float64) / fa)
        y = torch.from_numpy(b.astype(np.float64) / fb)
        r = 1.0
    return x.to(device).permute(2, 0, 1)[None], y.to(device).permute(2, 0, 1)[None], r


def _ms_ssim_fn():
    return getattr(F, "ms_ssim", None)


def _ms_ssim(x, y, crop, y_channel, data_range):
    x, y = x.to(torch.float64), y.to(torch.float64)
    if y_channel and x.shape[1] == 3:
        x, y = M.to_y_channel(x, data_range), M.to_y_channel(y, data_range)
    if crop:
        x, y = x[..., crop:-crop, crop:-crop], y[..., crop:-crop, crop:-crop]
    return float(_ms_ssim_fn()(x.contiguous(), y.contiguous(), data_range=data_range, reduction="none")[0])


def _progress(total, enabled):
    if not enabled:
        return None
    try:
        from tqdm import tqdm

        return tqdm(total=total, unit="img", file=sys.stderr, leave=False)
    except ImportError:
        return _PlainProgress(total)


class _PlainProgress:
    """Fallback when tqdm is absent: one updating line on a terminal, nothing otherwise."""

    def __init__(self, total):
        self.total, self.n, self.tty = total, 0, sys.stderr.isatty()

    def update(self, k=1):
        self.n += k
        if self.tty:
            print(f"\r{self.n}/{self.total} images", end="", file=sys.stderr, flush=True)

    def close(self):
        if self.tty:
            print(file=sys.stderr)


def _fmt(v):
    return "inf" if math.isinf(v) else ("nan" if math.isnan(v) else f"{v:.4f}")


def _json_value(v):
    return v if math.isfinite(v) else ("inf" if v > 0 else "-inf" if v < 0 else "nan")


def evaluate(pairs, metrics, crop, y_channel, device, backend=None, workers=2, progress=True):
    """(rows, errors, stats): rows [{name, height, width, metric: value}], per-file errors."""
    rows, errors = [], []
    stats = {"decode_s": 0.0, "metric_s": 0.0}
    bar = _progress(len(pairs), progress)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        window = 2 * max(1, workers)  # decoded images waiting in memory, at most
        pending = [pool.submit(_load_pair, p) for p in pairs[:window]]
        for k in range(len(pairs)):
            name, ref, pred, error, decode_s = pending[k].result()
            pending[k] = None
            if k + window < len(pairs):
                pending.append(pool.submit(_load_pair, pairs[k + window]))
            stats["decode_s"] += decode_s
            if bar is not None:
                bar.update(1)
            if error is not None:
                errors.append(error)
                continue
            t0 = time.perf_counter()
            try:
                x, y, r = _to_tensors(pred, ref, device)
                row = {"name": name, "height": int(x.shape[2]), "width": int(x.shape[3])}
                for m in metrics:
                    if m == "psnr":
                        row[m] = float(M.sr_psnr(x, y, crop, test_y_channel=y_channel, data_range=r,
                                                 backend=backend)[0])
                    elif m == "ssim":
                        row[m] = float(M.sr_ssim(x, y, crop, test_y_channel=y_channel, data_range=r)[0])
                    else:
                        row[m] = _ms_ssim(x, y, crop, y_channel, r)
                rows.append(row)
            except Exception as exc:  # one bad pair never loses the others' results
                errors.append(f"{name}: {exc}" if isinstance(exc, (ValueError, TypeError))
                              else f"{name}: {type(exc).__name__}: {exc}")
            stats["metric_s"] += time.perf_counter() - t0
    if bar is not None:
        bar.close()
    return rows, errors, stats


def _means(rows, metrics):
    return {m: (sum(r[m] for r in rows) / len(rows) if rows else float("nan")) for m in metrics}


def format_table(rows, metrics, means):
    width = max([len("mean")] + [len(r["name"]) for r in rows])
    head = f"{'image':<{width}}  {'size':>9}" + "".join(f"  {m:>9}" for m in metrics)
    lines = [head, "-" * len(head)]
    for r in rows:
        size = f"{r['width']}x{r['height']}"
        lines.append(f"{r['name']:<{width}}  {size:>9}" + "".join(f"  {_fmt(r[m]):>9}" for m in metrics))
    lines.append("-" * len(head))
    lines.append(f"{'mean':<{width}}  {len(rows):>7}im" + "".join(f"  {_fmt(means[m]):>9}" for m in metrics))
    return "\n".join(lines)


def _parse_metrics(text):
    ms = [m.strip().lower().replace("-", "_") for m in text.split(",") if m.strip()]
    if not ms:
        raise UsageError("--metrics is empty; use e.g. psnr,ssim")
    for m in ms:
        if m not in METRICS:
            raise UsageError(f"unknown metric {m!r} in --metrics; choose from {', '.join(METRICS)}")
        if m == "ms_ssim" and _ms_ssim_fn() is None:
            raise UsageError("ms_ssim is not available in this build of fastiqa (fastiqa.functional.ms_ssim "
                             "is missing); use --metrics psnr,ssim")
    return list(dict.fromkeys(ms))


def _write_outputs(args, rows, metrics, means, errors, crop):
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["name", "width", "height", *metrics])
            for r in rows:
                w.writerow([r["name"], r["width"], r["height"], *[repr(r[m]) for m in metrics]])
            w.writerow(["mean", "", "", *[repr(means[m]) for m in metrics]])
    if args.json:
        doc = {
            "ref": args.ref, "pred": args.pred, "suffix": args.suffix, "crop_border": crop,
            "y_channel": bool(args.y_channel), "metrics": metrics, "count": len(rows),
            "mean": {m: _json_value(means[m]) for m in metrics},
            "images": [{k: (_json_value(v) if isinstance(v, float) else v) for k, v in r.items()} for r in rows],
            "errors": errors,
        }
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=2, allow_nan=False)


def run(args) -> int:
    try:
        return _run(args)
    except UsageError as exc:
        _err(str(exc))
        return 2
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    except Exception as exc:  # a message, never a traceback
        _err(f"failed: {type(exc).__name__}: {exc}")
        return 1


def _run(args) -> int:
    metrics = _parse_metrics(args.metrics)
    crop = args.scale if args.scale is not None else (args.crop_border or 0)
    if crop < 0:
        raise UsageError(f"--scale / --crop-border must be >= 0, got {crop}")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda, but no CUDA device is available to this torch")
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if args.workers < 1:
        raise UsageError(f"--workers must be >= 1, got {args.workers}")
    for out in (args.csv, args.json):
        if out and os.path.dirname(os.path.abspath(out)) and not os.path.isdir(os.path.dirname(os.path.abspath(out))):
            raise UsageError(f"cannot write {out!r}: its folder does not exist")
    pairs, errors = pair_files(args.ref, args.pred, args.suffix)
    t0 = time.perf_counter()
    rows, more_errors, stats = evaluate(pairs, metrics, crop, args.y_channel, device, args.backend,
                                        args.workers, not args.no_progress)
    wall = time.perf_counter() - t0
    errors += more_errors
    for e in errors:
        _err(e)
    means = _means(rows, metrics)
    if args.quiet:
        print(" ".join(f"{m}={_fmt(means[m])}" for m in metrics))
    else:
        print(format_table(rows, metrics, means))
        conv = f"crop {crop}, {'Y channel' if args.y_channel else 'RGB'}"
        rate = len(rows) / wall if wall > 0 else float("inf")
        print(f"{len(rows)} image pair(s) on {device.type} ({conv}); {wall:.2f} s, {rate:.1f} images/s; "
              f"decoding {stats['decode_s']:.2f} s (thread time), metrics {stats['metric_s']:.2f} s")
    _write_outputs(args, rows, metrics, means, errors, crop)
    if errors:
        _err(f"{len(errors)} problem(s); {len(rows)} of {len(rows) + len(errors)} counted in the mean")
        return 1
    return 0
