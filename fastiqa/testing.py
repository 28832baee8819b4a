"""The accuracy rule shared by the test suite and `fastiqa selftest`.

A result computed in dtype D is judged against the float64 oracle by the error
the plain-PyTorch reference itself makes when it runs in D (the practice of the
attention-kernel libraries), not by hand-tuned constants:

    max|result - oracle| <= k * (max|reference_in_D - oracle| + eps(D) * max(1, max|oracle|))

i.e. within k times the reference's own error, or k units in the last place: the
eps term covers results the reference happens to get (nearly) exactly, such as
torch's pairwise-summed reductions against a kernel's blocked sum, and a reference
that overflows in D (it then sets no bound).
NaN and Inf must sit where the oracle has them; a NaN never passes otherwise.
"""
from typing import Optional

import torch
from torch import Tensor

DEFAULT_K = 4.0


def error_bound(oracle: Tensor, same_precision: Tensor, dtype: Optional[torch.dtype] = None,
                k: float = DEFAULT_K) -> float:
    """The largest absolute error a result of `dtype` may have against `oracle` (float64)."""
    dtype = dtype or same_precision.dtype
    oracle = oracle.double()
    finite = torch.isfinite(oracle)
    ref_err = (same_precision.double() - oracle)[finite].abs().max() if finite.any() else oracle.new_zeros(())
    # a reference that overflows or NaNs in D (a float16 sum) sets no bound: the eps term alone
    ref_err = float(ref_err) if torch.isfinite(ref_err) else 0.0
    scale = max(1.0, float(oracle[finite].abs().max())) if finite.any() else 1.0
    return k * (ref_err + torch.finfo(dtype).eps * scale)


def assert_close(result: Tensor, oracle: Tensor, same_precision: Tensor, k: float = DEFAULT_K,
                 what: str = "result") -> None:
    """Raises AssertionError unless `result` meets the rule above (shapes must match)."""
    if result.shape != oracle.shape:
        raise AssertionError(f"{what}: shape {tuple(result.shape)} != oracle's {tuple(oracle.shape)}")
    r, o = result.detach().double().cpu(), oracle.detach().double().cpu()
    special = ~torch.isfinite(o)
    if not torch.equal(~torch.isfinite(r), special) or not torch.equal(r[special].nan_to_num(0.0),
                                                                       o[special].nan_to_num(0.0)):
        raise AssertionError(f"{what}: NaN/Inf positions or values differ from the oracle's")
    bound = error_bound(o, same_precision.detach().cpu(), result.dtype, k)
    err = float((r - o)[~special].abs().max()) if (~special).any() else 0.0
    if not err <= bound:
        raise AssertionError(f"{what}: max abs error {err:.3e} > bound {bound:.3e} "
                             f"({k} x (the {result.dtype} reference's error + eps))")
