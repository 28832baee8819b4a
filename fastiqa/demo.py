"""`fastiqa demo`: every op built so far, on every available device, with values
and timings against the plain PyTorch reference (forward + backward).

Exit status: 0 done, 2 a bad argument or a device that cannot run here (one message)."""
import sys

import torch

from . import functional as F
from ._timing import time_ms
from .backends import reference as R
from .info import collect, format_report


def add_arguments(p):
    p.add_argument("--shape", default="8,3,256,256", help="N,C,H,W of the random images (default 8,3,256,256)")
    p.add_argument("--repeat", type=int, default=10, help="timed repetitions per op (default 10)")
    p.add_argument("--device", action="append", choices=["cpu", "cuda"], help="device(s); default: all available")


MIN_SIDE = 11  # ssim_loss / l1_ssim_loss: the image must hold one 11x11 window


def check_arguments(args):
    """(shape, devices) from the arguments, or ValueError naming the bad one."""
    try:
        shape = tuple(int(s) for s in args.shape.split(","))
    except ValueError:
        shape = ()
    if len(shape) != 4 or min(shape) < 1:
        raise ValueError(f"--shape {args.shape!r}: give N,C,H,W as four positive integers, e.g. 8,3,256,256")
    if min(shape[2:]) < MIN_SIDE:
        raise ValueError(f"--shape {args.shape}: H and W must be >= {MIN_SIDE} (the SSIM losses' 11x11 window)")
    if args.repeat < 1:
        raise ValueError(f"--repeat must be >= 1, got {args.repeat}")
    if "cuda" in (args.device or ()) and not torch.cuda.is_available():
        why = "this torch was built without CUDA" if torch.version.cuda is None else "no GPU is visible"
        raise ValueError(f"--device cuda: no CUDA device is available ({why}; torch {torch.__version__})")
    return shape, args.device or (["cpu"] + (["cuda"] if torch.cuda.is_available() else []))


def _time_fwd_bwd(fn, x, y, repeat, device):
    def step():
        x.grad = None
        loss = fn(x, y)
        loss.backward()
        return loss

    loss, ms = time_ms(step, repeat, device)
    return loss.detach(), ms


def pixel_cases():
    return [
        ("l1_loss", F.l1_loss, R.l1_loss),
        ("mse_loss", F.mse_loss, R.mse_loss),
        ("charbonnier_loss", F.charbonnier_loss, R.charbonnier_loss),
        ("ssim_loss", F.ssim_loss, lambda x, y: 1 - R.ssim(x, y)),
        ("l1_ssim_loss", F.l1_ssim_loss, R.l1_ssim_loss),
    ]


def gram_cases():
    # the images themselves as (N, C, H, W) features
    return [
        ("style_loss", lambda x, y: F.style_loss(x, y), lambda x, y: R.style_loss(x, y)),
        ("gram_matrix", lambda x, y: F.gram_matrix(x).sum(), lambda x, y: R.gram_matrix(x).sum()),
    ]


def run(args) -> int:
    try:
        shape, devices = check_arguments(args)
    except ValueError as exc:
        print(f"fastiqa demo: {exc}", file=sys.stderr)
        return 2
    print(format_report(collect()))
    from . import eval_demo  # the published SR evaluation on the shipped photographs

    eval_demo.run(args)
    print(f"\nforward+backward on random {shape} float32 images, {args.repeat} repetitions")
    print(f"{'device':<6} {'op':<18} {'fastiqa':>12} {'reference':>12} {'|diff|':>9} "
          f"{'fastiqa ms':>11} {'ref ms':>9} {'speed-up':>9}")
    for name in devices:
        device = torch.device(name)
        gen = torch.Generator(device="cpu").manual_seed(0)
        target = torch.rand(shape, generator=gen).to(device)
        pred = (target + 0.1 * torch.randn(shape, generator=gen).to(device)).clamp(0, 1)
        for op, fast, ref in pixel_cases() + gram_cases():
            x = pred.clone().requires_grad_(True)
            v_fast, t_fast = _time_fwd_bwd(fast, x, target, args.repeat, device)
            v_ref, t_ref = _time_fwd_bwd(ref, x, target, args.repeat, device)
            diff = abs(float(v_fast) - float(v_ref))
            print(
                f"{name:<6} {op:<18} {float(v_fast):>12.6f} {float(v_ref):>12.6f} {diff:>9.1e} "
                f"{t_fast:>11.3f} {t_ref:>9.3f} {t_ref / t_fast:>8.1f}x"
            )
    return 0
