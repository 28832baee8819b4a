"""`fastiqa human`: init / serve / analyze / export (a thin layer over fastiqa.human).

    fastiqa human init STUDY --ref HR/ --method a=A/ --method b=B/ --protocol acr [--scale 5]
                       [--repeats 1] [--gold N] [--training N] [--seed S] [--suffix _x4] [--show-ref]
                       [--title T] [--instructions TEXT]
    fastiqa human serve STUDY [--host 127.0.0.1] [--port 8765] [--max-raters 200]
    fastiqa human analyze STUDY [--metrics eval.json ...] --out REPORT/
    fastiqa human export STUDY --format {csv,sureal,pwcmp} [--out FILE]
    fastiqa human example OUT   (the shipped photographs, degraded: folders for a first study)

Exit status: 0 done, 1 a problem with the study or its files (one message per
problem), 2 bad arguments.
"""
import argparse
import os
import sys

from .errors import StudyError
from .study import DEFAULT_TITLE, PROTOCOLS

EXPORT_NAMES = {"csv": "votes.csv", "sureal": "sureal_dataset.py", "pwcmp": "pwcmp.csv"}


def _command(sub, name, help, example):
    """A subcommand with its help line as description and an example as epilog."""
    return sub.add_parser(name, help=help, description=help[0].upper() + help[1:] + ".",
                          epilog=f"example:\n  {example}", formatter_class=argparse.RawDescriptionHelpFormatter)


def add_arguments(p):
    sub = p.add_subparsers(dest="human_command", metavar="COMMAND", title="commands")
    q = _command(sub, "init", "build a rating study from a reference folder and method folders",
                 "fastiqa human init demo/study --ref demo/ref --method blur=demo/blur --method jpeg=demo/jpeg "
                 "--protocol acr")
    q.add_argument("study", help="new folder for the study")
    q.add_argument("--ref", required=True, help="folder of reference images")
    q.add_argument("--method", action="append", required=True, metavar="NAME=DIR",
                   help="a method's output folder (repeat for each method)")
    q.add_argument("--protocol", required=True, choices=PROTOCOLS,
                   help="acr: absolute rating; acr-hr: with hidden reference (DMOS); dcr: degradation vs the "
                        "shown reference; pc: pairwise comparison")
    q.add_argument("--scale", type=int, help="ACR levels: 5 (default), 9 or 11")
    q.add_argument("--repeats", type=int, default=1, help="times each trial is shown to each rater (default 1)")
    q.add_argument("--gold", type=int, default=0, help="gold trials per rater (hidden references, repeats)")
    q.add_argument("--training", type=int, default=0, help="training trials per rater, shown first, not analysed")
    q.add_argument("--seed", type=int, default=0, help="seed of the per-rater random orders (default 0)")
    q.add_argument("--suffix", default="", help="method image name = reference name + suffix, as in fastiqa eval")
    q.add_argument("--show-ref", action="store_true",
                   help="pc: show the reference next to the two images (dcr always shows it; an error with acr)")
    q.add_argument("--title", help=f"title shown to the raters (default: {DEFAULT_TITLE!r})")
    q.add_argument("--instructions", help="instructions shown to the raters (default: the protocol's)")
    q.set_defaults(human_func=_init)
    q = _command(sub, "serve", "serve the study to raters in the browser", "fastiqa human serve demo/study --port 8765")
    q.add_argument("study")
    q.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    q.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 picks a free one)")
    q.add_argument("--max-raters", type=int, default=None,
                   help="most rater sessions the study accepts (default 200); more are refused")
    q.set_defaults(human_func=_serve)
    q = _command(sub, "analyze", "MOS / JOD, rater screening, metric agreement: JSON, CSV, plots",
                 "fastiqa human analyze demo/study --out demo/report")
    q.add_argument("study")
    q.add_argument("--out", required=True, help="folder for the report")
    q.add_argument("--metrics", nargs="+", metavar="[METHOD=]EVAL_JSON",
                   help="`fastiqa eval --json` files, one per method (default: computed here, PSNR and SSIM, "
                        "and LPIPS and DISTS when their backbone weights are present)")
    q.add_argument("--no-metrics", action="store_true", help="no metric agreement")
    q.add_argument("--bootstrap", type=int, default=500, help="bootstrap samples for pairwise CIs (default 500)")
    q.add_argument("--no-plots", action="store_true", help="no PNG plots")
    q.set_defaults(human_func=_analyze)
    q = _command(sub, "example", "folders for a worked example: the shipped photographs, degraded three ways",
                 "fastiqa human example demo/")
    q.add_argument("out", help="folder to write OUT/ref, OUT/blur, OUT/noise, OUT/jpeg into")
    q.set_defaults(human_func=_example)
    q = _command(sub, "export", "the votes as csv, a SUREAL dataset or pwcmp's long CSV",
                 "fastiqa human export demo/study --format pwcmp")
    q.add_argument("study")
    q.add_argument("--format", required=True, choices=sorted(EXPORT_NAMES))
    q.add_argument("--out", help="output file (default: STUDY/votes.csv, sureal_dataset.py or pwcmp.csv)")
    q.set_defaults(human_func=_export)


