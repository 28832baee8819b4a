"""Triton kernels (CUDA tensors; CPU tensors under TRITON_INTERPRET=1 in tests).

Import these modules lazily: TRITON_INTERPRET is read when the kernels are defined.
"""
