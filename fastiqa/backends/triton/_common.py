"""Triton helpers shared by several families' kernels."""
import triton
import triton.language as tl


@triton.jit
def store_opposite(p_ptr, t_ptr, offs, v, mask, WRITE_P: tl.constexpr, WRITE_T: tl.constexpr):
    """The gradients of a function of pred - target: v at pred's offsets, -v at target's
    (each only when asked), rounded once to each output's dtype."""
    if WRITE_P:
        tl.store(p_ptr + offs, v.to(p_ptr.dtype.element_ty), mask=mask)
    if WRITE_T:
        tl.store(t_ptr + offs, (-v).to(t_ptr.dtype.element_ty), mask=mask)