def _err(msg):
    for line in str(msg).splitlines():
        print(f"fastiqa human: {line}", file=sys.stderr)


def _init(args):
    methods = {}
    for spec in args.method:
        name, sep, folder = spec.partition("=")
        if not sep or not name or not folder:
            _err(f"--method {spec!r}: write NAME=DIR")
            return 2
        if name in methods:
            _err(f"--method {name} is given twice")
            return 2
        methods[name] = folder
    from .study import _check_args, init_study

    try:  # bad arguments: exit 2 as in `fastiqa eval`; problems with the images' files: 1
        _check_args(args.protocol, args.scale, methods, args.repeats, args.gold, args.training, args.show_ref)
        if os.path.exists(args.study) and (not os.path.isdir(args.study) or os.listdir(args.study)):
            raise StudyError(f"{args.study!r} already exists and is not empty; a study goes into a new folder")
        if not os.path.isdir(args.ref):
            raise StudyError(f"--ref {args.ref!r} is not a folder")
        for name, folder in methods.items():
            if not os.path.isdir(folder):
                raise StudyError(f"--method {name}={folder}: not a folder")
    except StudyError as exc:
        _err(exc)
        return 2
    study = init_study(args.study, args.ref, methods, args.protocol, args.scale, args.repeats, args.gold,
                       args.training, args.seed, args.suffix, args.show_ref, args.instructions, args.title)
    print(f"study {args.study}: {study.protocol}, {len(study.methods)} method(s), {len(study.contents)} image(s), "
          f"{len(study.stimuli)} stimuli; serve it with: fastiqa human serve {args.study}")
    return 0


def _serve(args):
    from .server import MAX_RATERS, serve

    if not 0 <= args.port <= 65535:
        _err(f"--port must be 0..65535 (0 picks a free one), got {args.port}")
        return 2
    if args.max_raters is not None and args.max_raters < 1:
        _err(f"--max-raters must be an integer >= 1, got {args.max_raters}")
        return 2
    max_raters = MAX_RATERS if args.max_raters is None else args.max_raters
    return serve(args.study, args.host, args.port, max_raters=max_raters)


def _analyze(args):
    from .analyze import analyze

    if args.bootstrap < 1:
        _err(f"--bootstrap must be >= 1, got {args.bootstrap}")
        return 2
    report = analyze(args.study, args.out, metrics=args.metrics, compute=not args.no_metrics,
                     bootstrap=args.bootstrap, plots=not args.no_plots)
    print(report["summary"], end="")
    print(f"report written to {args.out}")
    return 0


def _example(args):
    from .example import write_example_folders

    if os.path.exists(args.out) and os.listdir(args.out):
        _err(f"{args.out!r} already exists and is not empty; give a new folder")
        return 2
    from .example import next_steps

    ref, dirs = write_example_folders(args.out)
    print(f"wrote {ref} and {', '.join(dirs.values())}; next:")
    for line in next_steps(args.out):
        print("  " + line)
    return 0


def _export(args):
    from .export import export

    out = args.out or os.path.join(args.study, EXPORT_NAMES[args.format])
    print(export(args.study, args.format, out))
    return 0


def run(args):
    if getattr(args, "human_func", None) is None:
        _err("give a command: init, serve, analyze, export or example (fastiqa human COMMAND --help)")
        return 2
    try:
        return args.human_func(args)
    except StudyError as exc:
        _err(exc)
        return 1
    except ImportError as exc:
        _err(exc)
        return 1
    except OSError as exc:  # a busy port, an unwritable folder: a message, not a traceback
        _err(f"{type(exc).__name__}: {exc}")
        return 1
    except KeyboardInterrupt:
        return 130
