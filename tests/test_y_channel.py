"""fastiqa.ops.y_channel (fastiqa_C::y_plane / y_mse / ssim_y): the evaluation's Y
channel of decoded RGB samples (uint8, uint16, float; any strides), cropped, and its MSE
and SSIM without a Y plane, on every CPU ISA variant, against the float64 oracle:
fastiqa.conventions.rgb_to_y and the reference SSIM."""
import pytest
import torch

from fastiqa import _ext, cpu_isa
from fastiqa.backends import reference as R
from fastiqa.conventions import rgb_to_y
from fastiqa.ops.y_channel import ssim_y, y_mse, y_plane

needs_kernel = pytest.mark.skipif(not _ext.has_kernel("ssim_y", "CPU"), reason="compiled CPU kernels not built")
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
    ((torch.zeros(1, 3, 8, 8, dtype=torch.uint8), 0.0, 1.0, 0), ValueError, r"divisors and data_range must be > 0"),
    ((torch.zeros(1, 3, 8, 8, dtype=torch.uint8), 255.0, 1.0, 4), ValueError, r"crop must be >= 0 and leave"),
    ((torch.zeros(1, 3, 8, 8, dtype=torch.uint8), 255.0, 1.0, -1), ValueError, r"crop must be >= 0"),
])
def test_y_plane_bad_arguments(args, err, match):
    with pytest.raises(err, match=match):
        y_plane(*args)


def _noisy(t, seed):
    """t plus noise, clamped to its dtype's range: a prediction for t."""
    g = torch.Generator().manual_seed(seed + 100)
    full = FULL[t.dtype]
    v = t.double() + torch.randn(t.shape, generator=g, dtype=torch.float64) * 0.05 * full
    v = v.clamp(0, full)
    return (v if t.dtype.is_floating_point else v.round()).to(t.dtype)


def _oracle_stats(x, y, div_x, div_y, r, crop):
    yx, yy = _oracle(x, div_x, r, crop), _oracle(y, div_y, r, crop)
    mse = ((yx - yy) ** 2).mean(dim=(1, 2, 3))
    ssim = R.ssim(yx, yy, r, 11, 1.5, padding="valid", reduction="none")
    return mse, ssim


@needs_kernel
@pytest.mark.parametrize("level", cpu_isa.available())
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "strided"])
@pytest.mark.parametrize("dtype", list(FULL), ids=str)
def test_y_mse_and_ssim_y_match_oracle(dtype, layout, level):
    """Odd sizes, batches, crops; several SSIM bands and column strips (the 300-pixel case)."""
    cases = [((1, 3, 11, 11), 0), ((2, 3, 37, 53), 4), ((1, 3, 83, 300), 3)]
    for seed, (shape, crop) in enumerate(cases):
        x = _rgb(shape, dtype, layout, seed)
        y = _noisy(x, seed)
        full = FULL[dtype]
        for div_x, div_y, r in ((full, full, 1.0), (1.0, 1.0, full)):
            with cpu_isa.using(level):
                mse = y_mse(x, y, div_x, div_y, r, crop)
                ssim, mse_of_ssim_pass = ssim_y(x, y, div_x, div_y, r, crop)
            want_mse, want_ssim = _oracle_stats(x, y, div_x, div_y, r, crop)
            assert mse.dtype == ssim.dtype == torch.float64 and mse.shape == ssim.shape == (shape[0],)
            assert torch.equal(mse_of_ssim_pass, mse)  # one definition of the MSE, two kernels
            torch.testing.assert_close(mse, want_mse, rtol=1e-12, atol=0)
            torch.testing.assert_close(ssim, want_ssim, rtol=0, atol=1e-12)


@needs_kernel
def test_stats_of_a_mixed_pair_use_each_images_divisor():
    """An 8-bit image against the 16-bit copy of another: divisors 255 and 65535."""
    v = _rgb((1, 3, 40, 41), torch.uint8, "channels_last", 3)
    u = _noisy(v, 3)
    u16 = (u.to(torch.int32) * 257).to(torch.uint16)
    want_mse, want_ssim = _oracle_stats(v, u, 255.0, 255.0, 1.0, 2)
    # one dtype per call: the 8-bit image as uint16 samples keeps its divisor 255
    mse = y_mse(v.to(torch.uint16), u16, 255.0, 65535.0, 1.0, 2)
    ssim, _ = ssim_y(v.to(torch.uint16), u16, 255.0, 65535.0, 1.0, 2)
    assert torch.equal(mse, y_mse(v, u, 255.0, 255.0, 1.0, 2))  # bitwise: the same Y
    torch.testing.assert_close(mse, want_mse, rtol=1e-12, atol=0)
    torch.testing.assert_close(ssim, want_ssim, rtol=0, atol=1e-12)


