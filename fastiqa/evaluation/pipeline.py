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
  lpips / dists scored on the colour images (scaled to [0, 1], cropped) whatever
                y_channel says: the networks read RGB (fastiqa.metrics.sr_lpips).
  psnr_pooled   the PSNR of all pairs as one signal: each scored psnr cell's row carries
                "sq_err" (its squared errors summed on the [0, 1] scale) and "samples"
                (the samples compared: channels, 1 on the Y channel, x cropped H x W);
                report.means pools them (fastiqa.metrics.pooled_psnr), so pairs of
                different sizes weigh by their sample counts and bit depths mix.

CPU threads: the decoding threads and the metric kernels share the machine's cores,
so while `run` scores on the CPU, torch's intra-op threads are lowered to the cores
the decoders leave (at least 1) and restored afterwards: more threads than cores
makes OpenMP's spinning workers and the decoders take turns on the same cores.

Every failure of one pair (a file that is not a readable image, a size mismatch, a
crop that removes the whole image) becomes that pair's error row; a metric that
cannot run on a pair (an image too small for its window once cropped, its own error)
fails that cell only: the row keeps the other metrics (row["metric_errors"]
{metric: {"kind", "message"}}, kind one of METRIC_ERROR_KINDS), and the means of the
other metrics count it. The others' results are always kept.

