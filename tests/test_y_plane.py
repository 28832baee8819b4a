"""fastiqa_C::y_plane (the evaluation's Y planes, fastiqa.ops.psnr.y_plane): the cropped
BT.601 Y of decoded RGB samples in one pass, on every CPU ISA variant, against the
formula of fastiqa.conventions.rgb_to_y in float64."""
import pytest
import torch

from fastiqa import _ext, cpu_isa
from fastiqa.backends import reference as R
from fastiqa.conventions import rgb_to_y
from fastiqa.ops.psnr import y_plane

needs_kernel = pytest.mark.skipif(not _ext.has_kernel("y_plane", "CPU"), reason="compiled CPU kernels not built")
FULL = {torch.uint8: 255.0, torch.uint16: 65535.0, torch.float32: 1.0, torch.float64: 1.0}


def _rgb(shape, dtype, layout, seed):
    g = torch.Generator().manual_seed(seed)
    if dtype.is_floating_point:
        t = torch.rand(shape, generator=g, dtype=torch.float64).to(dtype)
    else:
        t = torch.randint(0, int(FULL[dtype]) + 1, shape, generator=g, dtype=torch.int32).to(dtype)
    if layout == "channels_last":  # what a decoder gives: (H, W, 3) permuted
        t = t.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)
    elif layout == "strided":  # every other column of a wider image
        wide = torch.cat([t, t], dim=3)[..., ::2]
        t = wide
    return t


def _oracle(t, div, r, crop):
    h, w = t.shape[-2:]
    x = t.to(torch.float64)[..., crop:h - crop, crop:w - crop] / div
    return rgb_to_y(x, r)  # x is RGB in [0, r] units


@needs_kernel
@pytest.mark.parametrize("level", cpu_isa.available())
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "strided"])
@pytest.mark.parametrize("dtype", list(FULL), ids=str)
def test_y_plane_matches_formula(dtype, layout, level):
    for seed, (shape, crop) in enumerate([((1, 3, 11, 11), 0), ((2, 3, 37, 53), 4), ((3, 3, 16, 29), 7)]):
        t = _rgb(shape, dtype, layout, seed)
        full = FULL[dtype]
        for div, r in ((full, 1.0), (1.0, full)):  # [0, 1] units, and 0..255 without a division
            with cpu_isa.using(level):
                got = y_plane(t, div, r, crop)
            want = _oracle(t, div, r, crop)
            assert got.dtype == torch.float64 and got.shape == want.shape and got.is_contiguous()
            torch.testing.assert_close(got, want, rtol=1e-14, atol=1e-12 * r)
            torch.testing.assert_close(got, R.y_plane(t, div, r, crop), rtol=1e-14, atol=1e-12 * r)


@needs_kernel
@pytest.mark.parametrize("level", cpu_isa.available())
def test_y_plane_8_bit_and_16_bit_copy_are_bitwise_equal(level):
    v = torch.randint(0, 256, (2, 3, 21, 34), dtype=torch.int32)
    with cpu_isa.using(level):
        a = y_plane(v.to(torch.uint8), 255.0, 1.0, 3)
        b = y_plane((v * 257).to(torch.uint16), 65535.0, 1.0, 3)
    assert torch.equal(a, b)


def test_y_plane_reference_is_differentiable():
    t = torch.rand(1, 3, 12, 13, dtype=torch.float64, requires_grad=True)
    out = y_plane(t, 1.0, 1.0, 2)
    assert out.grad_fn is not None
    torch.autograd.gradcheck(lambda a: y_plane(a, 2.0, 1.0, 2), (t,))


@pytest.mark.parametrize("args, err, match", [
    ((torch.zeros(1, 1, 8, 8, dtype=torch.uint8), 255.0, 1.0, 0), ValueError, r"img must be \(N, 3, H, W\)"),
    ((torch.zeros(1, 3, 8, 8, dtype=torch.int32), 255.0, 1.0, 0), TypeError, r"img must be one of"),
    ((torch.zeros(1, 3, 8, 8, dtype=torch.uint8), 0.0, 1.0, 0), ValueError, r"divisor and data_range must be > 0"),
    ((torch.zeros(1, 3, 8, 8, dtype=torch.uint8), 255.0, 1.0, 4), ValueError, r"crop must be >= 0 and leave"),
    ((torch.zeros(1, 3, 8, 8, dtype=torch.uint8), 255.0, 1.0, -1), ValueError, r"crop must be >= 0"),
])
def test_y_plane_bad_arguments(args, err, match):
    with pytest.raises(err, match=match):
        y_plane(*args)
