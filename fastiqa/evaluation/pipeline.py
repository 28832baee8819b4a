"""Decode and score a list of items on this process's device.

Decoding (and the conversion to float64, once per pair for all metrics) runs in
`workers` threads (OpenCV, tifffile, Pillow and torch release the GIL), at most
`prefetch` decoded pairs wait in memory, and the metric kernels run in the calling
thread meanwhile: throughput is bound by decoding.

How a pair is put on a common scale (the reading rules of fastiqa._imageio apply
to each file first):
  size          both images must have the same width and height (else an error row).
  grey/colour   a grey image paired with a colour one is compared as colour with
                R = G = B = grey (what saving it as RGB gives), so a grey file and
                its RGB copy score equal.
  bit depth     two 8-bit files are compared on 0..255 (data_range 255); otherwise
                each file is scaled to [0, 1] by its own full white (255 or 65535),
                so an 8-bit file and its 16-bit copy (v * 257) score equal (inf).
  mse / mae     reported on the [0, 1] scale whatever the bit depths.

Every failure of one pair (unreadable file, size mismatch, crop too large, a
metric's error) becomes that pair's error row; the others' results are kept.
"""
import os
import time
from concurrent.futures import ThreadPoolExecutor

import torch

from .. import metrics as M
from .._imageio import ImageReadError, read_image

JPEG = (".jpg", ".jpeg")
ERROR_KINDS = ("pair", "read", "size", "crop", "metric")


def error_row(item, kind, message):
    return {"index": item.index, "name": item.name, "error": message, "error_kind": kind}


def _read(path, gpu_jpeg):
    """(tensor (1, C, H, W) or JPEG bytes (1-D uint8 tensor), full white)."""
    if gpu_jpeg and os.path.splitext(path)[1].lower() in JPEG:
        with open(path, "rb") as f:
            return torch.frombuffer(bytearray(f.read()), dtype=torch.uint8), 255
    arr, full = read_image(path)
    return torch.from_numpy(arr).permute(2, 0, 1)[None], full  # channels-last view, read in place


def _decode_on_gpu(t, device):
    if t.dim() != 1:
        return t
    from torchvision.io import ImageReadMode, decode_jpeg  # optional: checked by Options (gpu_decode)

    return decode_jpeg(t, mode=ImageReadMode.UNCHANGED, device=device)[None]


def load(item, opts):
    """Runs in a worker thread: (item, loaded, error row or None, seconds). loaded is
    the pair on its common scale (x, y, data_range) as float64 tensors, converted here
    once for all metrics and off the scoring thread; or, with JPEG left for the GPU
    to decode, the raw [(pred, full), (ref, full)]."""
    if item.error is not None:
        return item, None, error_row(item, "pair", item.error), 0.0
    t0 = time.perf_counter()
    raw = []
    for path in (item.pred, item.ref):
        try:
            raw.append(_read(path, opts.gpu_decode))  # Options: gpu_decode only with a CUDA device
        except ImageReadError as exc:
            return item, None, error_row(item, "read", f"{os.path.basename(path)}: {exc}"), 0.0
        except Exception as exc:  # never lose the other files' results
            return item, None, error_row(item, "read", f"{os.path.basename(path)}: {type(exc).__name__}: {exc}"), 0.0
    if any(t.dim() == 1 for t, _ in raw):
        return item, raw, None, time.perf_counter() - t0
    try:
        loaded = common_scale(raw[0], raw[1], item.name)
    except ValueError as exc:
        return item, None, error_row(item, "size", str(exc)), 0.0
    return item, loaded, None, time.perf_counter() - t0


def common_scale(pred, ref, name):
    """(x, y, data_range) of a decoded pair by the rules of the module doc, float64
    (what fastiqa.metrics computes in), or ValueError."""
    (x, fx), (y, fy) = pred, ref
    if x.shape[-2:] != y.shape[-2:]:
        raise ValueError(f"{name}: size mismatch, reference {y.shape[-1]}x{y.shape[-2]} vs prediction "
                         f"{x.shape[-1]}x{x.shape[-2]} (W x H)")
    if x.shape[1] != y.shape[1]:  # grey vs colour: grey as R = G = B
        x, y = (x.repeat(1, 3, 1, 1) if x.shape[1] == 1 else x), (y.repeat(1, 3, 1, 1) if y.shape[1] == 1 else y)
    if fx == fy == 255:  # 8-bit pairs on 0..255, as BasicSR reads them
        return x.to(torch.float64), y.to(torch.float64), 255.0
    return x.to(torch.float64) / fx, y.to(torch.float64) / fy, 1.0


def score(item, loaded, opts):
    """One pair's result row: {index, name, width, height, metric: value...} or an error row."""
    if isinstance(loaded, list):  # JPEG bytes: decoded on the GPU here
        try:
            loaded = common_scale(*[(_decode_on_gpu(t, opts.device), full) for t, full in loaded], item.name)
        except ValueError as exc:
            return error_row(item, "size", str(exc))
        except RuntimeError as exc:
            return error_row(item, "read", f"{item.name}: GPU JPEG decoding failed ({exc})")
    x, y, r = loaded
    h, w = int(x.shape[2]), int(x.shape[3])
    k = opts.crop_border
    if 2 * k >= min(h, w):
        return error_row(item, "crop", f"{item.name}: crop border {k} removes the whole {w}x{h} image "
                                       f"(at most {(min(h, w) - 1) // 2} for this size)")
    x, y = x.to(opts.device), y.to(opts.device)
    row = {"index": item.index, "name": item.name, "height": h, "width": w}
    try:
        for m in opts.metrics:
            spec = M.SR_METRICS[m]
            v = spec.fn(x, y, k, test_y_channel=opts.y_channel, data_range=r, backend=opts.backend)
            row[m] = float(v) / r ** spec.range_power
    except (ValueError, TypeError) as exc:
        return error_row(item, "metric", f"{item.name}: {exc}")
    except Exception as exc:  # one bad pair never loses the others' results
        return error_row(item, "metric", f"{item.name}: {type(exc).__name__}: {exc}")
    return row


def run(items, opts, progress=None):
    """(rows in the order of items, stats {'decode_s', 'metric_s'}). progress: a
    callable taking the number of items just finished, or None."""
    rows = []
    stats = {"decode_s": 0.0, "metric_s": 0.0}
    if not items:
        return rows, stats
    with ThreadPoolExecutor(max_workers=opts.workers) as pool:
        window = opts.prefetch
        pending = [pool.submit(load, it, opts) for it in items[:window]]
        for k in range(len(items)):
            item, loaded, err, decode_s = pending[k].result()
            pending[k] = None  # frees the decoded pair once scored
            if k + window < len(items):
                pending.append(pool.submit(load, items[k + window], opts))
            stats["decode_s"] += decode_s
            t0 = time.perf_counter()
            rows.append(err if err is not None else score(item, loaded, opts))
            stats["metric_s"] += time.perf_counter() - t0
            if progress is not None:
                progress(1)
    return rows, stats
