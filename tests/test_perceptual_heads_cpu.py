"""The compiled CPU kernels of the perceptual family (csrc/cpu/perceptual_impl.h: LPIPS and DISTS
distance heads, one layer per call) against the float64 oracle (the heads' formulas with torch
autograd, fastiqa.backends.reference.lpips_head / dists_head), values and gradients of both inputs,
judged by fastiqa.testing's rule: float32 / float64 / float16 / bfloat16; NCHW, channels_last, a
non-dense slice, a permuted and a mixed layout; odd sizes, batch 1, channel counts off the vector
width; every ISA variant this CPU supports; gradients with the strides of empty_like(input); the
same bits for any thread count; one-sided gradients; bad arguments."""
import pytest
import torch

from fastiqa import _ext, cpu_isa
from fastiqa.backends import reference as R
from fastiqa.backends.reference._perceptual import _dists_similarity  # the op's value: 1 - DISTS
from fastiqa.testing import assert_close

pytestmark = pytest.mark.skipif(not _ext.has_kernel("lpips_head_fwd", "CPU"), reason="compiled CPU heads not built")

OPS = {"lpips": (torch.ops.fastiqa_C.lpips_head_fwd, torch.ops.fastiqa_C.lpips_head_bwd, R.lpips_head,
                 lambda c, g: torch.rand(c, generator=g, dtype=torch.float64)),
       "dists": (torch.ops.fastiqa_C.dists_head_fwd, torch.ops.fastiqa_C.dists_head_bwd, _dists_similarity,
                 lambda c, g: torch.rand(2, c, generator=g, dtype=torch.float64) / (2 * c))}
# (N, C, H, W): one pixel per row / a 1x2 image, odd sizes, batch 1, C off the 16 lanes, a
# wide layer (short cf blocks), several LPIPS blocks and DISTS leaves / segments per image
SHAPES = [(1, 2, 1, 2), (1, 3, 11, 11), (3, 5, 37, 53), (2, 16, 19, 8), (2, 37, 23, 19), (1, 300, 7, 9),
          (2, 64, 33, 35)]
LAYOUTS = ["contiguous", "channels_last", "strided", "permuted", "mixed"]


def _layout(t, layout, which):
    if layout == "channels_last" or (layout == "mixed" and which == 1):
        return t.contiguous(memory_format=torch.channels_last)
    if layout == "strided":  # a non-dense view: every other column of a wider tensor
        wide = torch.zeros(*t.shape[:3], 2 * t.shape[3], dtype=t.dtype)
        wide[..., ::2] = t
        return wide[..., ::2]
    if layout == "permuted":  # dense, but neither NCHW nor NHWC
        return t.transpose(2, 3).contiguous().transpose(2, 3)
    return t.contiguous()


def _inputs(shape, dtype, layout, seed, signed=False):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g, dtype=torch.float64)
    y = (x + 0.3 * torch.randn(shape, generator=g, dtype=torch.float64)).clamp_min(0)
    if signed:
        x, y = x - 0.5, y - 0.5
    x[0, :, 0, 0] = 0  # a pixel whose features are all zero (post-ReLU features have them)
    x, y = (_layout(t.to(dtype), layout, i) for i, t in enumerate((x, y)))
    return x, y, g


def _value_and_grads(fn, x, y, go):
    x, y = (t.detach().requires_grad_(True) for t in (x, y))
    v = fn(x, y)
    gx, gy = torch.autograd.grad((v * go.to(v.dtype)).sum(), (x, y))
    return v, gx, gy


def _check(metric, x, y, w, g, what):
    fwd, _, formula, _ = OPS[metric]
    go = torch.randn(x.shape[0], generator=g, dtype=torch.float64)
    w = w.to(x.dtype)  # the weights in the features' dtype, as fastiqa.functional._heads passes them
    got = _value_and_grads(lambda a, b: fwd(a, b, w), x, y, go)
    want = _value_and_grads(lambda a, b: formula([a], [b], [w.double()]), x.double(), y.double(), go)
    same = _value_and_grads(lambda a, b: formula([a], [b], [w]), x, y, go)
    acc = torch.float64 if x.dtype == torch.float64 else torch.float32
    assert got[0].dtype == acc and got[1].dtype == x.dtype and got[2].dtype == y.dtype
    assert got[1].stride() == torch.empty_like(x).stride() and got[2].stride() == torch.empty_like(y).stride()
    for r, o, s, name in zip(got, want, same, ("value", "grad pred", "grad target")):
        if metric == "lpips" and name != "value":  # autograd of the formula is NaN at the zero pixel
            o, s, r = (t.detach().clone() for t in (o, s, r))
            for t in (o, s, r):
                t[0, :, 0, 0] = 0
        assert_close(r, o, s, what=f"{what} {name}")


