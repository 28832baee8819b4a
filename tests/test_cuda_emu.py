"""The CUDA kernels executed on the CPU (tests/cuda_emu): every family against the float64
oracle on emulated GPUs. Fast: a representative subset in plain mode; slow: the full
matrix, ThreadSanitizer and AddressSanitizer + UBSan runs."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "cuda_emu"))

from emu import FAMILIES, missing_tools  # noqa: E402
from run import run_family  # noqa: E402

MISSING = missing_tools()
pytestmark = pytest.mark.skipif(MISSING is not None, reason=f"CUDA-on-CPU harness unavailable: {MISSING}")


def _assert_clean(family, mode, level):
    passed, failures = run_family(family, mode, level)
    assert not failures, "\n".join(f"{cid}: {msg}" for cid, msg in failures)
    assert passed > 0


@pytest.mark.parametrize("family", FAMILIES)
def test_plain_subset(family):
    _assert_clean(family, "plain", "fast")


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_plain_full_matrix(family):
    _assert_clean(family, "plain", "full")


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["tsan", "asan"])
@pytest.mark.parametrize("family", FAMILIES)
def test_sanitized_subset(family, mode):
    _assert_clean(family, mode, "sanitize")
