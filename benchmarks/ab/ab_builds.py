"""A/B timing of two builds of fastiqa on a noisy machine: how the "kernel alone" tables of
benchmarks/RESULTS.md are measured.

    python benchmarks/ab/ab_builds.py OLD_TREE NEW_TREE CASES.py [--rounds 4] [--isa avx2 avx512] [--threads 2]

OLD_TREE, NEW_TREE: source trees with the extension built in place (a git worktree of the old
commit: `git worktree add ../base <commit>`, then `python setup.py build_ext --inplace` in it).
CASES.py (e.g. benchmarks/ab/psnr_kernel_cases.py) prints lines "<case> min <microseconds>".
Each round runs CASES.py once per tree, the trees alternating, each in a fresh process per ISA
variant (FASTIQA_CPU_ISA) and OMP_NUM_THREADS; every case keeps its minimum over the rounds. A
host hiccup then slows one process, not a whole column; a copy or add case in CASES.py shows
whether a round was clean. Time only on an idle machine (no build, no test run beside it).
"""
import argparse
import collections
import os
import re
import subprocess
import sys
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("old", type=Path)
    ap.add_argument("new", type=Path)
    ap.add_argument("cases", type=Path)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--isa", nargs="+", default=["avx2", "avx512"])
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    trees = {"old": args.old.resolve(), "new": args.new.resolve()}
    best = collections.defaultdict(lambda: float("inf"))
    for isa in args.isa:
        for _ in range(args.rounds):
            for label, tree in trees.items():
                env = dict(os.environ, FASTIQA_CPU_ISA=isa, OMP_NUM_THREADS=str(args.threads), PYTHONPATH=str(tree))
                # run from outside both trees: the import must come from PYTHONPATH
                out = subprocess.run([sys.executable, str(args.cases.resolve())], env=env, cwd="/",
                                     capture_output=True, text=True, check=True).stdout
                for name, value in re.findall(r"^(\S+) min +([\d.]+)", out, flags=re.M):
                    best[(isa, name, label)] = min(best[(isa, name, label)], float(value))
    print(f"| ISA | case | {trees['old'].name} (us) | {trees['new'].name} (us) | new / old |")
    print("| --- | --- | ---: | ---: | ---: |")
    for isa, name in sorted({(k[0], k[1]) for k in best}):
        old, new = best[(isa, name, "old")], best[(isa, name, "new")]
        print(f"| {isa} | {name} | {old:.1f} | {new:.1f} | {new / old:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
