"""fastiqa.evaluate: the published SR metrics over folders or lists of image files,
in one process or across the ranks of a torch.distributed process group.

    import fastiqa
    res = fastiqa.evaluate("HR/", "SR/", ["psnr", "ssim"], crop_border=4, y_channel=True)
    res.means            # {'psnr': ..., 'psnr_pooled': ..., 'ssim': ...} over the pairs that could be scored
    res.rows             # one dict per pair, in name order; failed ones carry 'error'

Inside a job whose process group is initialised (a validation loop under
torchrun), every rank calls evaluate with the same arguments: each scores its share
on its device and every rank gets the full, identically ordered result.
"""
import dataclasses
import os
from typing import Dict, List, Optional, Tuple

from . import distributed, pipeline, report
from .options import Options, UsageError, make_options
from .pairing import items_from_pairs, pair_folders


@dataclasses.dataclass
class EvalResult:
    metrics: Tuple[str, ...]
    # every item in order: {index, name, width, height, metric: value...} when scored (a
    # metric that could not run on the pair is missing and named in metric_errors:
    # {metric: {kind, message}}, kind one of pipeline.METRIC_ERROR_KINDS), else {index,
    # name, error, error_kind} with error_kind one of pipeline.ERROR_KINDS; "notes" when
    # there is something to know (an image above Pillow's decompression-bomb limit); a row
    # with a psnr value also has sq_err and samples, what the pooled PSNR sums (pipeline's doc)
    rows: List[dict]
    # per metric, over the rows that have it; with psnr also psnr_pooled, the PSNR of those
    # rows as one set (total squared error / total sample count: report.pooled_psnr)
    means: Dict[str, float]
    stats: Dict[str, float]  # decode_s, metric_s: summed over workers and ranks

    @property
    def images(self):
        """The rows that were scored (some of their cells may have failed)."""
        return report.scored(self.rows)

    @property
    def errors(self):
        """Every failure's message, in order: failed rows, then "name: metric: reason"
        for each failed cell."""
        return report.messages(self.rows)


def _is_path(x):
    return isinstance(x, (str, os.PathLike))


def make_items(ref, pred=None, suffix=""):
    """The work list: two folders (ref, pred) or a list of pairs in ref."""
    if _is_path(ref):
        if pred is None or not _is_path(pred):
            raise UsageError(f"pred must be the folder of predictions when ref is a folder, got {pred!r}")
        return pair_folders(ref, pred, suffix)
    if pred is not None:
        raise UsageError("give either two folders (ref, pred) or a list of (ref_path, pred_path) pairs, not both")
    return items_from_pairs(list(ref))


def _crop_usage_error(rows, crop):
    """A crop larger than every image is a usage error, not one error per image."""
    crop_rows = [r for r in rows if r.get("error_kind") == "crop"]
    scored = [r for r in rows if r.get("error") is None]
    if crop_rows and not scored and all(r.get("error_kind") in ("crop", "pair", "read") for r in rows):
        raise UsageError(f"crop border {crop} (--scale / --crop-border) removes the whole image of every pair "
                         f"that could be read ({len(crop_rows)}); it must be less than half of the smaller side")


def run_items(build_items, opts: Options, ctx: distributed.Context, to_all=True, progress=None):
    """The evaluation on this rank's share; EvalResult on rank 0 (on every rank when
    to_all), None on the others. build_items runs on rank 0 only and its list (or its
    error) is broadcast, so every rank works on the same list."""
    items, error = None, None
    if ctx.rank == 0:
        try:
            items = build_items()
        except Exception as exc:  # sent to every rank, raised there alike
            error = exc
    items, error = distributed.broadcast((items, error), ctx)
    if error is not None:
        raise error
    try:
        payload = pipeline.run(distributed.shard(items, ctx), opts, progress)
    except Exception as exc:  # a rank that failed as a whole still answers the gather
        payload = RuntimeError(f"rank {ctx.rank}: {type(exc).__name__}: {exc}")
    parts = distributed.gather(payload, ctx, to_all)
    if parts is None:
        return None
    for p in parts:
        if isinstance(p, Exception):
            raise p
    rows = sorted((r for part_rows, _ in parts for r in part_rows), key=lambda r: r["index"])
    stats = {k: sum(s[k] for _, s in parts) for k in ("decode_s", "metric_s")}
    _crop_usage_error(rows, opts.crop_border)
    return EvalResult(opts.metrics, rows, report.means(rows, opts.metrics), stats)


def evaluate(ref, pred=None, metrics=("psnr", "ssim"), *, crop_border: int = 0, y_channel: bool = False,
             suffix: str = "", device=None, backend: Optional[str] = None, workers: int = 2,
             prefetch: Optional[int] = None, gpu_decode: bool = False, process_group=None) -> EvalResult:
    """Per-image metrics of predictions against references, and their means.

    ref, pred: two folders (paired by name: ref NAME.ext with pred NAME<suffix>.*), or
        ref a list of (ref_path, pred_path) / (name, ref_path, pred_path) and pred None.
    metrics: names from fastiqa.metrics.SR_METRICS (psnr, ssim, ms_ssim, mse, mae), a
        list or 'psnr,ssim'. crop_border, y_channel: the SR conventions (BasicSR's).
    device: 'cpu', 'cuda', 'cuda:1' (default: this process's CUDA device, else CPU);
        backend: forces the kernels' backend for every metric.
    workers / prefetch: decoding threads and decoded pairs held in memory (2 * workers).
    gpu_decode: JPEG decoded on the CUDA device by torchvision.
    process_group: the group to split the work over (default: the default group when
        torch.distributed is initialised, else this process alone). Collective: every
        rank of the group must call it.
    Bad arguments raise ValueError (UsageError); a pair that cannot be scored is a row
    with an 'error' and never stops the others.
    """
    opts = make_options(metrics, crop_border, y_channel, device, backend, workers, prefetch, gpu_decode)
    ctx = distributed.current(process_group)
    return run_items(lambda: make_items(ref, pred, suffix), opts, ctx, to_all=True)
