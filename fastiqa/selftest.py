"""`fastiqa selftest` (also `python -m fastiqa selftest`): the first thing to run on a new
machine or GPU. Every op family on every available backend on every visible device
against the float64 oracle (the reference backend run in float64), values and
gradients, a few shapes (odd ones included), each dtype; a quick timing against the
eager reference; one verdict per row. Exit status: 0 every row passes, 1 a row fails
or errs, 2 a bad argument, a device or backend that cannot run here, or no row to run
(one message, never a traceback: a gate that ran nothing must not pass).

Accuracy rule: fastiqa.testing (k x the error of the same-precision reference + eps).
For float64 results that rule leaves only eps(float64) * max|oracle| (the
same-precision reference is the oracle itself), less than one rounding of a sum in
another order; float64 rows are allowed F64_ULPS such roundings instead.
"""
import json
import os
import sys
import time

import torch

from . import functional as F
from ._timing import time_ms
from .backends import reference as R
from .functional._heads import dists_head, lpips_head
from .ops import _dispatch
from .testing import assert_close, error_bound

F64_ULPS = 64
DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)
SHAPES = ((2, 3, 17, 19), (1, 3, 32, 33))
TRITON_CPU_SHAPES = ((1, 3, 12, 13),)  # the Triton interpreter is slow: one small odd shape


def check(result, oracle, same_precision, what="result"):
    """assert_close of fastiqa.testing; float64 results: |result - oracle| <= F64_ULPS eps max(1, |oracle|)."""
    if result.dtype == torch.float64:
        r, o = result.detach().double().cpu(), oracle.detach().double().cpu()
        err = float((r - o).abs().max()) if r.numel() else 0.0
        bound = F64_ULPS * torch.finfo(torch.float64).eps * max(1.0, float(o.abs().max()) if o.numel() else 1.0)
        if not err <= bound:
            raise AssertionError(f"{what}: max abs error {err:.3e} > float64 bound {bound:.3e}")
        return
    assert_close(result, oracle, same_precision, what=what)


def _bound(result, oracle, same):
    if result.dtype == torch.float64:
        return F64_ULPS * torch.finfo(torch.float64).eps * max(1.0, float(oracle.abs().max()))
    return error_bound(oracle.detach().double().cpu(), same.detach().cpu(), result.dtype)


# (family, name, fastiqa op (x, y, backend) -> tensor, reference op (x, y) -> tensor)
OPS = (
    ("pixel", "l1_loss", lambda x, y, b: F.l1_loss(x, y, backend=b), R.l1_loss),
    ("pixel", "mse_loss", lambda x, y, b: F.mse_loss(x, y, backend=b), R.mse_loss),
    ("pixel", "charbonnier_loss", lambda x, y, b: F.charbonnier_loss(x, y, backend=b), R.charbonnier_loss),
    ("ssim", "ssim", lambda x, y, b: F.ssim(x, y, backend=b), lambda x, y: R.ssim(x, y)),
    ("ssim", "ssim_reflect_w7", lambda x, y, b: F.ssim(x, y, win_size=7, padding="same_reflect", backend=b),
     lambda x, y: R.ssim(x, y, win_size=7, padding="same_reflect")),
    ("psnr", "mse", lambda x, y, b: F.mse(x, y, reduction="none", backend=b), lambda x, y: R.mse_per_image(x, y)),
    # PSNR is 10 log10(R^2 / mse): the kernels compute the MSE (float16 PSNR gradients of the
    # reference itself overflow, which leaves no same-precision yardstick)
    ("psnr", "mse_y_crop", lambda x, y, b: F.mse(x, y, reduction="none", y_channel=True, crop_border=2, backend=b),
     lambda x, y: R.mse_per_image(x, y, y_channel=True, crop_border=2)),
    ("gram", "gram_matrix", lambda x, y, b: F.gram_matrix(x, backend=b), lambda x, y: R.gram_matrix(x)),
    ("gram", "style_loss", lambda x, y, b: F.style_loss(x, y, backend=b), lambda x, y: R.style_loss(x, y)),
    # the LPIPS / DISTS distance heads on one layer of (N, C, H, W) features (x, y stand for them)
    # (the reference computes 16-bit features in float32, as the kernels do: the heads' contract)
    ("perceptual", "lpips_head", lambda x, y, b: lpips_head([x], [y], [_head_weight(x, 1)], backend=b),
     lambda x, y: R.lpips_head([_acc(x)], [_acc(y)], [_head_weight(x, 1)])),
    ("perceptual", "dists_head", lambda x, y, b: dists_head([x], [y], [_head_weight(x, 2)], backend=b),
     lambda x, y: R.dists_head([_acc(x)], [_acc(y)], [_head_weight(x, 2)])),
)


