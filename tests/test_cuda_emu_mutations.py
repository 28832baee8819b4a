"""The harness catches each injected fault class (tests/cuda_emu/mutations.py)."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "cuda_emu"))

from emu import missing_tools  # noqa: E402
from mutations import MUTATIONS, mutated_tree  # noqa: E402
from run import run_family  # noqa: E402

MISSING = missing_tools()


@pytest.mark.slow
@pytest.mark.skipif(MISSING is not None, reason=f"CUDA-on-CPU harness unavailable: {MISSING}")
@pytest.mark.parametrize("name,family,mode,level", [(m[0], m[4], m[5], m[6]) for m in MUTATIONS],
                         ids=[m[0] for m in MUTATIONS])
def test_mutation_is_caught(tmp_path, name, family, mode, level):
    root = mutated_tree(name, tmp_path)
    passed, failures = run_family(family, mode, level, src_root=root, stop_first=True)
    assert failures, f"mutation {name} went unnoticed ({passed} cases passed in {mode} mode)"


@pytest.mark.parametrize("name,rel,old", [(m[0], m[1], m[2]) for m in MUTATIONS], ids=[m[0] for m in MUTATIONS])
def test_mutation_applies_to_the_sources(name, rel, old):
    """Each fault's anchor text is in its source exactly once (a kernel edit that removes it
    would leave the slow test above mutating nothing)."""
    text = (Path(__file__).resolve().parents[1] / "csrc" / rel).read_text()
    assert text.count(old) == 1, f"mutation {name}: anchor found {text.count(old)} times in csrc/{rel}"
