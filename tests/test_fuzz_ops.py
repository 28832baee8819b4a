"""Property-based fuzzing of the whole op matrix against the float64 reference
(cases and checks: tests/_fuzz_cases.py).

Default run (`pytest -m slow -k "fuzz and not large"`; seconds per test in the Triton
interpreter, so out of the fast suite): a bounded, derandomized number of examples per
test. CI's large run: `FASTIQA_FUZZ_EXAMPLES=N pytest -m slow -k "fuzz and large"`;
.ci/stage_fuzz.sh runs both, the large one with one seed per run (FASTIQA_FUZZ_SEED,
fixed by default), the @reproduce_failure blob printed by hypothesis.
"""
import pytest
import torch
from _fuzz_cases import _transposed_opts, _untranspose, cases, check_case, fuzz_settings
from _op_matrix import OPS
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


@pytest.mark.parametrize("name,reduction,shape", [("ssim", "map", (2, 2, 9, 12)), ("ms_ssim", "none", (1, 2, 40, 33))])
def test_the_transposed_sample_is_the_same_function(name, reduction, shape):
    """check_case's second same-precision sample runs the reference on the transposed images;
    with a per-axis window and sigma their axes must swap too, or the sample is another
    function whose distance from the oracle sets a vacuous bound (fixed 2026-12-08)."""
    g = torch.Generator().manual_seed(3)
    x, y = torch.rand(shape, generator=g, dtype=torch.float64), torch.rand(shape, generator=g, dtype=torch.float64)
    opts = {"win_size": (5, 3), "win_sigma": (1.5, 0.5), "padding": "valid"}
    ref = OPS[name].ref
    want = ref(x, y, reduction, opts)
    got = _untranspose(ref(x.transpose(2, 3), y.transpose(2, 3), reduction, _transposed_opts(opts)))
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
