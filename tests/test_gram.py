"""Gram family: gram_matrix and style_loss against the float64 reference, on every
backend available here (reference, cpu, triton under the interpreter)."""
import pytest
import torch

import fastiqa.functional as F
from fastiqa import _ext
from fastiqa.backends import reference as R
from fastiqa.ops import gram as G

from support import cpu_backends, overload, tol

BACKENDS = cpu_backends("gram")

HAS_CPU = _ext.has_kernel("style_fwd", "CPU")
GRAM_BACKENDS = [b for b in BACKENDS if b != "cpu" or HAS_CPU]

# (N, C, H, W): C in 3, 64, 257; H*W in 1, 37*53, 4096; batch 1 and 8
SHAPES_FULL = [(1, 3, 1, 1), (8, 3, 37, 53), (1, 64, 37, 53), (2, 257, 1, 1), (1, 257, 64, 64),
               (8, 64, 64, 64)]
SHAPES_TRITON = [(1, 3, 1, 1), (2, 5, 7, 9), (2, 70, 6, 7)]  # the interpreter is slow


def shapes_for(backend):
    return SHAPES_TRITON if backend == "triton" else SHAPES_FULL


def cases(fn):
    return [(b, s) for b in GRAM_BACKENDS for s in shapes_for(b)]


def close(got, want, dtype, what=""):
    """Max error relative to the largest reference magnitude (entries of a Gram or a
    gradient span orders of magnitude; an entrywise rtol would test noise)."""
    rtol, _ = tol(dtype)
    got = got.double()
    assert torch.isfinite(got).all(), f"{what}: non-finite values"
    scale = want.detach().abs().max().clamp_min(1e-300)
    err = float((got.detach() - want.detach()).abs().max() / scale)
    assert err <= rtol, f"{what}: relative error {err:.2e} > {rtol:.0e}"


def layout(t, kind):
    if kind == "channels_last":
        return t.contiguous(memory_format=torch.channels_last)
    if kind == "strided":  # a slice with gaps: not dense
        out = torch.stack([t, t], dim=-1)[..., 0]
        assert not out.is_contiguous() and torch.equal(out, t)
        return out
    return t


@pytest.mark.parametrize("backend,shape", [(b, s) for b in GRAM_BACKENDS for s in shapes_for(b)])
@pytest.mark.parametrize("criterion", ["l1", "l2", "fro"])
def test_style_loss_values_and_grads(backend, shape, criterion):
    x64 = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    y64 = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    ref = R.style_loss(x64, y64, criterion)
    gx_ref, gy_ref = torch.autograd.grad(ref, (x64, y64))
    x = x64.detach().float().requires_grad_(True)
    y = y64.detach().float().requires_grad_(True)
    out = F.style_loss(x, y, criterion, backend=backend)
    assert out.dtype == torch.float32 and out.dim() == 0
    gx, gy = torch.autograd.grad(out, (x, y))
    close(out, ref.detach(), torch.float32, "loss")
    close(gx, gx_ref, torch.float32, "grad x")
    close(gy, gy_ref, torch.float32, "grad y")


@pytest.mark.parametrize("backend,shape", [(b, s) for b in GRAM_BACKENDS for s in shapes_for(b)])
@pytest.mark.parametrize("normalize", [True, False])
def test_gram_matrix_values_and_grad(backend, shape, normalize):
    f64 = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    ref = R.gram_matrix(f64, normalize)
    w = torch.randn_like(ref)
    (g_ref,) = torch.autograd.grad((ref * w).sum(), f64)
    f = f64.detach().float().requires_grad_(True)
    g = F.gram_matrix(f, normalize, backend=backend)
    assert g.shape == ref.shape and g.dtype == torch.float32
    close(g, ref.detach(), torch.float32, "gram")
    assert torch.equal(g, g.transpose(1, 2)), "the Gram must be exactly symmetric"
    (grad,) = torch.autograd.grad((g * w.float()).sum(), f)
    close(grad, g_ref, torch.float32, "grad")


