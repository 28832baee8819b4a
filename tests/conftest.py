"""Test set-up: Triton kernels run on the CPU through the interpreter.

TRITON_INTERPRET must be set before any Triton kernel is defined, i.e. before
fastiqa.backends.triton.* is imported; fastiqa imports those lazily. Shared
helpers live in tests/support.py. Slow cases carry @pytest.mark.slow: the
default run (pyproject addopts) deselects them, `pytest -m slow` runs them.
"""
import os

os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402
import torch  # noqa: E402


def pytest_configure(config):
    # Expected warnings, filtered at their source only (any other warning still shows):
    # numpy's floating-point RuntimeWarnings inside the Triton interpreter, which evaluates
    # every lane (masked-off lanes, NaN/Inf inputs) where a GPU computes them silently;
    config.addinivalue_line("filterwarnings", "ignore::RuntimeWarning:triton.runtime.interpreter")
    # torch's own torch/utils/mkldnn.py (imported by torch.compile's inductor) still uses
    # the deprecated torch.jit.script_method.
    config.addinivalue_line("filterwarnings", "ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield
