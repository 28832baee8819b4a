"""Property-based fuzzing of the whole op matrix against the float64 reference
(cases and checks: tests/_fuzz_cases.py).

Default run (`pytest -m slow -k "fuzz and not large"`; seconds per test in the Triton
interpreter, so out of the fast suite): a bounded, derandomized number of examples per
test. CI's large run: `FASTIQA_FUZZ_EXAMPLES=N pytest -m slow -k "fuzz and large"`;
.ci/stage_fuzz.sh runs both, the large one with one seed per run (FASTIQA_FUZZ_SEED,
fixed by default), the @reproduce_failure blob printed by hypothesis.
"""
import pytest
from _fuzz_cases import cases, check_case, fuzz_settings
from hypothesis import given

from support import BACKENDS

FAST = [b for b in BACKENDS if b != "triton"]
TRITON = [b for b in BACKENDS if b == "triton"]


@pytest.mark.slow
@fuzz_settings(default=150)
@given(case=cases(backends=FAST))
def test_fuzz_op_matrix(case):
    check_case(case)


@pytest.mark.slow
@pytest.mark.skipif(not TRITON, reason="triton not installed (TRITON_INTERPRET=1 runs it on CPU tensors)")
@fuzz_settings(default=8)
@given(case=cases(backends=TRITON))
def test_fuzz_op_matrix_triton(case):
    check_case(case)


@pytest.mark.slow
@fuzz_settings(default=600, large_share=0.8)
@given(case=cases(backends=FAST))
def test_fuzz_op_matrix_large(case):
    check_case(case)


@pytest.mark.slow
@pytest.mark.skipif(not TRITON, reason="triton not installed (TRITON_INTERPRET=1 runs it on CPU tensors)")
@fuzz_settings(default=60, large_share=0.04)
@given(case=cases(backends=TRITON))
def test_fuzz_op_matrix_triton_large(case):
    check_case(case)