CASES = ([(s, d, lay) for s in SHAPES for d in (torch.float32, torch.float64) for lay in LAYOUTS[:2]]
         + [(s, d, lay) for s in SHAPES[1::3] for d in (torch.float16, torch.bfloat16) for lay in LAYOUTS]
         + [(s, torch.float32, lay) for s in SHAPES[2:4] for lay in LAYOUTS[2:]])


@pytest.mark.parametrize("shape,dtype,layout", [pytest.param(*c, id=f"{'x'.join(map(str, c[0]))}-"
                                                                     f"{str(c[1])[6:]}-{c[2]}") for c in CASES])
@pytest.mark.parametrize("metric", list(OPS))
def test_matches_the_oracle(metric, shape, dtype, layout):
    x, y, g = _inputs(shape, dtype, layout, seed=sum(shape))
    w = OPS[metric][3](shape[1], g)
    _check(metric, x, y, w, g, f"{metric} {dtype} {layout}")


@pytest.mark.parametrize("metric", list(OPS))
def test_signed_features(metric):
    """Features of either sign (a layer before its ReLU): DISTS means near 0."""
    x, y, g = _inputs((2, 24, 13, 17), torch.float32, "contiguous", seed=5, signed=True)
    _check(metric, x, y, OPS[metric][3](24, g), g, f"{metric} signed")


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16], ids=str)
@pytest.mark.parametrize("metric", list(OPS))
@pytest.mark.parametrize("level", cpu_isa.available())
def test_every_isa_level(level, metric, dtype, layout):
    x, y, g = _inputs((2, 37, 23, 19), dtype, layout, seed=11)
    w = OPS[metric][3](37, g)
    with cpu_isa.using(level):
        _check(metric, x, y, w, g, f"{metric} on {level} {dtype} {layout}")


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("metric", list(OPS))
def test_same_bits_for_any_thread_count(metric, layout):
    x, y, g = _inputs((2, 64, 33, 35), torch.float32, layout, seed=2)
    w = OPS[metric][3](64, g).float()
    fwd, bwd = OPS[metric][:2]
    go = torch.rand(2)
    before = torch.get_num_threads()
    runs = []
    try:
        for threads in (1, 3):
            torch.set_num_threads(threads)
            runs.append((fwd(x, y, w), *bwd(x, y, w, go, True, True)))
    finally:
        torch.set_num_threads(before)
    for a, b in zip(*runs):
        assert torch.equal(a, b)


@pytest.mark.parametrize("metric", list(OPS))
def test_one_sided_gradients(metric):
    x, y, g = _inputs((2, 20, 9, 10), torch.float32, "channels_last", seed=4)
    w = OPS[metric][3](20, g).float()
    bwd = OPS[metric][1]
    go = torch.rand(2)
    both = bwd(x, y, w, go, True, True)
    gx, e1 = bwd(x, y, w, go, True, False)
    e2, gy = bwd(x, y, w, go, False, True)
    assert torch.equal(gx, both[0]) and torch.equal(gy, both[1])
    assert e1.numel() == 0 and e2.numel() == 0
    n1, n2 = bwd(x, y, w, go, False, False)
    assert n1.numel() == 0 and n2.numel() == 0


@pytest.mark.parametrize("metric", list(OPS))
def test_bad_arguments_are_named(metric):
    fwd, bwd = OPS[metric][:2]
    x = torch.rand(2, 3, 4, 5)
    w = OPS[metric][3](3, torch.Generator().manual_seed(0)).float()
    with pytest.raises(RuntimeError, match="weight must be"):
        fwd(x, x, w[..., :2])
    with pytest.raises(RuntimeError, match="target must have pred's shape"):
        fwd(x, x[:1], w)
    with pytest.raises(RuntimeError, match=r"\(N, C, H, W\)"):
        fwd(x[0], x[0], w)
    with pytest.raises(RuntimeError, match="one floating dtype"):
        fwd(x, x.double(), w)
    with pytest.raises(RuntimeError, match="grad_out"):
        bwd(x, x, w, torch.rand(3), True, True)


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("level", cpu_isa.available())
def test_identical_features(level, layout):
    """LPIPS(x, x) is exactly 0 with exactly zero gradients (no FMA residue of u - v), and
    DISTS's similarity is the sum of its weights (S1 = S2 = 1) on every variant."""
    x, _, g = _inputs((2, 37, 13, 11), torch.float32, layout, seed=8)
    w, ab = torch.rand(37, generator=g).float(), (torch.rand(2, 37, generator=g) / 74).float()
    go = torch.rand(2)
    with cpu_isa.using(level):
        assert torch.equal(torch.ops.fastiqa_C.lpips_head_fwd(x, x, w), torch.zeros(2))
        for grad in torch.ops.fastiqa_C.lpips_head_bwd(x, x, w, go, True, True):
            assert torch.equal(grad, torch.zeros_like(x))
        sim = torch.ops.fastiqa_C.dists_head_fwd(x, x, ab)
    torch.testing.assert_close(sim, ab.sum().expand(2), rtol=1e-6, atol=0)
