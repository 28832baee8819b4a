"""Proof that the default tests catch CPU-kernel faults (issue 22; the CUDA counterpart is
tests/test_cuda_emu_mutations.py): a copy of the tree is built once in a temporary folder
(.ci/stage_cpu_mutations.sh; ~5 minutes on 2 cores) with every fault below compiled in,
each behind a run-time switch (the environment variable FASTIQA_MUTANT names the active
one; unset, the copy computes what the real tree does), and the default (fast) tests of
the CPU kernels run against it, once per fault: each run must fail, and the run with
no fault must pass.

The faults: a tail loop wrong on one ISA variant only (AVX2; baseline), a channels-last
stride, a dropped partial sum, a wrong reduction divisor, a gradient sign; in the LPIPS /
DISTS heads a lost lane on AVX2 only, a gradient sign, a dropped merge term, a wrong divisor.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# the run-time switch, defined once per translation unit (the impl headers are included
# by each csrc/cpu/variant_<isa>.cpp, inside that variant's namespace)
SWITCH = """#ifndef FASTIQA_MUTANT_DEFINED
#define FASTIQA_MUTANT_DEFINED
#include <cstdlib>
#include <cstring>
static inline bool fastiqa_mutant_is(const char* name) {
  static const char* active = std::getenv("FASTIQA_MUTANT");
  return active != nullptr && std::strcmp(active, name) == 0;
}
#endif
"""

# (name, file under csrc/cpu/, text, replacement with the fault behind fastiqa_mutant_is)
MUTATIONS = [
    (
        "pixel-tail-avx2-only",  # the scalar tail of a run drops its last element on AVX2
        "pixel_impl.h",
        "  for (int j = 0; i < len; ++i, ++j)\n    pixel_element<",
        "  for (int j = 0; i < len - ((FASTIQA_ISA_LEVEL == 1 && fastiqa_mutant_is(\"pixel-tail-avx2-only\")) ? 1 : 0);"
        " ++i, ++j)\n    pixel_element<",
    ),
    (
        "psnr-y-tail-baseline-only",  # the Y channel's scalar tail drops its last pixel on baseline
        "psnr_impl.h",
        "  for (int j = 0; i < len; ++i, ++j)\n    acc[j] += luma_sample<",
        "  for (int j = 0; i < len - ((FASTIQA_ISA_LEVEL == 0 && fastiqa_mutant_is(\"psnr-y-tail-baseline-only\")) ? 1"
        " : 0); ++i, ++j)\n    acc[j] += luma_sample<",
    ),
    (
        "psnr-y-channels-last-stride",  # channels-last Y: the channel stride taken as the pixel stride
        "psnr_impl.h",
        "s = run_luma<T, A, K, Q, GRAD, false>(a + o, b + o, gp, len, G.sc, G.sw, qscale, gmul);",
        "s = run_luma<T, A, K, Q, GRAD, false>(a + o, b + o, gp, len, fastiqa_mutant_is(\"psnr-y-channels-last-"
        "stride\") ? G.sw : G.sc, G.sw, qscale, gmul);",
    ),
    (
        "pixel-dropped-partial",  # the second chunk's loss sum is lost
        "pixel_impl.h",
        "      partial[2 * ch] = acc.total();",
        "      partial[2 * ch] = (ch == 1 && fastiqa_mutant_is(\"pixel-dropped-partial\")) ? A(0) : acc.total();",
    ),
    (
        "charbonnier-no-newton-step",  # float32 Charbonnier takes the bare reciprocal square root estimate
        "pixel_impl.h",
        "      const V e = three - y * r0;",
        "      const V e = fastiqa_mutant_is(\"charbonnier-no-newton-step\") ? vsplat(2.0f) : three - y * r0;",
    ),
    (
        "psnr-wrong-divisor",  # the per-image mean divides by count - 1
        "psnr_impl.h",
        "out[i] = static_cast<A>(s / static_cast<double>(G.count) * out_scale);",
        "out[i] = static_cast<A>(s / static_cast<double>(G.count - (fastiqa_mutant_is(\"psnr-wrong-divisor\") ? 1 : 0))"
        " * out_scale);",
    ),
    (
        "psnr-grad-y-sign",  # the target's gradient with the prediction's sign
        "psnr_impl.h",
        "    if (PY) gy[i] = from_acc<T>(-v);",
        "    if (PY) gy[i] = from_acc<T>(fastiqa_mutant_is(\"psnr-grad-y-sign\") ? v : -v);",
    ),
    (
        "lpips-cl-norm-lane-avx2-only",  # channels-last LPIPS: the pred norm loses its last lane on AVX2
        "perceptual_impl.h",
        "  r0 = sqrt_acc(pairwise_sum(sx, kLanes));",
        "  r0 = sqrt_acc(pairwise_sum(sx, kLanes - ((FASTIQA_ISA_LEVEL == 1 && fastiqa_mutant_is(\"lpips-cl-norm-lane-"
        "avx2-only\")) ? 1 : 0)));",
    ),
    (
        "lpips-grad-target-sign",  # NCHW LPIPS: the target gradient's first term with the wrong sign
        "perceptual_impl.h",
        "      if (WY) gyc[p] = from_acc<T>(b * d1[p] - g * i1[p]);",
        "      if (WY) gyc[p] = from_acc<T>(b * d1[p] + (fastiqa_mutant_is(\"lpips-grad-target-sign\") ? 1 : -1) * g"
        " * i1[p]);",
    ),
    (
        "dists-merge-cross-term",  # DISTS: merging two runs of pixels forgets the covariance's cross term
        "perceptual_impl.h",
        "    acxy[c] += bcxy[c] + dx * dy * fab;",
        "    acxy[c] += bcxy[c] + (fastiqa_mutant_is(\"dists-merge-cross-term\") ? A(0) : dx * dy * fab);",
    ),
    (
        "dists-wrong-divisor",  # DISTS: the moments divided by HW - 1
        "perceptual_impl.h",
        "    const A inv = A(1) / static_cast<A>(g.HW);",
        "    const A inv = A(1) / static_cast<A>(g.HW - (fastiqa_mutant_is(\"dists-wrong-divisor\") ? 1 : 0));",
    ),
]

# the default tests of the CPU kernels (fast suite), stopped at the first failure
TESTS = ["tests/test_cpu_isa.py", "tests/test_cpu_isa_layouts.py", "tests/test_pixel.py", "tests/test_psnr.py",
         "tests/test_pixel_sums.py", "tests/test_perceptual_heads_cpu.py"]
# the file of a fault's own family runs first, so that -x stops early; the set run is the same
FIRST = {"pixel": "tests/test_pixel.py", "charbonnier": "tests/test_pixel.py", "psnr": "tests/test_psnr.py",
         "lpips": "tests/test_perceptual_heads_cpu.py", "dists": "tests/test_perceptual_heads_cpu.py"}
# the levels the faults live on (avx2, baseline and all-level code): avx512 is not compiled
# into the copy, which saves a third of its build (setup.py: FASTIQA_CPU_LEVELS)
LEVELS = "baseline,avx2"


def mutate(tree: Path) -> None:
    """Applies every mutation of MUTATIONS to the copy `tree` (each exactly once)."""
    for name, rel, old, new in MUTATIONS:
        path = tree / "csrc" / "cpu" / rel
        text = path.read_text()
        if text.count(old) != 1:
            raise AssertionError(f"mutation {name}: the text to replace occurs {text.count(old)} times in "
                                 f"csrc/cpu/{rel} (source changed? update tests/test_cpu_mutations.py)")
        text = text.replace(old, new)
        if "FASTIQA_MUTANT_DEFINED" not in text:
            text = SWITCH + text
        path.write_text(text)


def _tracked_files():
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return [f for f in out.decode().split("\0") if f]


@pytest.fixture(scope="module")
def mutant_tree(tmp_path_factory):
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs the git checkout (the copy is made of the tracked files)")
    tree = tmp_path_factory.mktemp("cpu_mutants") / "tree"
    for rel in _tracked_files():
        src = ROOT / rel
        if src.is_file():
            (tree / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, tree / rel)
    mutate(tree)
    env = dict(os.environ, FASTIQA_NO_CUDA="1", FASTIQA_CPU_LEVELS=LEVELS, MAX_JOBS=os.environ.get("MAX_JOBS", "2"))
    build = subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace"], cwd=tree, env=env,
                           capture_output=True, text=True, timeout=3600)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    return tree


def _run_tests(tree, mutant):
    env = {k: v for k, v in os.environ.items() if k not in ("FASTIQA_MUTANT", "FASTIQA_BACKEND", "FASTIQA_CPU_ISA")}
    env["PYTHONPATH"] = str(tree)
    if mutant:
        env["FASTIQA_MUTANT"] = mutant
    check = subprocess.run([sys.executable, "-c", "import fastiqa; print(fastiqa.__file__, fastiqa.info()"
                            "['extension_loaded'])"], cwd=tree, env=env, capture_output=True, text=True, timeout=300)
    assert check.stdout.split() == [str(tree / "fastiqa" / "__init__.py"), "True"], check.stdout + check.stderr
    first = FIRST[mutant.split("-")[0]] if mutant else TESTS[0]
    tests = [first] + [t for t in TESTS if t != first]
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests], cwd=tree,
                          env=env, capture_output=True, text=True, timeout=3600)


@pytest.mark.slow
def test_the_copy_without_a_fault_passes(mutant_tree):
    r = _run_tests(mutant_tree, None)
    assert r.returncode == 0, r.stdout[-4000:]


@pytest.mark.slow
def test_the_copy_has_the_levels_it_was_built_with(mutant_tree):
    """FASTIQA_CPU_LEVELS (setup.py): avx512 is not offered, and forcing it names the build setting."""
    env = {k: v for k, v in os.environ.items() if k not in ("FASTIQA_CPU_ISA", "FASTIQA_MUTANT")}
    env["PYTHONPATH"] = str(mutant_tree)
    code = "from fastiqa import cpu_isa; print(','.join(cpu_isa.available()))"
    r = subprocess.run([sys.executable, "-c", code], cwd=mutant_tree, env=env, capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.split()[-1] in ("avx2,baseline", "baseline"), r.stdout + r.stderr
    env["FASTIQA_CPU_ISA"] = "avx512"
    r = subprocess.run([sys.executable, "-c", "import torch, fastiqa; torch.ops.fastiqa_C.cpu_isa()"],
                       cwd=mutant_tree, env=env, capture_output=True, text=True)
    assert r.returncode != 0 and "built without the avx512 level (FASTIQA_CPU_LEVELS" in r.stderr, r.stderr[-2000:]


@pytest.mark.slow
@pytest.mark.parametrize("name", [m[0] for m in MUTATIONS])
def test_fault_is_caught(mutant_tree, name):
    r = _run_tests(mutant_tree, name)
    assert r.returncode == 1, f"fault {name} went unnoticed (pytest exit {r.returncode}):\n{r.stdout[-3000:]}"


def test_every_fault_has_its_first_test_file():
    assert all(m[0].split("-")[0] in FIRST for m in MUTATIONS) and set(FIRST.values()) <= set(TESTS)


def test_every_mutation_applies_to_the_sources(tmp_path):
    """Fast: the texts the faults replace still exist (else the slow test would fail late)."""
    for rel in {m[1] for m in MUTATIONS}:
        (tmp_path / "csrc" / "cpu").mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / "csrc" / "cpu" / rel, tmp_path / "csrc" / "cpu" / rel)
    mutate(tmp_path)
    for name, rel, _, _ in MUTATIONS:
        assert f'fastiqa_mutant_is("{name}")' in (tmp_path / "csrc" / "cpu" / rel).read_text()