@pytest.mark.parametrize("backend", GRAM_BACKENDS)
@pytest.mark.parametrize("kind", ["channels_last", "strided"])
def test_layouts(backend, kind):
    shape = (2, 5, 7, 9) if backend == "triton" else (3, 64, 37, 53)
    x64 = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    y64 = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    ref = R.style_loss(x64, y64, "l2")
    gx_ref, gy_ref = torch.autograd.grad(ref, (x64, y64))
    x = layout(x64.detach().float(), kind).requires_grad_(True)
    y = layout(y64.detach().float(), kind).requires_grad_(True)
    out = F.style_loss(x, y, "l2", backend=backend)
    gx, gy = torch.autograd.grad(out, (x, y))
    close(out, ref.detach(), torch.float32, "loss")
    close(gx, gx_ref, torch.float32, "grad x")
    close(gy, gy_ref, torch.float32, "grad y")
    close(F.gram_matrix(x, backend=backend), R.gram_matrix(x64).detach(), torch.float32, "gram")


@pytest.mark.parametrize("backend", GRAM_BACKENDS)
def test_mixed_layouts(backend):
    shape = (2, 5, 7, 9)
    x = torch.randn(shape).contiguous(memory_format=torch.channels_last)
    y = torch.randn(shape)
    ref = R.style_loss(x.double(), y.double(), "l1")
    close(F.style_loss(x, y, backend=backend), ref, torch.float32, "loss")


@pytest.mark.parametrize("backend", GRAM_BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_dtypes(backend, dtype):
    shape = (2, 5, 7, 9) if backend == "triton" else (2, 64, 37, 53)
    x64 = torch.randn(shape, dtype=torch.float64)
    y64 = torch.randn(shape, dtype=torch.float64)
    x = x64.to(dtype).requires_grad_(True)
    y = y64.to(dtype).requires_grad_(True)
    # the reference on the rounded inputs, in float64
    xr = x.detach().double().requires_grad_(True)
    yr = y.detach().double().requires_grad_(True)
    # gradients of a normalised style loss are ~1e-11: below float16's range without the
    # loss scaling (GradScaler) that float16 training uses anyway, so scale as it would
    loss_scale = 2.0 ** 24 if dtype == torch.float16 else 1.0
    ref = R.style_loss(xr, yr, "l2")
    gx_ref, gy_ref = torch.autograd.grad(ref * loss_scale, (xr, yr))
    out = F.style_loss(x, y, "l2", backend=backend)
    assert out.dtype == torch.float32
    gx, gy = torch.autograd.grad(out * loss_scale, (x, y))
    assert gx.dtype == dtype and gy.dtype == dtype
    close(out, ref.detach(), dtype, "loss")
    close(gx, gx_ref, dtype, "grad x")
    close(gy, gy_ref, dtype, "grad y")
    g = F.gram_matrix(x, backend=backend)
    assert g.dtype == dtype
    close(g, R.gram_matrix(xr).detach(), dtype, "gram")


@pytest.mark.parametrize("backend", [b for b in GRAM_BACKENDS if b != "triton"])
def test_fp16_large_magnitude_no_overflow(backend):
    # fp16 features of magnitude 100 over H*W = 4096: the raw sums reach ~4e7 (> 65504)
    f = (100 * torch.randn(1, 8, 64, 64)).half()
    g = F.gram_matrix(f, backend=backend)
    assert torch.isfinite(g).all()
    close(g, R.gram_matrix(f.double()), torch.float16, "gram")
    g32 = F.gram_matrix(f, normalize=False, out_dtype=torch.float32, backend=backend)
    assert torch.isfinite(g32).all() and float(g32.abs().max()) > 65504
    close(g32, R.gram_matrix(f.double(), normalize=False), torch.float16, "raw gram")
    y = (100 * torch.randn(1, 8, 64, 64)).half()
    loss = F.style_loss(f, y, "fro", backend=backend)
    close(loss, R.style_loss(f.double(), y.double(), "fro"), torch.float16, "loss")


@pytest.mark.skipif(not any(b == "triton" for b in GRAM_BACKENDS), reason="triton is not installed")
def test_fp16_large_magnitude_triton():
    f = (100 * torch.randn(1, 3, 64, 64)).half()
    g = F.gram_matrix(f, backend="triton")
    assert torch.isfinite(g).all()
    close(g, R.gram_matrix(f.double()), torch.float16, "gram")


@pytest.mark.parametrize("backend", GRAM_BACKENDS)
@pytest.mark.parametrize("tshape", ["full", "one", "2d"])
def test_target_gram(backend, tshape):
    shape = (2, 5, 7, 9) if backend == "triton" else (3, 64, 20, 21)
    x64 = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    y64 = torch.randn(shape, dtype=torch.float64)
    t64 = R.gram_matrix(y64)
    if tshape == "one":
        t64 = t64[:1]
    elif tshape == "2d":
        t64 = t64[0]
    t64 = t64.clone().requires_grad_(True)
    for criterion in ("l1", "fro"):
        ref = R.style_loss(x64, None, criterion, target_gram=t64)
        gx_ref, gt_ref = torch.autograd.grad(ref, (x64, t64))
        x = x64.detach().float().requires_grad_(True)
        t = t64.detach().float().requires_grad_(True)
        out = F.style_loss(x, target_gram=t, criterion=criterion, backend=backend)
        gx, gt = torch.autograd.grad(out, (x, t))
        close(out, ref.detach(), torch.float32, "loss")
        close(gx, gx_ref, torch.float32, "grad x")
        assert gt.shape == t.shape
        close(gt, gt_ref, torch.float32, "grad target")


@pytest.mark.parametrize("backend", GRAM_BACKENDS)
def test_only_one_input_requires_grad(backend):
    x = torch.randn(2, 5, 7, 9, requires_grad=True)
    y = torch.randn(2, 5, 7, 9)
    out = F.style_loss(x, y, backend=backend)
    out.backward()
    xr = x.detach().double().requires_grad_(True)
    R.style_loss(xr, y.double()).backward()
    close(x.grad, xr.grad, torch.float32, "grad x")
    assert y.grad is None
    with torch.no_grad():
        assert F.style_loss(x, y, backend=backend).requires_grad is False


@pytest.mark.skipif(not HAS_CPU, reason="compiled CPU kernels not built")
@pytest.mark.parametrize("criterion", ["l2", "fro"])
def test_gradcheck_cpu(criterion):
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64, requires_grad=True)
    y = torch.randn(2, 3, 4, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: F.style_loss(a, b, criterion, backend="cpu"), (x, y))
    assert torch.autograd.gradcheck(lambda a: F.gram_matrix(a, backend="cpu"), (x,))
    t = torch.randn(1, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda a, tt: F.style_loss(a, target_gram=tt, criterion=criterion, backend="cpu"), (x, t))
    xc = x.detach().contiguous(memory_format=torch.channels_last).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: F.style_loss(a, b, criterion, backend="cpu"), (xc, y))


@pytest.mark.skipif(not HAS_CPU, reason="compiled CPU kernels not built")
def test_gradcheck_cpu_l1():
    # l1 is not differentiable where G_x == G_y; well-separated inputs keep gradcheck away
    x = torch.randn(1, 3, 4, 5, dtype=torch.float64, requires_grad=True)
    y = (0.1 * torch.randn(1, 3, 4, 5, dtype=torch.float64)).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: F.style_loss(a, b, "l1", backend="cpu"), (x, y))


def test_gradcheck_reference():
    x = torch.randn(1, 3, 4, 5, dtype=torch.float64, requires_grad=True)
    y = torch.randn(1, 3, 4, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: F.style_loss(a, b, "l2", backend="reference"), (x, y))


@pytest.mark.parametrize("backend", [b for b in GRAM_BACKENDS if b != "triton"])
def test_opcheck(backend):
    x = torch.randn(2, 5, 63, requires_grad=True)
    y = torch.randn(2, 5, 63, requires_grad=True)
    scale = 1.0 / (5 * 63)
    torch.library.opcheck(overload("gram_fwd", backend), (x, scale))
    torch.library.opcheck(overload("style_fwd", backend), (x, y, None, scale, 1, True))
    t = torch.randn(1, 5, 5, requires_grad=True)
    torch.library.opcheck(overload("style_fwd", backend), (x, None, t, scale, 2, True))
    p = torch.randn(2, 5, 5)
    torch.library.opcheck(overload("style_bwd", backend),
                          (x.detach(), y.detach(), p, torch.tensor(1.0), scale, True, True))
    torch.library.opcheck(overload("gram_apply", backend), (p, x.detach(), scale))


@pytest.mark.skipif(not HAS_CPU, reason="compiled CPU kernels not built")
def test_torch_compile_fullgraph():
    x = torch.randn(2, 5, 7, 9, requires_grad=True)
    y = torch.randn(2, 5, 7, 9, requires_grad=True)

    @torch.compile(fullgraph=True, backend="aot_eager")
    def fn(a, b):
        return F.style_loss(a, b, "l1") + F.gram_matrix(a).sum()

    out = fn(x, y)
    out.backward()
    xr = x.detach().double().requires_grad_(True)
    yr = y.detach().double().requires_grad_(True)
    ref = R.style_loss(xr, yr, "l1") + R.gram_matrix(xr).sum()
    ref.backward()
    close(out, ref.detach(), torch.float32, "loss")
    close(x.grad, xr.grad, torch.float32, "grad x")
    close(y.grad, yr.grad, torch.float32, "grad y")


