"""The CPU ISA level the compiled kernels run (csrc/cpu/isa.h).

Each CPU kernel is compiled for three levels: "avx512" (x86-64-v4: AVX-512F/BW/DQ/VL
+ FMA), "avx2" (x86-64-v3: AVX2 + FMA + F16C) and "baseline" (SSE2 on x86-64,
NEON on aarch64). The best level this CPU supports is used unless the environment
variable FASTIQA_CPU_ISA=avx512|avx2|baseline forces one (a level this CPU lacks,
or an unknown value, raises a RuntimeError naming the variable on first use).
`select` / `using` switch the level inside one process (tests, benchmarks).
"""
import contextlib
from typing import Iterator, List

import torch

from . import _ext

LEVELS = ("avx512", "avx2", "baseline")


def active() -> str:
    """The level in use; raises RuntimeError when FASTIQA_CPU_ISA is invalid here."""
    if not _ext.LOADED:
        raise RuntimeError(f"fastiqa: compiled kernels not loaded ({_ext.LOAD_ERROR})")
    return torch.ops.fastiqa_C.cpu_isa()


def available() -> List[str]:
    """Levels built into the extension that this CPU supports, best first ([] without it)."""
    return list(torch.ops.fastiqa_C.cpu_isa_available()) if _ext.LOADED else []


def select(level: str) -> str:
    """Uses `level` from now on in this process; returns the previous level ("" if none was valid)."""
    if level not in LEVELS:
        raise ValueError(f"level={level!r}: expected one of {', '.join(LEVELS)}")
    if not _ext.LOADED:
        raise RuntimeError(f"fastiqa: compiled kernels not loaded ({_ext.LOAD_ERROR})")
    return torch.ops.fastiqa_C.cpu_isa_select(level)


@contextlib.contextmanager
def using(level: str) -> Iterator[str]:
    """Runs the block on `level`, then goes back to the previous level."""
    previous = select(level)
    try:
        yield level
    finally:
        if previous:
            select(previous)
