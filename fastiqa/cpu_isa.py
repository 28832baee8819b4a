"""The CPU ISA level the compiled kernels run (csrc/cpu/isa.h).

Each CPU kernel is compiled for three levels: "avx512" (x86-64-v4: AVX-512F/BW/DQ/VL
+ FMA), "avx2" (x86-64-v3: AVX2 + FMA + F16C) and "baseline" (SSE2 on x86-64,
NEON on aarch64). The best level this CPU supports is used unless the environment
variable FASTIQA_CPU_ISA=avx512|avx2|baseline forces one (a level this CPU lacks,
or an unknown value, raises a RuntimeError naming the variable on first use).
`select` / `using` switch the level inside one process (tests, benchmarks).

A kernel family ("pixel", "psnr", "ssim", "gram", ...) may run another level than the
process (`select_family`): `fastiqa cpu-tune` measures each family on this CPU and
fastiqa/cpu_tune.py applies the fastest level it found at import. A family's own level
counts only while no level is forced for the whole process (FASTIQA_CPU_ISA, `select`).
"""
import contextlib
import platform
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


def _need_ext():
    if not _ext.LOADED:
        raise RuntimeError(f"fastiqa: compiled kernels not loaded ({_ext.LOAD_ERROR})")


def _check_level(level: str) -> None:
    if level not in LEVELS + ("auto",):
        raise ValueError(f"level={level!r}: expected one of {', '.join(LEVELS)}, auto")


def select(level: str) -> str:
    """Forces `level` on every family from now on in this process; returns the previous level
    ("auto" when none was forced, "" if FASTIQA_CPU_ISA was invalid). "auto" drops the choice:
    FASTIQA_CPU_ISA, else each family's own level, else the best level decide again."""
    _check_level(level)
    _need_ext()
    return torch.ops.fastiqa_C.cpu_isa_select(level)


def families() -> List[str]:
    """The CPU kernel families of this build ([] without it)."""
    return list(torch.ops.fastiqa_C.cpu_isa_families()) if _ext.LOADED else []


def family_level(family: str) -> str:
    """The level `family`'s kernels run now."""
    _need_ext()
    if family not in families():
        raise ValueError(f"family={family!r}: expected one of {', '.join(families())}")
    return torch.ops.fastiqa_C.cpu_isa_family(family)


def select_family(family: str, level: str) -> str:
    """Gives `family` its own level ("auto": the process level); returns the previous setting.
    It counts only while no level is forced for the whole process."""
    _check_level(level)
    _need_ext()
    if family not in families():
        raise ValueError(f"family={family!r}: expected one of {', '.join(families())}")
    return torch.ops.fastiqa_C.cpu_isa_select_family(family, level)


def forced() -> bool:
    """True when FASTIQA_CPU_ISA or `select` fixes the level of every family."""
    _need_ext()
    return torch.ops.fastiqa_C.cpu_isa_forced()


@contextlib.contextmanager
def using(level: str) -> Iterator[str]:
    """Runs the block on `level`, then goes back to the previous level."""
    previous = select(level)
    try:
        yield level
    finally:
        if previous:
            select(previous)


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo; platform.processor() elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith(("model name", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
