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

# Under pytest-xdist (`-n N`, .ci/run) each worker process takes its share of torch's
# intra-op threads: N workers of the default count each would oversubscribe the cores
# (OpenMP threads spin-wait: a float64 gradgradcheck ran 6x slower). Tests that need
# a thread count set it themselves.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    torch.set_num_threads(max(1, torch.get_num_threads() // _WORKERS))


def pytest_configure(config):
    # Expected warnings, filtered at their source only (any other warning still shows):
    # numpy's floating-point RuntimeWarnings inside the Triton interpreter, which evaluates
    # every lane (masked-off lanes, NaN/Inf inputs) where a GPU computes them silently;
    config.addinivalue_line("filterwarnings", "ignore::RuntimeWarning:triton.runtime.interpreter")
    # torch's own torch/utils/mkldnn.py (imported by torch.compile's inductor) still uses
    # the deprecated torch.jit.script_method.
    config.addinivalue_line("filterwarnings", "ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
    # and torch's make_fx / functorch path (tests/test_op_call.py) calls torch.jit.script, once a
    # process: seen in whichever test comes first (fastiqa itself never scripts)
    config.addinivalue_line("filterwarnings", "ignore:`torch.jit.script` is deprecated:DeprecationWarning")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield
