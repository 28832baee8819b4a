"""Decode and score a list of items on this process's device.

Decoding runs in `workers` threads (OpenCV, tifffile, Pillow and torch release the
GIL), at most `prefetch` decoded pairs wait in memory, and the scoring thread puts
each pair on its common scale and runs the metric kernels meanwhile: throughput is
bound by decoding. The decoded pixels stay in their integer type (a channels-last
view of the decoder's array): with y_channel on the CPU, PSNR, SSIM and MSE are computed
straight from them by the compiled kernels of fastiqa.ops.y_channel (one pass over the
pair for all three, the Y of each pixel computed where it is read, no Y plane written);
the other metrics, devices and backends get the cropped float64 Y planes (y_plane, one
pass per image), made once per pair, and fastiqa.metrics on them. Both routes compute
Y, PSNR and SSIM by the same formulas: the SSIM agrees bitwise, PSNR and MSE to ~1e-15
(their sums run in another order).

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

CPU threads: the decoding threads and the metric kernels share the machine's cores,
so while `run` scores on the CPU, torch's intra-op threads are lowered to the cores
the decoders leave (at least 1) and restored afterwards: more threads than cores
makes OpenMP's spinning workers and the decoders take turns on the same cores.

Every failure of one pair (unreadable file, size mismatch, crop too large, a
metric's error) becomes that pair's error row; the others' results are kept.
"""
import contextlib
import os
import time
from concurrent.futures import ThreadPoolExecutor

import torch

from .. import metrics as M
from .._imageio import ImageReadError, read_image
from ..ops import y_channel as Y

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
    """Runs in a worker thread: (item, raw, error row or None, seconds). raw is the
    decoded pair [(pred, full white), (ref, full white)], pixels in their file's integer
    type (or, with JPEG left for the GPU to decode, the JPEG bytes)."""
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
    return item, raw, None, time.perf_counter() - t0


def common_scale(pred, ref, name):
    """(x, y, div_x, div_y, r) of a decoded pair by the rules of the module doc, or
    ValueError: the samples with a common channel count, each image's divisor (its full
    white, or 1 for two 8-bit files) and the data range r the metrics see."""
    (x, fx), (y, fy) = pred, ref
    if x.shape[-2:] != y.shape[-2:]:
        raise ValueError(f"{name}: size mismatch, reference {y.shape[-1]}x{y.shape[-2]} vs prediction "
                         f"{x.shape[-1]}x{x.shape[-2]} (W x H)")
    if x.shape[1] != y.shape[1]:  # grey vs colour: grey as R = G = B
        x, y = (x.repeat(1, 3, 1, 1) if x.shape[1] == 1 else x), (y.repeat(1, 3, 1, 1) if y.shape[1] == 1 else y)
    eight_bit = fx == fy == 255  # 8-bit pairs on 0..255, as BasicSR reads them
    r = 255.0 if eight_bit else 1.0
    div_x, div_y = (1.0, 1.0) if eight_bit else (float(fx), float(fy))
    return x, y, div_x, div_y, r


def planes(x, y, div_x, div_y, r, y_channel, crop):
    """(x, y, done): float64 images for fastiqa.metrics. With y_channel and colour images
    the BT.601 Y planes cropped by `crop` (done = True: the metrics get neither crop nor
    y_channel again); else the full images divided by their divisors (done = False)."""
    if y_channel and x.shape[1] == 3:
        return Y.y_plane(x, div_x, r, crop), Y.y_plane(y, div_y, r, crop), True
    return _scaled(x, div_x), _scaled(y, div_y), False


def _scaled(t, div):
    t = t.to(torch.float64)
    return t if div == 1.0 else t.div_(div)


