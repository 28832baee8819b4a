"""Hypothesis strategies and checks of the fuzz suite (tests/test_fuzz_*.py).

A case is one point of the op matrix: op x backend x dtype x layout x reduction x
padding x window x which inputs require grad x grad_output x special values. It
runs the fastiqa op and the reference formula on the same values in float64 (the
oracle) and in the input's dtype (the same-precision reference whose error sets
the bound, fastiqa.testing), and compares values and gradients.
"""
import os

import torch
from _op_matrix import MS_WEIGHTS, OPS
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from fastiqa.functional import ms_ssim_min_size
from fastiqa.testing import DEFAULT_K, error_bound

from support import BACKENDS, tol

# examples per test: bounded by default (fast), FASTIQA_FUZZ_EXAMPLES for CI's large run
LARGE = int(os.environ.get("FASTIQA_FUZZ_EXAMPLES", "0"))


def fuzz_settings(default: int, large_share: float = 1.0):
    """Default run: `default` derandomized examples (reproducible). Large run: a share of
    FASTIQA_FUZZ_EXAMPLES with a random seed, printed by hypothesis on failure together
    with the @reproduce_failure blob."""
    n = max(1, int(LARGE * large_share)) if LARGE else default
    return settings(max_examples=n, deadline=None, derandomize=not LARGE, print_blob=True, database=None,
                    suppress_health_check=list(HealthCheck))


DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)
LAYOUTS = ("contiguous", "channels_last", "transposed", "sliced", "expanded")
GRAD_OUTPUTS = ("one", "minus_one", "65536", "per_element")
SPECIALS = ("none", "zeros", "constant", "denormal", "nan", "inf", "huge")
FINITE_SPECIALS = ("none", "zeros", "constant", "denormal")


def _from_layout(base: torch.Tensor, layout: str, shape) -> torch.Tensor:
    """A differentiable view/copy of the leaf `base` of the given layout and logical `shape`."""
    n, c, h, w = shape
    if layout == "channels_last":
        return base.contiguous(memory_format=torch.channels_last) if base.dim() == 4 else base
    if layout == "transposed":
        return base.transpose(2, 3)
    if layout == "sliced":
        return base[:, :, 1:, ::2]
    if layout == "expanded":
        return base.expand(n, c, h, w)
    return base


def _base_shape(layout: str, shape):
    n, c, h, w = shape
    return {"transposed": (n, c, w, h), "sliced": (n, c, h + 1, 2 * w - 1),
            "expanded": (n, 1, h, w)}.get(layout, shape)


def _sizes(win):
    """A window size or per-axis sizes as a tuple."""
    return tuple(win) if isinstance(win, (tuple, list)) else (win,)


@st.composite
def cases(draw, ops=None, backends=None):
    name = draw(st.sampled_from(sorted(ops or OPS)))
    op = OPS[name]
    backend = draw(st.sampled_from(backends or BACKENDS))
    dtype = draw(st.sampled_from(DTYPES))
    small = backend == "triton"  # the interpreter is slow: tiny shapes
    opts = {}
    if op.windowed:
        # one number or one per axis (H, W)
        opts["win_size"] = draw(st.sampled_from((3, 5, (3, 5)) if small else (3, 5, 7, (3, 7), (5, 3))))
        opts["win_sigma"] = draw(st.sampled_from((0.5, 1.0, 1.5, (1.5, 0.5))))
        opts["padding"] = draw(st.sampled_from(("valid", "same_zero", "same_reflect")))
    side_min = max(op.min_side, *_sizes(opts.get("win_size", 1)), 2)
    if name == "ms_ssim":  # the coarsest scale must hold one window
        side_min = max(_sizes(ms_ssim_min_size(opts["win_size"], len(MS_WEIGHTS))))
    h = draw(st.integers(side_min, side_min + (3 if small else 9)))
    w = draw(st.integers(side_min, side_min + (3 if small else 9)))
    n = draw(st.integers(1, 2))
    c = draw(st.integers(1, 3))
    return dict(name=name, backend=backend, dtype=dtype, shape=(n, c, h, w), opts=opts,
                layout=draw(st.sampled_from(LAYOUTS)), reduction=draw(st.sampled_from(op.reductions)),
                grads=draw(st.sampled_from(("pred", "target", "both") if op.grad_target else ("pred",))),
                grad_output=draw(st.sampled_from(GRAD_OUTPUTS)), special=draw(st.sampled_from(SPECIALS)),
                seed=draw(st.integers(0, 2 ** 31 - 1)))


def _values(case, gen):
    shape = _base_shape(case["layout"], case["shape"])
    x = torch.rand(shape, generator=gen, dtype=torch.float64) * 0.5 + 0.25
    y = (x + 0.1 * torch.randn(shape, generator=gen, dtype=torch.float64)).clamp(0, 1)
    special = case["special"]
    if special == "zeros":
        x = torch.zeros_like(x)
    elif special == "constant":
        x, y = torch.full_like(x, 0.5), torch.full_like(y, 0.25)
    elif special == "denormal":
        x = x * 1e-40
    elif special in ("nan", "inf"):
        x.view(-1)[int(torch.randint(x.numel(), (1,), generator=gen))] = float(special)
    elif special == "huge":
        x, y = x * 1e30, y * 1e30
        case["opts"]["data_range"] = 1e30
    return x, y


def _run(case, x0, y0, dtype, fn):
    """fn(pred, target) on leaves cast to dtype laid out per case; returns (out, grads, leaves)."""
    # every run sees the values of case["dtype"] (the oracle too: input rounding is no error)
    xb = x0.to(case["dtype"]).to(dtype).requires_grad_(case["grads"] in ("pred", "both"))
    yb = y0.to(case["dtype"]).to(dtype).requires_grad_(case["grads"] in ("target", "both"))
    x = _from_layout(xb, case["layout"], case["shape"])
    y = _from_layout(yb, case["layout"], case["shape"])
    out = fn(x, y)
    return out, xb, yb


def _grad_output(case, out, gen):
    kind = case["grad_output"]
    if kind == "per_element":
        return torch.randn(out.shape, generator=gen, dtype=torch.float64).to(out.dtype)
    # GradScaler scales a scalar loss; a float16 map cannot hold 65536: its largest power of two
    big = 65536.0 if out.dtype != torch.float16 else 32768.0
    value = {"one": 1.0, "minus_one": -1.0, "65536": big}[kind]
    return torch.full_like(out, value)


def _grads(out, leaves, g_out):
    wrt = [t for t in leaves if t.requires_grad]
    return torch.autograd.grad(out, wrt, g_out, allow_unused=True)


# Degenerate inputs (constant planes, zeros, denormals) make SSIM's variances pure
# cancellation, whose rounding depends on the summation order: twice testing's k there.
DEGENERATE_K = 2 * DEFAULT_K


def _compare(what, result, oracle, same, finite_case: bool, k: float = DEFAULT_K, spreads: bool = False):
    """finite cases: fastiqa.testing's rule. Special values: NaN/Inf of the oracle must be
    NaN/Inf in the result (never silently finite); a non-finite result where the oracle is
    finite only where the same-precision reference overflows too; finite entries within
    the bound."""
    r, o, s = result.detach().double(), oracle.detach().double(), same.detach().double()
    assert r.shape == o.shape, f"{what}: shape {tuple(r.shape)} != {tuple(o.shape)}"
    o_bad, r_bad = ~torch.isfinite(o), ~torch.isfinite(r)
    if finite_case:
        # at the edge of the dtype's range (|value| > max / 2) rounding decides overflow
        edge = torch.finfo(result.dtype).max / 2
        allowed = (r_bad & (o.abs() > edge)) | (o_bad & (r.abs() > edge))
        assert not ((o_bad ^ r_bad) & ~allowed).any(), f"{what}: NaN/Inf positions differ from the oracle's"
    else:
        assert not (o_bad & ~r_bad).any(), f"{what}: the oracle is NaN/Inf where the result is finite"
        # spreads: the Triton SSIM kernels blur as band-matrix products (tl.dot), where the band's
        # zeros times a NaN/Inf input are NaN: a special input poisons every output of its tile,
        # not only its window (a known limitation, README; never a silently finite value)
        if not spreads:
            assert not (r_bad & ~o_bad & torch.isfinite(s)).any(), f"{what}: non-finite where the oracle is finite"
    ok = ~o_bad & ~r_bad
    if ok.any():
        # the bound from the entries where the same-precision reference is finite (it may
        # overflow where fastiqa's wider accumulator does not)
        sf = ok & torch.isfinite(s)
        bound = error_bound(o[sf], s[sf], result.dtype, k) if sf.any() else error_bound(o[ok], o[ok], result.dtype, k)
        # at least k roundings of the largest value in the result's own precision
        bound = max(bound, k * torch.finfo(result.dtype).eps * max(1.0, float(o[ok].abs().max())))
        if result.dtype == torch.float64:  # no float64 reference error to measure: the suite's float64 tolerance
            rtol, atol = tol(torch.float64)
            bound = max(bound, atol + rtol * float(o[ok].abs().max()))
        err = float((r - o)[ok].abs().max())
        assert err <= bound, f"{what}: max abs error {err:.3e} > bound {bound:.3e}"


