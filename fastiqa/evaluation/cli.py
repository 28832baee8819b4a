"""`fastiqa eval`: per-image PSNR / SSIM / MS-SSIM / MSE / MAE of a folder of
predictions against a folder of references, the published way.

    fastiqa eval --ref HR/ --pred SR/ --scale 4 --y-channel --csv out.csv
    torchrun --nproc-per-node 4 -m fastiqa eval --ref HR/ --pred SR/ --scale 4 --y-channel

Pairs files by name: reference `NAME.ext` goes with prediction `NAME<suffix>.ext2`
(--suffix _x4_SR for BasicSR's result names). Reading rules: fastiqa._imageio and
fastiqa.evaluation.pipeline. --scale K crops K pixels from each border (as
--crop-border K). Prints a table and the mean; --csv / --json write them. A pair
that is missing, unreadable or of another size is reported once (by rank 0 under
torchrun), is a row with its reason in the CSV and JSON, and is left out of the
mean; a metric that cannot run on a pair fails that cell only. The exit status is
then 1 (2 for bad arguments, an output that cannot be written included: checked
before the first pair is read), 0 when every pair and cell counted. File names that
are not UTF-8 are written escaped (fastiqa.evaluation.report.text).
"""
import contextlib
import os
import sys
import time

from .. import metrics as M
from . import distributed, report
from .api import make_items, run_items
from .options import UsageError, make_options


def add_arguments(p):
    p.add_argument("--ref", required=True, help="folder of reference (ground-truth) images")
    p.add_argument("--pred", required=True, help="folder of predicted (restored) images")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--scale", type=int, help="SR scale: crops that many pixels from each border")
    g.add_argument("--crop-border", type=int, help="pixels cropped from each border (default 0)")
    p.add_argument("--y-channel", action="store_true", help="compare the BT.601 Y channel (published SR tables)")
    p.add_argument("--metrics", default="psnr,ssim",
                   help=f"comma-separated: {', '.join(M.SR_METRICS)} (default psnr,ssim)")
    p.add_argument("--suffix", default="", help="prediction name = reference name + suffix (e.g. _x4_SR)")
    p.add_argument("--device", choices=["cpu", "cuda"],
                   help="default: cuda when available (under torchrun the GPU of LOCAL_RANK), else cpu")
    p.add_argument("--backend", choices=["reference", "cpu", "cuda", "triton"], help="force the kernels' backend")
    p.add_argument("--csv", help="write the per-image table (failures and the mean included) to this CSV file")
    p.add_argument("--json", help="write the results to this JSON file")
    p.add_argument("--workers", type=int, default=2, help="image-decoding threads per process (default 2)")
    p.add_argument("--prefetch", type=int, help="decoded pairs held in memory per process (default 2 x workers)")
    p.add_argument("--gpu-decode", action="store_true", help="decode JPEG on the GPU (CUDA, needs torchvision)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--quiet", action="store_true", help="print only the mean")


def _emit(line, stream):
    """print that never fails on a character the stream cannot encode (\\x escapes)."""
    enc = getattr(stream, "encoding", None) or "utf-8"
    print(report.text(line).encode(enc, "backslashreplace").decode(enc), file=stream)


def _err(msg):
    _emit(f"fastiqa eval: {msg}", sys.stderr)


