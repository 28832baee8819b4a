"""Test set-up: Triton kernels run on the CPU through the interpreter.

TRITON_INTERPRET must be set before any Triton kernel is defined, i.e. before
fastiqa.backends.triton.* is imported; fastiqa imports those lazily.
"""
import os

os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

from fastiqa import _ext  # noqa: E402
from fastiqa.ops import _dispatch  # noqa: E402


def _backends():
    names = ["reference"]
    if _ext.has_kernel("pixel_fwd", "CPU"):
        names.append("cpu")
    if _dispatch.triton_installed():
        names.append("triton")
    return names


BACKENDS = _backends()


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


def tol(dtype):
    """(rtol, atol) against the float64 reference (DESIGN.md section 4)."""
    if dtype in (torch.float16, torch.bfloat16):
        return 1e-2, 1e-2
    if dtype == torch.float32:
        return 1e-5, 1e-6
    return 1e-10, 1e-12
