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


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield
