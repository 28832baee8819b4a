"""The `fastiqa` command (also `python -m fastiqa`).

    fastiqa info     versions, what was built, which backend each family uses
    fastiqa demo     runs the ops built so far on the available devices and times
                     them against the plain PyTorch reference
    fastiqa eval     per-image PSNR / SSIM of a folder of predictions vs references
                     (torchrun -m fastiqa eval: across processes / GPUs)
    fastiqa human    human rating studies: init, serve, analyze, export
    fastiqa selftest every op on every backend and device vs the float64 oracle (exit 1 on a mismatch)
"""
import argparse
import sys

from . import demo as _demo
from . import selftest as _selftest
from ._version import __version__
from .evaluation import cli as _eval
from .human import cli as _human
from .info import info as _info


def _cmd_info(args) -> int:
    print(_info())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fastiqa", description="Fused image-restoration losses and metrics")
    parser.add_argument("--version", action="version", version=f"fastiqa {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("info", help="versions, built backends, backend choice per family")
    p.set_defaults(func=_cmd_info)
    p = sub.add_parser("demo", help="run the ops on the available devices, timed against the reference")
    _demo.add_arguments(p)
    p.set_defaults(func=_demo.run)
    p = sub.add_parser("eval", help="PSNR / SSIM of a folder of predictions against references")
    _eval.add_arguments(p)
    p.set_defaults(func=_eval.run)
    p = sub.add_parser("human", help="human rating studies: init, serve, analyze, export")
    _human.add_arguments(p)
    p.set_defaults(func=_human.run)
    p = sub.add_parser("selftest", help="every op, backend and device against the float64 oracle")
    _selftest.add_arguments(p)
    p.set_defaults(func=_selftest.run)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
