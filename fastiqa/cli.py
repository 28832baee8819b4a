"""The `fastiqa` command (also `python -m fastiqa`).

    fastiqa info     versions, what was built, which backend each family uses
    fastiqa demo     runs the ops built so far on the available devices and times
                     them against the plain PyTorch reference
    fastiqa eval     per-image PSNR / SSIM of a folder of predictions vs references
                     (torchrun -m fastiqa eval: across processes / GPUs)
    fastiqa human    human rating studies: init, serve, analyze, export
    fastiqa selftest every op on every backend and device vs the float64 oracle (exit 1 on a mismatch)
    fastiqa weights  the ImageNet backbones of LPIPS / DISTS / PerceptualLoss: list, fetch NAME

Exit status of every command: 0 done, 1 a failure it reports (a selftest row, an
eval pair, a study's files), 2 a bad argument or a device / backend that cannot run
here (one message on stderr, never a traceback).

`fastiqa --version` answers without importing torch: this module imports a
command's module only when the parser is built, and fastiqa/__init__.py skips its
imports for that one call.
"""
import argparse
import sys

from ._version import __version__

COMMANDS = ("info", "demo", "eval", "human", "selftest", "weights", "cpu-tune")


def _cmd_info(args) -> int:
    from .info import info

    print(info())
    return 0


def _cmd_weights(args) -> int:
    from . import weights

    if args.action == "list":
        for r in weights.status():
            where = f"{r['path']} ({r['source']})" if r["path"] else "absent"
            print(f"{r['name']:<14} {r['file']:<28} {where}")
        return 0
    unknown = [n for n in args.names if n not in weights.BACKBONES]
    if not args.names or unknown:
        print(f"fastiqa weights fetch: give backbone names from {', '.join(weights.BACKBONES)}"
              + (f"; unknown: {', '.join(unknown)}" if unknown else ""), file=sys.stderr)
        return 2
    rc = 0
    for name in args.names:
        try:
            r = weights.fetch(name, args.dir)
        except (weights.WeightsNotFoundError, weights.WeightsMismatchError) as exc:
            print(f"fastiqa weights fetch: {exc}", file=sys.stderr)
            rc = 1
            continue
        print(f"{name}: {r.path} (sha256 {r.sha256})")
    return rc


def _cmd_cpu_tune(args) -> int:
    from . import cpu_tune

    try:
        entry = cpu_tune.tune(rounds=args.rounds, save=not args.no_save)
    except RuntimeError as exc:
        print(f"{exc}", file=sys.stderr)
        return 2
    print(f"{'family':<8} {'level':<9} measured (best of {args.rounds} rounds; {entry['threads']} threads)")
    for family, r in entry["families"].items():
        ms = ", ".join(f"{lv} {t:.3g} ms" for lv, t in r["ms"].items()) or r["reason"]
        print(f"{family:<8} {r['level']:<9} {ms}")
    print(f"saved to {entry['file']}" if "file" in entry else "not saved (--no-save)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from . import demo as _demo
    from . import selftest as _selftest
    from .evaluation import cli as _eval
    from .human import cli as _human

    parser = argparse.ArgumentParser(prog="fastiqa", description="Fused image-restoration losses and metrics",
                                     epilog="Exit status: 0 done, 1 a failure the command reports, 2 bad arguments "
                                            "or a device / backend that cannot run here.")
    parser.add_argument("--version", action="version", version=f"fastiqa {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    p = sub.add_parser("info", help="versions, built backends, backend choice per family",
                       description="Versions, what was built, the CPU vector ISA in use, and which backend each op "
                                   "family uses for CPU and CUDA tensors.")
    p.set_defaults(func=_cmd_info)
    p = sub.add_parser("demo", help="run the ops on the available devices, timed against the reference",
                       description=_demo.__doc__.split("\n\n")[0])
    _demo.add_arguments(p)
    p.set_defaults(func=_demo.run)
    p = sub.add_parser("eval", help="PSNR / SSIM of a folder of predictions against references",
                       description=_eval.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _eval.add_arguments(p)
    p.set_defaults(func=_eval.run)
    p = sub.add_parser("human", help="human rating studies: init, serve, analyze, export")
    _human.add_arguments(p)
    p.set_defaults(func=_human.run)
    p = sub.add_parser("selftest", help="every op, backend and device against the float64 oracle",
                       **_selftest.PARSER_TEXT)
    _selftest.add_arguments(p)
    p.set_defaults(func=_selftest.run)
    p = sub.add_parser("weights", help="ImageNet backbone weights of LPIPS / DISTS / PerceptualLoss: list, fetch",
                       description="list: where each backbone's published file is (FASTIQA_WEIGHTS_DIR, then "
                                   "torchvision's cache). fetch NAME...: download the published files (into "
                                   "--dir, else FASTIQA_WEIGHTS_DIR, else torchvision's cache) and check their "
                                   "SHA-256. fastiqa downloads nothing unless asked.")
    p.add_argument("action", choices=["list", "fetch"])
    p.add_argument("names", nargs="*", metavar="NAME", help="backbones to fetch (alexnet, vgg16, squeezenet1_1, ...)")
    p.add_argument("--dir", help="folder to download into")
    p.set_defaults(func=_cmd_weights)
    p = sub.add_parser("cpu-tune", help="measure which CPU ISA level is fastest per kernel family, keep it",
                       description="Times one call of each CPU kernel family (pixel, psnr, ssim, gram) on every "
                                   "vector ISA level this CPU supports and keeps the widest level unless another "
                                   "is more than 5%% faster. The choice is saved per CPU model (FASTIQA_CPU_TUNE_FILE,"
                                   " else ~/.cache/fastiqa/cpu_tune.json) and applied whenever fastiqa is imported; "
                                   "FASTIQA_CPU_ISA still forces one level. Run it on an idle machine.")
    p.add_argument("--rounds", type=int, default=5, help="rounds alternating the levels (default 5)")
    p.add_argument("--no-save", action="store_true", help="measure and apply for this process only")
    p.set_defaults(func=_cmd_cpu_tune)
    return parser


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv == ["--version"]:  # without building the parser: that imports every command (and torch)
        print(f"fastiqa {__version__}")
        return 0
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.error(f"give a command: {', '.join(COMMANDS)} (fastiqa COMMAND --help for its options)")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