class _Progress:
    """On a terminal: tqdm when installed, else one updating line; nothing when stderr is a file
    or a pipe (a log gets the messages, not bar redraws). The bar opens at the first scored
    pair: a run that stops on a usage error first prints its one message and no empty bar."""

    def __init__(self):
        self.bar = None
        self.n, self.tty = 0, sys.stderr.isatty()

    def __call__(self, k):
        if self.bar is None and self.n == 0 and self.tty:
            try:
                from tqdm import tqdm  # optional (fastiqa[eval])

                self.bar = tqdm(unit="pair", file=sys.stderr, leave=False)
            except ImportError:
                pass
        if self.bar is not None:
            self.bar.update(k)
            return
        self.n += k
        if self.tty:
            print(f"\r{self.n} pairs", end="", file=sys.stderr, flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()
        elif self.tty:
            print(file=sys.stderr)


def _check_writable(out, option):
    """UsageError unless `out` can be written: not a directory, its folder exists, and a
    file can be opened there (an existing file is opened for appending, untouched; a
    new one is created and removed)."""
    if os.path.isdir(out):
        raise UsageError(f"cannot write {option} {out!r}: it is a directory")
    folder = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(folder):
        raise UsageError(f"cannot write {option} {out!r}: its folder does not exist")
    existed = os.path.lexists(out)
    try:
        with open(out, "a", encoding="utf-8"):
            pass
    except OSError as exc:
        raise UsageError(f"cannot write {option} {out!r}: {exc.strerror or exc}") from None
    if not existed:
        with contextlib.suppress(OSError):
            os.remove(out)


def _check_outputs(args):
    """Before any pair is read: each output can be written, and they are two files."""
    outs = [(out, option) for out, option in ((args.csv, "--csv"), (args.json, "--json")) if out]
    for out, option in outs:
        _check_writable(out, option)
    if len(outs) == 2 and os.path.abspath(outs[0][0]) == os.path.abspath(outs[1][0]):
        raise UsageError(f"--csv and --json name the same file {outs[0][0]!r}")


def _work_list(args):
    """Runs on rank 0 only (its result or its error goes to every rank)."""
    _check_outputs(args)
    return make_items(args.ref, args.pred, args.suffix)


def _evaluate(args, ctx, device):
    crop = args.scale if args.scale is not None else (args.crop_border or 0)
    opts = make_options(args.metrics, crop, args.y_channel, device, args.backend, args.workers, args.prefetch,
                        args.gpu_decode)
    bar = None
    if ctx.rank == 0 and not args.no_progress:
        bar = _Progress()
    t0 = time.perf_counter()
    try:
        res = run_items(lambda: _work_list(args), opts, ctx, to_all=False, progress=bar)
    finally:
        if bar is not None:
            bar.close()
    if res is None:  # not rank 0: rank 0 reports
        return 0
    wall = time.perf_counter() - t0
    _print(args, opts, ctx, res, wall)
    written = _write(args, opts, res)
    if res.errors:
        cells = len(res.errors) - (len(res.rows) - len(res.images))
        what = f", {cells} metric value(s) missing" if cells else ""
        _err(f"{len(res.errors)} problem(s); {len(res.images)} of {len(res.rows)} pairs scored{what}")
    return 0 if written and not res.errors else 1


def _print(args, opts, ctx, res, wall):
    for r in res.rows:
        for note in r.get("notes", ()):
            _err(f"note: {note}")
    for line in report.problems(res.rows, opts.crop_border):
        _err(line)
    if args.quiet:
        _emit(report.summary(opts.metrics, res.means), sys.stdout)
        return
    _emit(report.format_table(res.rows, opts.metrics, res.means), sys.stdout)
    conv = f"crop {opts.crop_border}, {'Y channel' if opts.y_channel else 'RGB'}"
    where = opts.device.type if ctx.world == 1 else f"{ctx.world} ranks ({ctx.backend}, {opts.device.type})"
    rate = len(res.rows) / wall if wall > 0 else float("inf")
    print(f"{len(res.images)} image pair(s) on {where} ({conv}); {wall:.2f} s, {rate:.1f} pairs/s; "
          f"decoding {res.stats['decode_s']:.2f} s (thread time), metrics {res.stats['metric_s']:.2f} s")


def _write(args, opts, res) -> bool:
    """Writes the CSV and the JSON, each whatever happens to the other; False (and a
    message) when one could not be written."""
    settings = {"ref": args.ref, "pred": args.pred, "suffix": args.suffix, "crop_border": opts.crop_border,
                "y_channel": opts.y_channel}
    jobs = []
    if args.csv:
        jobs.append(("--csv", args.csv, lambda: report.write_csv(args.csv, res.rows, opts.metrics, res.means)))
    if args.json:
        jobs.append(("--json", args.json, lambda: report.write_json(
            args.json, report.json_document(res.rows, opts.metrics, res.means, settings))))
    ok = True
    for option, path, write in jobs:
        try:
            write()
        except (OSError, ValueError) as exc:
            ok = False
            _err(f"could not write {option} {path!r}: {type(exc).__name__}: {exc}")
    return ok


def run(args) -> int:
    """`fastiqa eval`: the exit status (0 all counted, 1 some pairs failed, 2 bad
    arguments, 130 interrupted), the same on every rank."""
    ctx = distributed.Context()
    try:
        ctx, device = distributed.init_from_env(args.device)
        rc = _evaluate(args, ctx, device)
    except UsageError as exc:
        rc, msg = 2, str(exc)
    except KeyboardInterrupt:
        rc, msg = 130, "interrupted"
    except Exception as exc:  # a message, never a traceback
        rc, msg = 1, f"failed: {type(exc).__name__}: {exc}"
    else:
        msg = None
    if msg is not None and ctx.rank == 0:
        _err(msg)
    try:
        if rc != 130:
            rc = distributed.broadcast(rc, ctx)  # rank 0's verdict (it alone saw the gathered results)
    finally:
        distributed.teardown(ctx)
    return rc
