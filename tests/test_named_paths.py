"""Every repository path that README.md, the code comments and the docs name exists.

A path is a token starting with one of the repository's folders (csrc/, fastiqa/,
tests/, benchmarks/, .ci/); a placeholder such as <family> or <isa> matches any name,
and the pattern must match at least one tracked file. Names of Markdown files must be
files of the repository. Stale pointers fail here, in the fast suite."""
import fnmatch
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEXT = (".py", ".h", ".cpp", ".cu", ".cuh", ".md", ".sh", ".toml", ".in", ".js", ".html", ".css", ".txt", ".cfg")
PATH = re.compile(r"(?<![\w/.-])((?:\.ci|csrc|fastiqa|tests|benchmarks)/[\w./<>*-]*[\w*>])")
MARKDOWN = re.compile(r"(?<![\w/.-])([\w-]+\.md)\b")


def _tracked():
    r = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip("not a git checkout: the tracked files are unknown")
    return [f for f in r.stdout.split("\n") if f and (ROOT / f).exists()]


FAMILIES = ("pixel", "ssim", "psnr", "gram")


def _exists(path: str, files: list) -> bool:
    """<family> must be filled by a family's name (csrc/cpu/<family>.cpp is not isa.cpp),
    any other placeholder by any name."""
    path = re.sub(r"/\.\w+$", "", path.rstrip(".").rstrip("/"))  # "x.csv/.json": either suffix
    if "<" in path or "*" in path:
        fills = [f"*{family}*" for family in FAMILIES] if "<family>" in path else ["*"]
        for fill in fills:
            pattern = re.sub(r"<[^>]*>", "*", path.replace("<family>", fill))
            if any(fnmatch.fnmatch(f, pattern) or fnmatch.fnmatch(f, pattern + "/*") for f in files):
                return True
        return False
    # a path git ignores names generated output (tests/artifacts): absent from a clean clone
    # (a folder pattern such as "tests/artifacts/" matches an absent path only with its slash)
    return (ROOT / path).exists() or any(
        subprocess.run(["git", "check-ignore", "-q", p], cwd=ROOT).returncode == 0 for p in (path, path + "/"))


def test_every_named_path_exists():
    files = _tracked()
    names = {Path(f).name for f in files}
    missing = []
    for f in files:
        if not (f.endswith(TEXT) or f == ".ci/run") or f == "tests/test_named_paths.py":
            continue
        text = (ROOT / f).read_text(errors="replace")
        missing += [f"{f}: {p}" for p in PATH.findall(text) if not _exists(p, files)]
        missing += [f"{f}: {m}" for m in MARKDOWN.findall(text) if m not in names]
    assert not missing, "paths named but absent:\n  " + "\n  ".join(sorted(set(missing)))


def test_the_check_catches_a_stale_path():
    files = _tracked()
    assert _exists("csrc/cpu/variant_<isa>.cpp", files)
    assert not _exists("csrc/cpu/<family>.cpp", files)
    assert not _exists("fastiqa/ops/no_such_module.py", files)
    assert _exists("tests/artifacts", files)  # git-ignored output folder
    assert PATH.findall("see `csrc/cpu/psnr.cpp` and fastiqa/ops/psnr.py.") == ["csrc/cpu/psnr.cpp",
                                                                                   "fastiqa/ops/psnr.py"]
