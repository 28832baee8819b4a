"""Shared benchmark machinery (pytest-benchmark); import as `from harness import ...`.

Every benchmark measures one implementation ("fastiqa", "eager" reference,
"compiled" = torch.compile of the reference, or a peer library; the pixel and PSNR
benchmarks also "kernel": fastiqa's op called directly, below autograd, as
kernel_step() does, so that the gap between "kernel" and "fastiqa" is the per-call
cost of the Python layer and the autograd engine) of one op at
one shape/dtype/device, and records in extra_info:
  floor_bytes   the fewest bytes the op must move (each input read once, each
                output written once)
  fmas          the FMAs the op must do (its arithmetic, counted by each benchmark)
  ratio_eager   eager median / this median, same process, same inputs
  floor_frac    (floor_bytes / copy bandwidth) / this median: 1.0 = at the floor
  gbps, gfma_s  achieved GB/s (floor_bytes / median) and GFMA/s (fmas / median)
  bw_frac, fma_frac, roof_frac   each as a fraction of the machine's limit measured in
                the same run (benchmarks/machine_limits.py: the bandwidth is the faster of a
                large triad's (DRAM) and a copy of the op's own size (the cache level its
                tensors live in: 6 MB tensors stay in a 32 MB L3, where a DRAM floor would
                flatter the kernel), the FMA rate a large GEMM's at the session's thread
                count, per ISA variant); roof_frac = max(bytes / bandwidth, FMAs / FMA rate)
                / median: 1.0 = at the floor
  min_s, roof_frac_best   the fastest round and roof_frac from it: the limits are best-of
                runs too, so this compares like with like; on a shared or virtual machine the
                median also carries the neighbours' noise (both are reported)
The eager reference of each case runs first (see impl ordering), so the ratio is
always against a number measured in the same run. A summary table is printed at
the end of the session.

FASTIQA_BENCH_SMOKE=1 (set by .ci/run, with --benchmark-disable) shrinks shapes
so the suite only proves that every benchmark runs; each case is then timed once by
hand so that the limit and roofline arithmetic runs too (its rows are printed, written
only when FASTIQA_BENCH_ROWS names a path; the numbers mean nothing).

Machine-readable rows: every measured case is also written, at the end of the
session, as one row of bench-<isa>-<time>.csv and .json in benchmarks/results/ (git
ignores them: a run leaves the clone clean; or FASTIQA_BENCH_ROWS=<path prefix>) with
the CPU ISA variant (FASTIQA_CPU_ISA, see fastiqa.cpu_isa), CPU model, cores,
threads, versions and date, so that runs on several machines and variants can be
compared and plotted (benchmarks/plot_speedups.py). Numbers worth keeping go into
benchmarks/RESULTS.md with their command.
"""
import csv
import datetime
import json
import os
import platform
import time

import torch
from machine_limits import limits, roofline

import fastiqa
from fastiqa import cpu_isa
from fastiqa.cpu_isa import cpu_model

SMOKE = os.environ.get("FASTIQA_BENCH_SMOKE", "0") == "1"
IMPLS = ("eager", "fastiqa", "compiled")  # eager first: the others' ratios need it
_EAGER = {}
ROWS = []
_BANDWIDTH = {}


def devices():
    out = ["cpu"]
    if torch.cuda.is_available():
        out.append("cuda")
    return out


def sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def copy_bandwidth(device, nbytes):
    """Bytes/s of a tensor copy of `nbytes` (read + write), the memory floor's yardstick,
    measured at the op's own size so that cache effects match."""
    key = (str(device), nbytes)
    if key not in _BANDWIDTH:
        src = torch.empty(max(nbytes // 4, 1), dtype=torch.float32, device=device).uniform_()
        dst = torch.empty_like(src)
        for _ in range(3):
            dst.copy_(src)
        sync(device)
        reps = 20
        best = float("inf")
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(reps):
                dst.copy_(src)
            sync(device)
            best = min(best, (time.perf_counter() - t0) / reps)
        _BANDWIDTH[key] = 2 * src.numel() * 4 / best
    return _BANDWIDTH[key]


KERNEL = "kernel"  # not a peer: left out of the speed-ups


def kernel_step(op, *args):
    """A step calling fastiqa's registered op `op` (an OpOverload) with args below the autograd
    key: no Python function layer, no autograd graph, no backward; a kernel that writes the
    gradient in its forward pass (need_grad) still does so. The outputs are dropped at once:
    the buffer pool then hands the same gradient buffer to the next call, as a training step's
    backward does (a kept result made every call fault in fresh pages)."""
    below = torch._C._AutoDispatchBelowAutograd

    def step():
        with below():
            op(*args)
    return step


def loss_step(fn, pred, target, mode):
    """(step, inputs' worth of memory traffic) of a loss: mode "fwd" runs fn(pred, target) without
    grad (reads 2 inputs); "fwdbwd" runs it and backward into a grad-requiring copy of pred
    (reads 2, writes 1)."""
    if mode == "fwd":
        def step():
            with torch.no_grad():
                return fn(pred, target)
        return step, 2
    x = pred.detach().clone().requires_grad_(True)

    def step():
        x.grad = None
        loss = fn(x, target)
        loss.backward()
        return loss
    return step, 3


def run_case(benchmark, case_key, impl, fn, floor_bytes, device, rounds=None, fmas=0):
    """Benchmarks fn() and records ratio to eager, fraction of the memory floor, and bytes,
    FMAs, GB/s, GFMA/s and fractions of the machine's limits (machine_limits.py)."""
    def timed():
        out = fn()
        sync(device)
        return out

    rounds = rounds or (1 if SMOKE else 20)
    t0 = time.perf_counter()
    benchmark.pedantic(timed, rounds=rounds, iterations=1, warmup_rounds=0 if SMOKE else 3)
    once = time.perf_counter() - t0
    stats = getattr(benchmark, "stats", None)
    if stats is None or not hasattr(stats, "stats"):  # --benchmark-disable
        if not SMOKE:
            return
        median = best = once  # smoke: one call timed by hand, so that the arithmetic below runs
    else:
        median, best = stats.stats.median, stats.stats.min
    if impl == "eager":
        _EAGER[case_key] = median
    ratio = _EAGER.get(case_key, float("nan")) / median
    per_tensor = floor_bytes  # floor_bytes already totals every tensor moved
    floor_s = per_tensor / copy_bandwidth(device, max(per_tensor // 3, 1 << 16))
    lim = dict(limits(device))
    lim["bw_dram"] = lim["bw"]  # the large triad; the op's own size may live in a cache level
    lim["bw"] = max(lim["bw"], per_tensor / floor_s)
    roof = roofline(floor_bytes, fmas, median, lim)
    roof["roof_frac_best"] = roofline(floor_bytes, fmas, best, lim)["roof_frac"]
    benchmark.extra_info.update(floor_bytes=floor_bytes, fmas=fmas, ratio_eager=round(ratio, 3),
                                floor_frac=round(floor_s / median, 3),
                                **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in roof.items()})
    ROWS.append((case_key, impl, median, ratio, floor_s / median, roof))
    record(case_key, impl, device, median, ratio, floor_s / median, floor_bytes, rounds, fmas=fmas, roof=roof,
           lim=lim, best=best)


def record(case_key, impl, device, median, ratio_eager=float("nan"), floor_frac=float("nan"), floor_bytes=0,
           rounds=0, fmas=0, roof=None, lim=None, best=float("nan")):
    """Adds one machine-readable row (written at the end of the session by write_rows). Every
    row has the same fields (NaN where a benchmark has no roofline)."""
    nan = float("nan")
    roof = roof or {}
    lim = lim or {}
    RECORDS.append(dict(case=case_key, impl=impl, device=str(device), median_s=median, ratio_eager=ratio_eager,
                        floor_frac=floor_frac, floor_bytes=floor_bytes, rounds=rounds,
                        isa=_isa() if torch.device(device).type == "cpu" else "cuda",
                        fmas=fmas, gbps=roof.get("gbps", nan), gfma_s=roof.get("gfma_s", nan),
                        bw_frac=roof.get("bw_frac", nan), fma_frac=roof.get("fma_frac", nan),
                        roof_frac=roof.get("roof_frac", nan), bound=roof.get("bound", ""),
                        min_s=best, roof_frac_best=roof.get("roof_frac_best", nan),
                        bw_limit_gbps=lim.get("bw", nan) / 1e9, bw_dram_gbps=lim.get("bw_dram", nan) / 1e9,
                        fma_limit_gfma_s=lim.get("fma", nan) / 1e9,
                        fma_1t_gfma_s=lim.get("fma_1t", nan) / 1e9, limit_threads=lim.get("threads", 0),
                        gemm_isa=lim.get("gemm_isa", "")))


RECORDS = []  # dict rows of ROWS plus the machine fields (write_rows)


def _isa():
    try:
        return cpu_isa.active()
    except RuntimeError as exc:  # extension not built: the CPU rows ran on the reference
        return f"none ({exc})"


def machine():
    """The fields every row carries: where, with what, when."""
    return dict(cpu_model=cpu_model(), cores=os.cpu_count(), threads=torch.get_num_threads(),
                isa_available=" ".join(cpu_isa.available()), fastiqa=fastiqa.__version__, torch=torch.__version__,
                python=platform.python_version(), machine=platform.machine(),
                gpu=torch.cuda.get_device_name(0) if torch.cuda.is_available() else "",
                date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))


def speedups():
    """(case, impl, fastiqa's speed-up over impl) for every case where both ran."""
    by_case = {}
    for r in RECORDS:
        by_case.setdefault(r["case"], {})[r["impl"]] = r["median_s"]
    out = []
    for case, meds in by_case.items():
        if "fastiqa" in meds:
            out += [(case, impl, m / meds["fastiqa"]) for impl, m in meds.items() if impl not in ("fastiqa", KERNEL)]
    return out


def write_rows():
    """Writes RECORDS with the machine fields as CSV and JSON; returns the path prefix."""
    if not RECORDS:
        return None
    prefix = os.environ.get("FASTIQA_BENCH_ROWS")
    if SMOKE and not prefix:
        return None  # smoke rows prove the code runs; kept only where asked for
    m = machine()
    if not prefix:
        stamp = m["date"].replace(":", "").replace("-", "")[:15]
        isa = RECORDS[0]["isa"].split()[0]
        prefix = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", f"bench-{isa}-{stamp}")
    os.makedirs(os.path.dirname(os.path.abspath(prefix)), exist_ok=True)
    rows = [dict(r, **m) for r in RECORDS]
    with open(prefix + ".json", "w") as f:
        json.dump(rows, f, indent=1)
    with open(prefix + ".csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return prefix