EPS_RATIO = torch.finfo(torch.float64).eps / torch.finfo(torch.float32).eps


def float64_same(oracle: torch.Tensor, same32: torch.Tensor) -> torch.Tensor:
    """The same-precision reference of a float64 result: for float64 it would be the oracle
    itself (error 0), so its error is the float32 reference's scaled to float64's unit
    roundoff (rounding errors scale with it): oracle + (same32 - oracle) * eps64 / eps32."""
    o = oracle.detach().double()
    return o + (same32.detach().double() - o) * EPS_RATIO


def same_dtype(dtype):
    """The dtype the same-precision reference runs in (float32 for float64, see float64_same)."""
    return torch.float32 if dtype == torch.float64 else dtype


def _untranspose(out):
    return out.transpose(2, 3) if out.dim() == 4 else out


def _transposed_opts(opts):
    """The options of the transposed images: per-axis (H, W) windows and sigmas swap axes too
    (without it the second sample computed another function, e.g. a 5x3 window on 3x5 images,
    whose distance from the oracle then set the bound: per-axis cases could not fail)."""
    return {k: tuple(reversed(v)) if k in ("win_size", "win_sigma") and isinstance(v, (tuple, list)) else v
            for k, v in opts.items()}


def _worse(oracle, a, b):
    """Of two same-precision references, the one farther from the oracle (error_bound
    takes the reference's largest error)."""
    if a is None or b is None or oracle is None:
        return a if b is None else b
    o = oracle.detach().double()

    def err(t):
        d = (t.detach().double() - o)[torch.isfinite(o) & torch.isfinite(t.detach().double())]
        return float(d.abs().max()) if d.numel() else 0.0
    return a if err(a) >= err(b) else b


# ops whose Triton kernels blur by tl.dot with a band matrix (NaN/Inf spreads over the tile)
TRITON_TILE_SPREAD = ("ssim", "ssim_loss", "l1_ssim_loss", "ms_ssim")


def check_case(case):
    """Values and gradients of one case against the float64 oracle (module docstring)."""
    op = OPS[case["name"]]
    gen = torch.Generator().manual_seed(case["seed"])
    x0, y0 = _values(case, gen)
    red, opts, dtype = case["reduction"], case["opts"], case["dtype"]
    out, xb, yb = _run(case, x0, y0, dtype, lambda x, y: op.run(x, y, red, case["backend"], opts))
    oracle, xo, yo = _run(case, x0, y0, torch.float64, lambda x, y: op.ref(x, y, red, opts))
    same, xs, ys = _run(case, x0, y0, same_dtype(dtype), lambda x, y: op.ref(x, y, red, opts))
    # a second sample of the reference's rounding: the transposed images (another summation order)
    same_t, xt, yt = _run(case, x0, y0, same_dtype(dtype), lambda x, y: _untranspose(
        op.ref(x.transpose(2, 3), y.transpose(2, 3), red, _transposed_opts(opts))))
    finite = case["special"] in FINITE_SPECIALS
    # float64's same-precision error is only emulated (float64_same): the wider k there too
    k = DEFAULT_K if case["special"] == "none" and dtype != torch.float64 else DEGENERATE_K
    same = _worse(oracle, same, same_t)
    same_v = float64_same(oracle, same) if dtype == torch.float64 else same
    spreads = case["backend"] == "triton" and case["name"] in TRITON_TILE_SPREAD
    _compare("value", out, oracle.to(out.dtype), same_v, finite, k, spreads)
    g_out = _grad_output(case, out, gen)
    got = _grads(out, (xb, yb), g_out)
    want = _grads(oracle, (xo, yo), g_out.double())
    same_g = [_worse(o, a, b) for o, a, b in zip(want, _grads(same, (xs, ys), g_out.to(same.dtype)),
                                                  _grads(same_t, (xt, yt), g_out.to(same.dtype)))]
    if not finite:
        return  # gradients of NaN/Inf inputs: only that backward runs
    for i, (g, o, s) in enumerate(zip(got, want, same_g)):
        _compare(f"gradient {i}", g, o.to(g.dtype), float64_same(o, s) if dtype == torch.float64 else s, True, k)