@needs_kernel
def test_identical_images_give_zero_mse_and_unit_ssim():
    x = _rgb((2, 3, 30, 31), torch.uint8, "channels_last", 5)
    assert torch.equal(y_mse(x, x.clone(), 1.0, 1.0, 255.0, 1), torch.zeros(2, dtype=torch.float64))
    ssim, mse = ssim_y(x, x.clone(), 1.0, 1.0, 255.0, 1)
    torch.testing.assert_close(ssim, torch.ones(2, dtype=torch.float64), rtol=0, atol=1e-14)
    assert torch.equal(mse, torch.zeros(2, dtype=torch.float64))


def test_reference_backend_gives_the_same_stats():
    x = _rgb((2, 3, 25, 27), torch.uint8, "channels_last", 6)
    y = _noisy(x, 6)
    for fn in (y_mse, ssim_y):
        torch.testing.assert_close(fn(x, y, 1.0, 1.0, 255.0, 2, backend="reference"),
                                   fn(x, y, 1.0, 1.0, 255.0, 2), rtol=1e-12, atol=1e-12)
    assert isinstance(ssim_y(x, y, 1.0, 1.0, 255.0, 2, backend="reference"), tuple)


def test_nan_samples_give_nan_stats():
    x = torch.rand(1, 3, 20, 20, dtype=torch.float64)
    y = x.clone()
    y[0, 1, 10, 10] = float("nan")
    assert torch.isnan(y_mse(x, y, 1.0, 1.0, 1.0, 0)).all()
    assert all(torch.isnan(v).all() for v in ssim_y(x, y, 1.0, 1.0, 1.0, 0))


@pytest.mark.parametrize("fn, args, err, match", [
    (y_mse, (torch.zeros(1, 3, 8, 8, dtype=torch.uint8), torch.zeros(1, 3, 8, 9, dtype=torch.uint8)), ValueError,
     r"x and y must share shape, dtype and device"),
    (ssim_y, (torch.zeros(1, 3, 8, 8, dtype=torch.uint8), torch.zeros(1, 3, 8, 8, dtype=torch.uint16)), ValueError,
     r"x and y must share shape, dtype and device"),
    (ssim_y, (torch.zeros(1, 3, 12, 12, dtype=torch.uint8),) * 2, ValueError,
     r"ssim_y needs images of at least 11x11 pixels after cropping 1"),
    (y_mse, (torch.zeros(1, 1, 8, 8, dtype=torch.uint8),) * 2, ValueError, r"x must be \(N, 3, H, W\)"),
])
def test_pair_bad_arguments(fn, args, err, match):
    with pytest.raises(err, match=match):
        fn(*args, 1.0, 1.0, 255.0, 1)


@needs_kernel
@pytest.mark.parametrize("level", cpu_isa.available())
def test_ssim_y_is_bitwise_ssim_fwd_on_the_y_planes(level):
    """One SSIM formula and one summation order: the samples route and the planes route of
    `fastiqa eval` agree bitwise on SSIM (several bands and column strips)."""
    x = _rgb((2, 3, 90, 301), torch.uint8, "channels_last", 7)
    y = _noisy(x, 7)
    c1, c2 = (0.01 * 255.0) ** 2, (0.03 * 255.0) ** 2
    with cpu_isa.using(level):
        ssim, _ = ssim_y(x, y, 1.0, 1.0, 255.0, 4)
        px, py = y_plane(x, 1.0, 255.0, 4), y_plane(y, 1.0, 255.0, 4)
        per_image = torch.ops.fastiqa_C.ssim_fwd(px, py, [11, 11], [1.5, 1.5], c1, c2, 0, 0, 0, 0.0, False, False)[0]
    assert torch.equal(ssim, per_image)
