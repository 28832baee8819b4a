"""fastiqa: fused kernels for image-restoration losses and quality metrics.

    import fastiqa.functional as FF
    loss = FF.charbonnier_loss(pred, target)          # fused forward + gradient
    fastiqa.info()                                     # what was built, what runs
"""
import sys as _sys

from ._version import __version__


def _version_only() -> bool:
    """True in `fastiqa --version` and `python -m fastiqa --version`, which answer without
    importing torch (fastiqa/cli.py prints the version before building its parser); every
    other import of fastiqa loads the kernels and the API below."""
    argv = getattr(_sys, "argv", None) or [""]
    name = str(argv[0]).replace("\\", "/").rsplit("/", 1)[-1]
    return argv[1:] == ["--version"] and (argv[0] == "-m" or name in ("fastiqa", "fastiqa.exe"))


if not _version_only():
    from . import (  # noqa: F401
        _ext,  # noqa: F401  (loads the compiled kernels, or warns once)
        compat,
        functional,
        nn,
    )
    from .compat import basicsr, fused_ssim, pytorch_msssim  # noqa: F401
    from .cpu_tune import apply as _apply_cpu_tune

    _apply_cpu_tune()  # each CPU kernel family's measured ISA level (`fastiqa cpu-tune`), if any
    from .evaluation import evaluate
    from .info import info

__all__ = ["functional", "nn", "compat", "info", "evaluate", "__version__"]