class _SampleStats:
    """The Y-channel statistics of one decoded pair straight from its samples (compiled CPU
    kernels of fastiqa.ops.y_channel, no Y plane written), by the conventions fastiqa.metrics
    applies to the planes: the SSIM and the MSE come from one pass when SSIM is asked,
    the MSE alone (bitwise the same) otherwise."""

    METRICS = ("psnr", "ssim", "mse")

    def __init__(self, x, y, div_x, div_y, r, crop, backend, want_ssim):
        args = (x, y, div_x, div_y, r, crop)
        if want_ssim:
            self.ssim, self.mse = Y.ssim_y(*args, backend=backend)
        else:
            self.ssim, self.mse = None, Y.y_mse(*args, backend=backend)
        self.r = r

    def value(self, metric):
        if metric == "psnr":
            return 10.0 * torch.log10((self.r * self.r) / self.mse)  # as fastiqa.functional.psnr
        return self.ssim if metric == "ssim" else self.mse


def score(item, raw, opts):
    """One pair's result row: {index, name, width, height, metric: value...} or an error row."""
    try:
        raw = [(_decode_on_gpu(t, opts.device), full) for t, full in raw]  # JPEG bytes: decoded here
    except RuntimeError as exc:
        return error_row(item, "read", f"{item.name}: GPU JPEG decoding failed ({exc})")
    x, y = raw[0][0], raw[1][0]
    h, w = int(y.shape[2]), int(y.shape[3])
    k = opts.crop_border
    if x.shape[-2:] == y.shape[-2:] and 2 * k >= min(h, w):
        return error_row(item, "crop", f"{item.name}: crop border {k} removes the whole {w}x{h} image "
                                       f"(at most {(min(h, w) - 1) // 2} for this size)")
    try:
        x, y, div_x, div_y, r = common_scale(*[(t.to(opts.device), full) for t, full in raw], item.name)
    except ValueError as exc:
        return error_row(item, "size", str(exc))
    # the compiled CPU kernels read the samples (one dtype for both images); else Y planes
    from_samples = (opts.y_channel and x.shape[1] == 3 and x.dtype == y.dtype
                    and Y.runs_compiled("ssim_y", opts.backend, x, y))
    row = {"index": item.index, "name": item.name, "height": h, "width": w}
    converted = stats = None
    try:
        for m in opts.metrics:
            spec = M.SR_METRICS[m]
            if from_samples and m in _SampleStats.METRICS:
                if stats is None:
                    stats = _SampleStats(x, y, div_x, div_y, r, k, opts.backend, "ssim" in opts.metrics)
                v = stats.value(m)
            else:
                if converted is None:
                    converted = planes(x, y, div_x, div_y, r, opts.y_channel, k)
                px, py, done = converted
                crop, y_channel = (0, False) if done else (k, opts.y_channel)
                v = spec.fn(px, py, crop, test_y_channel=y_channel, data_range=r, backend=opts.backend)
            row[m] = float(v) / r ** spec.range_power
    except (ValueError, TypeError) as exc:
        return error_row(item, "metric", f"{item.name}: {exc}")
    except Exception as exc:  # one bad pair never loses the others' results
        return error_row(item, "metric", f"{item.name}: {type(exc).__name__}: {exc}")
    return row


def _cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def metric_threads(opts):
    """torch's intra-op threads lowered to the cores left by `opts.workers` decoders
    while scoring on the CPU (see the module doc); restored on exit."""
    before = torch.get_num_threads()
    want = max(1, min(before, _cores() - opts.workers))
    if torch.device(opts.device).type != "cpu" or want == before:
        yield
        return
    torch.set_num_threads(want)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run(items, opts, progress=None):
    """(rows in the order of items, stats {'decode_s', 'metric_s'}). progress: a
    callable taking the number of items just finished, or None."""
    rows = []
    stats = {"decode_s": 0.0, "metric_s": 0.0}
    if not items:
        return rows, stats
    with metric_threads(opts), ThreadPoolExecutor(max_workers=opts.workers) as pool:
        window = opts.prefetch
        pending = [pool.submit(load, it, opts) for it in items[:window]]
        for k in range(len(items)):
            item, raw, err, decode_s = pending[k].result()
            pending[k] = None  # frees the decoded pair once scored
            if k + window < len(items):
                pending.append(pool.submit(load, items[k + window], opts))
            stats["decode_s"] += decode_s
            t0 = time.perf_counter()
            rows.append(err if err is not None else score(item, raw, opts))
            stats["metric_s"] += time.perf_counter() - t0
            if progress is not None:
                progress(1)
    return rows, stats
