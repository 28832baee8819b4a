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


def backend_devices(kernel: str = "pixel_fwd"):
    """(backend, device) pairs that can run `kernel` here: reference, the CPU
    kernels and Triton (interpreted) on CPU tensors; on a GPU machine also the
    reference, the CUDA kernels and Triton on CUDA tensors."""
    pairs = [("reference", "cpu")]
    if _ext.has_kernel(kernel, "CPU"):
        pairs.append(("cpu", "cpu"))
    if _dispatch.triton_installed() and _dispatch.triton_interpreted():
        pairs.append(("triton", "cpu"))
    if torch.cuda.is_available():
        pairs.append(("reference", "cuda"))
        if _ext.has_kernel(kernel, "CUDA"):
            pairs.append(("cuda", "cuda"))
        if _dispatch.triton_installed():
            pairs.append(("triton", "cuda"))
    return pairs


BACKEND_DEVICES = backend_devices()
BACKENDS = [b for b, d in BACKEND_DEVICES if d == "cpu"]  # backends for CPU tensors
BD_IDS = [f"{b}-{d}" for b, d in BACKEND_DEVICES]


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
