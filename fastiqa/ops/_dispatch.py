"""Backend choice shared by every op family (README.md, "Backends").

Order: compiled CUDA kernel for CUDA tensors, else Triton on CUDA tensors, else
the compiled CPU kernel for CPU tensors, else the reference. FASTIQA_BACKEND or
a backend= argument forces one; forcing one that cannot run is a clear error.
"""
import functools
import importlib.metadata
import importlib.util
import os

import torch

from .. import _ext

BACKENDS = ("reference", "cpu", "cuda", "triton")


def triton_installed() -> bool:
    return importlib.util.find_spec("triton") is not None


# oldest triton that runs fastiqa's Triton kernels correctly: 3.0's interpreter returns wrong
# values (2.711e-312 for 0.00784); 3.2 is what torch 2.6, the oldest supported torch, pins
TRITON_MIN = (3, 2)


@functools.lru_cache(maxsize=None)
def triton_too_old() -> str:
    """The installed triton's version when it is older than TRITON_MIN, else ''."""
    try:
        version = importlib.metadata.version("triton")
    except importlib.metadata.PackageNotFoundError:  # another distribution (pytorch-triton): no claim
        return ""
    parts = [int(p) if p.isdigit() else 0 for p in version.split("+")[0].split(".")[:2]]
    return version if tuple(parts) < TRITON_MIN else ""


def triton_interpreted() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def available(backend: str, device: torch.device, kernel: str) -> tuple:
    """(usable, reason) for running `kernel` of a family on `device` with `backend`."""
    if backend == "reference":
        return True, ""
    if backend == "cpu":
        if device.type != "cpu":
            return False, f"the cpu backend runs on CPU tensors, got {device.type} tensors"
        if not _ext.has_kernel(kernel, "CPU"):
            return False, f"the compiled CPU kernels are not loaded ({_ext.LOAD_ERROR or 'missing op'})"
        return True, ""
    if backend == "cuda":
        if device.type != "cuda":
            return False, f"the cuda backend runs on CUDA tensors, got {device.type} tensors"
        if not _ext.has_kernel(kernel, "CUDA"):
            return False, "fastiqa was built without CUDA kernels (rebuild with a CUDA torch and nvcc, or FORCE_CUDA=1)"
        return True, ""
    if backend == "triton":
        if not triton_installed():
            return False, "triton is not installed (pip install triton)"
        if triton_too_old():
            return False, (f"triton {triton_too_old()} is too old: fastiqa's Triton kernels need triton >= 3.2 "
                           "(older interpreters return wrong values; torch >= 2.6 brings a triton that fits)")
        if device.type == "cuda" or (device.type == "cpu" and triton_interpreted()):
            return True, ""
        return False, f"Triton runs on CUDA tensors (or CPU tensors with TRITON_INTERPRET=1), got {device.type}"
    raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")


def constant_result(fn):
    """torch.compiler.assume_constant_result without its import of torch._dynamo (~1.5 s at
    `import fastiqa`): the decorator only sets this flag, which dynamo reads when it traces
    a call of fn (evaluated once while tracing, not traced into). tests/test_architecture.py
    checks that the decorator still means exactly this flag."""
    fn._dynamo_marked_constant = True
    return fn


@constant_result
def choose(device: torch.device, kernel: str, backend=None) -> str:
    """Name of the backend that runs `kernel` for tensors on `device`."""
    requested = backend if backend is not None else os.environ.get("FASTIQA_BACKEND") or None
    if requested is not None:
        if requested not in BACKENDS:
            source = "backend" if backend is not None else "FASTIQA_BACKEND"
            raise ValueError(f"{source} must be one of {BACKENDS}, got {requested!r}")
        ok, why = available(requested, device, kernel)
        if not ok:
            raise RuntimeError(f"fastiqa: backend {requested!r} is unavailable here: {why}")
        return requested
    order = ("cuda", "triton", "reference") if device.type == "cuda" else ("cpu", "reference")
    for name in order:
        if available(name, device, kernel)[0]:
            return name
    return "reference"