def _acc(x):
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def _head_weight(x, rows):
    """A fixed non-negative head weight for x's channels: (C,) for LPIPS, (2, C) for DISTS,
    in the accumulator dtype (float64 for the oracle)."""
    c = x.shape[1]
    w = torch.linspace(0.2, 1.0, rows * c, dtype=torch.float64, device=x.device) / (rows * c)
    w = w.to(torch.float64 if x.dtype == torch.float64 else torch.float32)
    return w if rows == 1 else w.view(rows, c)


def _inputs(shape, dtype, device, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g, dtype=torch.float64)
    y = (x + 0.1 * torch.randn(shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    return x.to(device=device, dtype=dtype), y.to(device=device, dtype=dtype)


def _value_and_grad(fn, x, y):
    """fn(x, y) and d(sum fn)/dx, with x a fresh leaf."""
    x = x.detach().clone().requires_grad_(True)
    out = fn(x, y)
    (grad,) = torch.autograd.grad(out.sum(), x)
    return out.detach(), grad


def _ms(fn, x, y, device, repeat):
    return time_ms(lambda: _value_and_grad(fn, x, y), repeat, device, warmup=1)[1]


def _backends(device, kernel_names):
    out = []
    for b in _dispatch.BACKENDS:
        ok = all(_dispatch.available(b, device, k)[0] for k in kernel_names)
        if ok:
            out.append(b)
    return out


KERNEL = {"pixel": "pixel_fwd", "ssim": "ssim_fwd", "psnr": "psnr_fwd", "gram": "gram_fwd",
          "perceptual": "lpips_head_fwd"}


def run_rows(devices, backends=None, families=None, shapes=SHAPES, dtypes=DTYPES, repeat=3):
    """One dict per (op, backend, device, dtype, shape) with the verdict."""
    rows = []
    for device in devices:
        for family, name, op, ref in OPS:
            if families and family not in families:
                continue
            for backend in _backends(device, [KERNEL[family]]):
                if backends and backend not in backends:
                    continue
                row_shapes = TRITON_CPU_SHAPES if backend == "triton" and device.type == "cpu" else shapes
                for dtype in dtypes:
                    for si, shape in enumerate(row_shapes):
                        rows.append(_row(family, name, op, ref, backend, device, dtype, shape, si, repeat))
    return rows


def _row(family, name, op, ref, backend, device, dtype, shape, seed, repeat):
    row = dict(family=family, op=name, backend=backend, device=str(device), dtype=str(dtype).replace("torch.", ""),
               shape="x".join(map(str, shape)))
    x, y = _inputs(shape, dtype, device, seed)
    try:
        v, g = _value_and_grad(lambda a, b: op(a, b, backend), x, y)
        v64, g64 = _value_and_grad(ref, x.double(), y.double())
        vs, gs = _value_and_grad(ref, x, y)
        row["value_err"] = float((v.double().cpu() - v64.cpu()).abs().max())
        row["value_bound"] = _bound(v, v64, vs)
        row["grad_err"] = float((g.double().cpu() - g64.cpu()).abs().max())
        row["grad_bound"] = _bound(g, g64, gs)
        check(v, v64, vs, f"{name} value")
        check(g, g64, gs, f"{name} gradient")
        row["verdict"] = "PASS"
    except AssertionError as e:
        row["verdict"], row["why"] = "FAIL", str(e)
    except Exception as e:  # noqa: BLE001 - an op that raises is a failed row, reported as such
        row["verdict"], row["why"] = "ERROR", f"{type(e).__name__}: {e}"
    if seed == 0 and row["verdict"] == "PASS" and repeat > 0:
        row["ms"] = _ms(lambda a, b: op(a, b, backend), x, y, device, repeat)
        row["ref_ms"] = _ms(ref, x, y, device, repeat)
    return row


def _format(rows, seconds=None):
    lines = [f"{'family':6} {'op':17} {'backend':9} {'device':7} {'dtype':8} {'shape':10} "
             f"{'value err/bound':>19} {'grad err/bound':>19} {'ms (ref ms)':>15}  verdict"]
    for r in rows:
        ve = f"{r['value_err']:.1e}/{r['value_bound']:.1e}" if "value_err" in r else "-"
        ge = f"{r['grad_err']:.1e}/{r['grad_bound']:.1e}" if "grad_err" in r else "-"
        t = f"{r['ms']:.2f} ({r['ref_ms']:.2f})" if "ms" in r else ""
        lines.append(f"{r['family']:6} {r['op']:17} {r['backend']:9} {r['device']:7} {r['dtype']:8} {r['shape']:10} "
                     f"{ve:>19} {ge:>19} {t:>15}  {r['verdict']}" + (f"  {r['why']}" if "why" in r else ""))
    bad = sum(r["verdict"] != "PASS" for r in rows)
    lines.append(f"selftest: {len(rows) - bad} of {len(rows)} rows pass" + ("" if not bad else f", {bad} FAIL/ERROR")
                 + ("" if seconds is None else f" ({seconds:.0f} s)"))
    return "\n".join(lines)


class UsageError(ValueError):
    """A bad argument or a device / backend that cannot run here: one message, exit 2."""


def _devices(requested):
    if not requested:
        devs = [torch.device("cpu")]
        if torch.cuda.is_available():
            devs += [torch.device("cuda", i) for i in range(torch.cuda.device_count())]
        return devs
    out = []
    for name in requested:
        try:
            dev = torch.device(name)
        except (RuntimeError, ValueError):
            raise UsageError(f"--device {name!r} is not a device; use e.g. cpu, cuda, cuda:1") from None
        if dev.type == "cuda":
            if not torch.cuda.is_available():
                why = "this torch was built without CUDA" if torch.version.cuda is None else "no GPU is visible"
                raise UsageError(f"--device {name}: no CUDA device is available ({why}; torch {torch.__version__})")
            if dev.index is not None and dev.index >= torch.cuda.device_count():
                raise UsageError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) are visible")
        elif dev.type != "cpu":
            raise UsageError(f"--device {name}: selftest runs on cpu and cuda devices")
        out.append(dev)
    return out


def _check_backends(devices, backends, families):
    """Every backend asked for by name must run some family on some device asked for."""
    for b in backends or ():
        found = [(dev, _dispatch.available(b, dev, KERNEL[fam])) for dev in devices for fam in families or KERNEL]
        if not any(ok for _, (ok, _) in found):
            why = "; ".join(dict.fromkeys(f"{dev}: {reason}" for dev, (_, reason) in found))
            raise UsageError(f"--backend {b} cannot run here, so it would check nothing ({why})")


PARSER_TEXT = dict(
    description="Every op family on every available backend and device against the float64 oracle "
                "(values and gradients, every dtype); one verdict per row.",
    epilog="Exit status: 0 every row passes; 1 a row fails or errs (the gate of a new machine or GPU); 2 a bad "
           "argument, a device or a backend that cannot run here, or no row to run.",
)


def add_arguments(p):
    p.add_argument("--json", action="store_true", help="print the rows as JSON (for bug reports)")
    p.add_argument("--device", action="append", help="device(s), e.g. cpu, cuda:0; default: every visible one")
    p.add_argument("--backend", action="append", choices=_dispatch.BACKENDS, help="backend(s); default: all available")
    p.add_argument("--family", action="append", choices=sorted(KERNEL), help="op families; default: all")
    p.add_argument("--quick", action="store_true", help="one shape, no timing")


def _usage(msg) -> int:
    print(f"fastiqa selftest: {msg}", file=sys.stderr)
    return 2


def run(args) -> int:
    shapes = SHAPES[:1] if args.quick else SHAPES
    try:
        devices = _devices(args.device)
        _check_backends(devices, args.backend, args.family)
    except UsageError as exc:
        return _usage(exc)
    # Triton interpreted on the CPU is slow: its rows use the smallest shape only
    t0 = time.perf_counter()
    rows = run_rows(devices, args.backend, args.family, shapes, repeat=0 if args.quick else 3)
    seconds = time.perf_counter() - t0
    if not rows:  # not reached with the checks above; a gate that ran nothing must not pass
        return _usage("no row ran: no backend can run the chosen families on the chosen devices")
    if args.json:
        print(json.dumps({"torch": torch.__version__, "triton_interpret": os.environ.get("TRITON_INTERPRET", "0"),
                          "seconds": round(seconds, 1), "rows": rows}, indent=1))
    else:
        print(_format(rows, seconds))
    return 0 if all(r["verdict"] == "PASS" for r in rows) else 1


def main(argv=None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="fastiqa selftest", **PARSER_TEXT)
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