@pytest.mark.parametrize("backend", GRAM_BACKENDS)
def test_autocast_bf16(backend):
    conv = torch.nn.Conv2d(3, 16, 3, padding=1)
    img_x, img_y = torch.rand(2, 3, 20, 20), torch.rand(2, 3, 20, 20)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fx, fy = conv(img_x), conv(img_y)
        loss = F.style_loss(fx, fy, "l1", backend=backend)
        g = F.gram_matrix(fx, out_dtype=torch.float32, backend=backend)
    close(g, R.gram_matrix(fx.detach().double()), torch.bfloat16, "gram")
    assert fx.dtype == torch.bfloat16 and loss.dtype == torch.float32
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in conv.parameters())
    close(loss, R.style_loss(fx.detach().double(), fy.detach().double(), "l1"), torch.bfloat16, "loss")


@pytest.mark.skipif(not HAS_CPU, reason="compiled CPU kernels not built")
def test_deterministic():
    x = torch.randn(3, 64, 37, 53)
    y = torch.randn(3, 64, 37, 53)
    a = F.style_loss(x, y, "l1", backend="cpu")
    b = F.style_loss(x, y, "l1", backend="cpu")
    assert torch.equal(a, b)
    assert torch.equal(F.gram_matrix(x, backend="cpu"), F.gram_matrix(x, backend="cpu"))


def test_empty_spatial_and_zero_difference():
    x = torch.randn(2, 3, 5, 5, requires_grad=True)
    loss = F.style_loss(x, x.detach().clone(), "fro")
    assert float(loss.detach()) == pytest.approx(0.0, abs=1e-6)
    loss.backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("bad,exc,word", [
    (lambda: F.style_loss(torch.randn(2, 3, 4), torch.randn(2, 3, 4)), ValueError, "pred"),
    (lambda: F.style_loss(torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 5)), ValueError, "same shape"),
    (lambda: F.style_loss(torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4), "l3"), ValueError, "criterion"),
    (lambda: F.style_loss(torch.ones(2, 3, 4, 4, dtype=torch.int64), torch.ones(2, 3, 4, 4)), TypeError, "pred"),
    (lambda: F.style_loss(torch.randn(2, 3, 4, 4)), ValueError, "target"),
    (lambda: F.style_loss(torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4), target_gram=torch.randn(3, 3)),
     ValueError, "target_gram"),
    (lambda: F.style_loss(torch.randn(2, 3, 4, 4), target_gram=torch.randn(2, 4, 4)), ValueError, "target_gram"),
    (lambda: F.gram_matrix(torch.randn(3, 4, 4)), ValueError, "feat"),
    (lambda: F.gram_matrix([1.0]), TypeError, "feat"),
    (lambda: F.gram_matrix(torch.randn(1, 3, 4, 4), normalize=1), TypeError, "normalize"),
    (lambda: F.gram_matrix(torch.randn(1, 3, 4, 4), backend="nope"), ValueError, "backend"),
])
def test_bad_input(bad, exc, word):
    with pytest.raises(exc, match=word):
        bad()


def test_gram_ops_module_layout_helper():
    t = torch.randn(2, 3, 4, 5).contiguous(memory_format=torch.channels_last)
    v = G.features(t)
    assert v.shape == (2, 3, 20) and v.data_ptr() == t.data_ptr()


@pytest.mark.parametrize("backend", GRAM_BACKENDS)
def test_only_target_side_requires_grad_and_unnormalised(backend):
    x = torch.randn(2, 5, 7, 9)
    y = torch.randn(2, 5, 7, 9, requires_grad=True)
    out = F.style_loss(x, y, "l2", normalize=False, backend=backend)
    out.backward()
    yr = y.detach().double().requires_grad_(True)
    ref = R.style_loss(x.double(), yr, "l2", normalize=False)
    ref.backward()
    close(out, ref.detach(), torch.float32, "loss")
    close(y.grad, yr.grad, torch.float32, "grad y")
    assert x.grad is None


def test_info_reports_the_gram_family():
    from fastiqa.info import collect

    fam = collect()["families"]["gram"]
    assert fam["built_cpu"] == HAS_CPU
    import os

    assert fam["on_cpu_tensors"] == (os.environ.get("FASTIQA_BACKEND") or ("cpu" if HAS_CPU else "reference"))
