"""The `fastiqa` command (also `python -m fastiqa`).

    fastiqa info     versions, what was built, which backend each family uses
    fastiqa demo     runs the ops built so far on the available devices and times
                     them against the plain PyTorch reference
    fastiqa eval     per-image PSNR / SSIM of a folder of predictions vs references
    fastiqa human    human rating studies: init, serve, analyze, export
"""
import argparse
import sys

from . import demo as _demo
from .info import info as _info


def _cmd_info(args) -> int:
    _info(print_report=True)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fastiqa", description="Fused image-restoration losses and metrics")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("info", help="versions, built backends, backend choice per family")
    p.set_defaults(func=_cmd_info)
    p = sub.add_parser("demo", help="run the ops on the available devices, timed against the reference")
    _demo.add_arguments(p)
    p.set_defaults(func=_demo.run)
    from . import eval_cli as _eval  # `fastiqa eval`: folders of images, the published SR metrics

    p = sub.add_parser("eval", help="PSNR / SSIM of a folder of predictions against references")
    _eval.add_arguments(p)
    p.set_defaults(func=_eval.run)
    from .human import cli as _human  # `fastiqa human`: subjective studies (analysis needs the human extra)

    p = sub.add_parser("human", help="human rating studies: init, serve, analyze, export")
    _human.add_arguments(p)
    p.set_defaults(func=_human.run)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
