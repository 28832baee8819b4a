"""Loads the compiled kernels (fastiqa._C) if they were built.

Importing fastiqa never fails because of the extension: without it every op
runs on the reference (plain PyTorch) backend and one warning says why.
FASTIQA_DISABLE_EXT=1 skips loading it on purpose.
"""
import os
import warnings

import torch

from . import _kernel_schemas

LOAD_ERROR = None
LOADED = False

if os.environ.get("FASTIQA_DISABLE_EXT", "0") == "1":
    LOAD_ERROR = "disabled by FASTIQA_DISABLE_EXT=1"
else:
    try:
        from fastiqa import _C  # noqa: F401  (registers the fastiqa_C kernels)

        LOADED = True
    except ImportError as exc:  # not built, or built against another torch
        LOAD_ERROR = f"{type(exc).__name__}: {exc}"

# The ops' schemas (fastiqa/_kernel_schemas.py), defined after the library is loaded: the
# dispatcher checks every registered C++ kernel against them and raises on a mismatch.
# Without the library the ops still exist; fastiqa/ops/_registry.py gives them the Python
# backends. COMPILED records which ops have a compiled kernel, before that happens.
LIBRARY = torch.library.Library("fastiqa_C", "FRAGMENT")
_kernel_schemas.define(LIBRARY)
COMPILED = frozenset(
    (op, key) for op in _kernel_schemas.SCHEMAS for key in ("CPU", "CUDA")
    if LOADED and torch._C._dispatch_has_kernel_for_dispatch_key(f"fastiqa_C::{op}", key))

if not LOADED:
    warnings.warn(
        f"fastiqa: compiled kernels unavailable ({LOAD_ERROR}); every op uses the "
        "reference PyTorch backend. Rebuild with `pip install --no-build-isolation .`",
        RuntimeWarning,
        stacklevel=2,
    )


def has_kernel(op: str, dispatch_key: str) -> bool:
    """True when fastiqa_C::<op> has a compiled kernel for 'CPU' or 'CUDA'."""
    return (op, dispatch_key) in COMPILED


def cpu_isa() -> str:
    return torch.ops.fastiqa_C.cpu_isa() if LOADED else "n/a (extension not loaded)"
