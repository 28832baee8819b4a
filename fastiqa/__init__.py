"""fastiqa: fused kernels for image-restoration losses and quality metrics.

    import fastiqa.functional as FF
    loss = FF.charbonnier_loss(pred, target)          # fused forward + gradient
    fastiqa.info()                                     # what was built, what runs
"""
from . import (  # noqa: F401
    _ext,  # noqa: F401  (loads the compiled kernels, or warns once)
    compat,
    functional,
    nn,
)
from ._version import __version__
from .compat import basicsr, fused_ssim, pytorch_msssim  # noqa: F401
from .evaluation import evaluate
from .info import info

__all__ = ["functional", "nn", "compat", "info", "evaluate", "__version__"]