Before decoding, both files are read and their widths and heights taken from the
headers (fastiqa._imageio.image_size): a size mismatch is reported without decoding
either image. Pillow's DecompressionBombWarning is silenced while `run` decodes and
becomes a note of the row (row["notes"], printed by the CLI); images over twice
Pillow's limit are read errors in our words.
"""
import contextlib
import os
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import torch

from .. import functional as F
from .. import metrics as M
from .._imageio import ImageReadError, decode, image_size, read_file
from ..functional._psnr import psnr_of_mse
from ..ops import y_channel as Y

JPEG = (".jpg", ".jpeg")
ERROR_KINDS = ("pair", "read", "size", "crop")  # a failed row
METRIC_ERROR_KINDS = ("too_small", "metric")  # a failed cell
# the smallest side a metric accepts once cropped (the others take any size)
MIN_SIDE = {"ssim": M.SSIM_WIN, "ms_ssim": F.ms_ssim_min_size(M.SSIM_WIN), "lpips": F.LPIPS_MIN_SIDE["alex"],
            "lpips_vgg": F.LPIPS_MIN_SIDE["vgg"]}


def error_row(item, kind, message):
    return {"index": item.index, "name": item.name, "error": message, "error_kind": kind}


def _decoded(path, data, gpu_jpeg, notes):
    """(tensor (1, C, H, W) or JPEG bytes (1-D uint8 tensor), full white)."""
    if gpu_jpeg and os.path.splitext(path)[1].lower() in JPEG:
        return torch.frombuffer(bytearray(data), dtype=torch.uint8), 255
    arr, full = decode(path, data, notes)
    return torch.from_numpy(arr).permute(2, 0, 1)[None], full  # channels-last view, read in place


def size_mismatch(name, ref_wh, pred_wh):
    return (f"{name}: size mismatch, reference {ref_wh[0]}x{ref_wh[1]} vs prediction "
            f"{pred_wh[0]}x{pred_wh[1]} (W x H)")


def _decode_on_gpu(t, device):
    if t.dim() != 1:
        return t
    from torchvision.io import ImageReadMode, decode_jpeg  # optional: checked by Options (gpu_decode)

    return decode_jpeg(t, mode=ImageReadMode.UNCHANGED, device=device)[None]


def load(item, opts):
    """Runs in a worker thread: (item, raw, error row or None, seconds, notes). raw is the
    decoded pair [(pred, full white), (ref, full white)], pixels in their file's integer
    type (or, with JPEG left for the GPU to decode, the JPEG bytes); notes: lines for
    the row (an image above Pillow's decompression-bomb limit)."""
    if item.error is not None:
        return item, None, error_row(item, "pair", item.error), 0.0, []
    t0 = time.perf_counter()
    paths = (item.pred, item.ref)
    data = []
    for path in paths:
        try:
            data.append(read_file(path))
        except ImageReadError as exc:
            return item, None, error_row(item, "read", f"{os.path.basename(path)}: {exc}"), 0.0, []
    sizes = [image_size(d) for d in data]
    if None not in sizes and sizes[0] != sizes[1]:  # from the headers: nothing decoded
        return item, None, error_row(item, "size", size_mismatch(item.name, sizes[1], sizes[0])), 0.0, []
    raw, notes = [], []
    for path, d in zip(paths, data):
        file_notes = []
        try:
            raw.append(_decoded(path, d, opts.gpu_decode, file_notes))  # Options: gpu_decode only with CUDA
        except ImageReadError as exc:
            return item, None, error_row(item, "read", f"{os.path.basename(path)}: {exc}"), 0.0, []
        except Exception as exc:  # never lose the other files' results
            return item, None, error_row(item, "read", f"{os.path.basename(path)}: {type(exc).__name__}: {exc}"), \
                0.0, []
        notes += [f"{os.path.basename(path)}: {n}" for n in file_notes]
    return item, raw, None, time.perf_counter() - t0, notes


def common_scale(pred, ref, name):
    """(x, y, div_x, div_y, r) of a decoded pair by the rules of the module doc, or
    ValueError: the samples with a common channel count, each image's divisor (its full
    white, or 1 for two 8-bit files) and the data range r the metrics see."""
    (x, fx), (y, fy) = pred, ref
    if x.shape[-2:] != y.shape[-2:]:
        raise ValueError(size_mismatch(name, (y.shape[-1], y.shape[-2]), (x.shape[-1], x.shape[-2])))
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
    the MSE alone (bitwise the same) otherwise or when the SSIM pass fails (the SSIM
    cell then fails alone)."""

    METRICS = ("psnr", "ssim", "mse")

    def __init__(self, x, y, div_x, div_y, r, crop, backend, want_ssim):
        self.args, self.backend, self.r = (x, y, div_x, div_y, r, crop), backend, r
        self.ssim = self.mse = self.ssim_error = None
        if want_ssim:
            try:
                self.ssim, self.mse = Y.ssim_y(*self.args, backend=backend)
            except Exception as exc:  # raised again for the SSIM cell only
                self.ssim_error = exc

    def value(self, metric):
        if metric == "ssim":
            if self.ssim_error is not None:
                raise self.ssim_error
            return self.ssim
        if self.mse is None:
            self.mse = Y.y_mse(*self.args, backend=self.backend)
        if metric == "psnr":
            return psnr_of_mse(self.mse, self.r)  # as fastiqa.functional.psnr
        return self.mse


def _too_small(metric, w, h, k):
    """The message when the image, cropped by k, is smaller than the metric accepts."""
    need = MIN_SIDE.get(metric, 1)
    if min(w, h) - 2 * k >= need:
        return None
    after = f", which leaves {w - 2 * k}x{h - 2 * k}" if k else ""
    return (f"needs images of at least {need}x{need} pixels" + (f" after cropping {k} from each border" if k else "")
            + f"; the pair is {w}x{h}{after}")


def score(item, raw, opts):
    """One pair's result row: {index, name, width, height, metric: value...} (with
    metric_errors for the cells that failed) or an error row."""
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
    failed = {}
    runnable = []
    for m in opts.metrics:
        small = _too_small(m, w, h, k)
        if small is not None:
            failed[m] = {"kind": "too_small", "message": small}
        else:
            runnable.append(m)
    converted = stats = rgb = None
    for m in runnable:
        spec = M.SR_METRICS[m]
        try:
            pool = None  # psnr: (MSE on the [0, 1] scale, compared samples) for the pooled PSNR
            if from_samples and m in _SampleStats.METRICS:
                if stats is None:
                    stats = _SampleStats(x, y, div_x, div_y, r, k, opts.backend, "ssim" in runnable)
                v = stats.value(m)
                if m == "psnr":
                    pool = float(stats.mse) / (r * r), (h - 2 * k) * (w - 2 * k)  # one Y plane
            elif spec.rgb:  # the colour images, cropped by the metric (lpips, dists)
                if rgb is None:
                    rgb = _scaled(x, div_x), _scaled(y, div_y)
                v = spec.fn(*rgb, k, data_range=r, backend=opts.backend)
            else:
                if converted is None:
                    converted = planes(x, y, div_x, div_y, r, opts.y_channel, k)
                px, py, done = converted
                crop, y_channel = (0, False) if done else (k, opts.y_channel)
                if m == "psnr":  # sr_psnr's value (bitwise) and its pooling parts
                    parts = M.sr_psnr_parts(px, py, crop, test_y_channel=y_channel, data_range=r,
                                            backend=opts.backend)
                    v, pool = parts.psnr[0], (float(parts.mse01[0]), parts.samples)
                else:
                    v = spec.fn(px, py, crop, test_y_channel=y_channel, data_range=r, backend=opts.backend)
            row[m] = float(v) / r ** spec.range_power
            if pool is not None:
                row["sq_err"], row["samples"] = pool[0] * pool[1], pool[1]
        except (ValueError, TypeError) as exc:  # this metric's cell only: the row keeps the others
            failed[m] = {"kind": "metric", "message": str(exc)}
        except Exception as exc:
            failed[m] = {"kind": "metric", "message": f"{type(exc).__name__}: {exc}"}
    if failed:
        row["metric_errors"] = {m: failed[m] for m in opts.metrics if m in failed}
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


@contextlib.contextmanager
def _pillow_warnings_as_notes():
    """Pillow's DecompressionBombWarning silenced while the workers decode: fastiqa._imageio
    notes such an image in its own words (row["notes"]). The warning filters are
    process-wide: this applies to every thread until `run` returns."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        yield


def run(items, opts, progress=None):
    """(rows in the order of items, stats {'decode_s', 'metric_s'}). progress: a
    callable taking the number of items just finished, or None."""
    rows = []
    stats = {"decode_s": 0.0, "metric_s": 0.0}
    if not items:
        return rows, stats
    with metric_threads(opts), _pillow_warnings_as_notes(), ThreadPoolExecutor(max_workers=opts.workers) as pool:
        window = opts.prefetch
        pending = [pool.submit(load, it, opts) for it in items[:window]]
        for k in range(len(items)):
            item, raw, err, decode_s, notes = pending[k].result()
            pending[k] = None  # frees the decoded pair once scored
            if k + window < len(items):
                pending.append(pool.submit(load, items[k + window], opts))
            stats["decode_s"] += decode_s
            t0 = time.perf_counter()
            row = err if err is not None else score(item, raw, opts)
            if notes:
                row["notes"] = notes
            rows.append(row)
            stats["metric_s"] += time.perf_counter() - t0
            if progress is not None:
                progress(1)
    return rows, stats
