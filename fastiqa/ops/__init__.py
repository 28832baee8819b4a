"""The op families: fake kernels and autograd formulas of the fastiqa_C ops (schemas:
fastiqa/_kernel_schemas.py), registered on import, one module per family."""
from . import gram, perceptual, pixel, psnr, ssim, ssim_masked  # noqa: F401
