"""Helpers shared by the test modules (import as `from support import ...`;
pytest puts tests/ on sys.path). conftest.py only sets the environment up."""
import torch

from fastiqa import _ext
from fastiqa.ops import _dispatch


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


def tol(dtype):
    """(rtol, atol) against the float64 reference (DESIGN.md section 4)."""
    if dtype in (torch.float16, torch.bfloat16):
        return 1e-2, 1e-2
    if dtype == torch.float32:
        return 1e-5, 1e-6
    return 1e-10, 1e-12
