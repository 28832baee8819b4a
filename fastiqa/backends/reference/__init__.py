"""Plain-PyTorch implementations: the oracle of every test and the last fallback.

One module per family, each at two levels:
  * the formulas as a user would write them (l1_loss, ssim, psnr, style_loss, ...):
    differentiable by torch autograd, used by tests (in float64) and benchmarks;
  * the op contract (<family>_fwd / <family>_bwd) that the compiled and Triton
    kernels also implement, used when no faster backend can run.
The names of all four are importable from here (fastiqa.backends.reference.ssim).
"""
from ...conventions import MS_SSIM_WEIGHTS, Y_OFFSET, Y_WEIGHTS, quantize8, rgb_to_y  # noqa: F401
from ._gram import *  # noqa: F401,F403
from ._perceptual import *  # noqa: F401,F403
from ._pixel import *  # noqa: F401,F403
from ._psnr import *  # noqa: F401,F403
from ._ssim import *  # noqa: F401,F403
from ._ssim_masked import *  # noqa: F401,F403
