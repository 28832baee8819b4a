"""SSIM values against the libraries people use (optional test extra: skipped when absent),
float32, within 1e-5; and the drop-in compat APIs."""
import warnings

import pytest
import torch

import fastiqa.functional as F
from fastiqa.backends import reference as R
from fastiqa.compat import fused_ssim as compat_fused
from fastiqa.compat import pytorch_msssim as compat_pm

TOL = dict(rtol=1e-5, atol=1e-5)


def images(shape=(2, 3, 64, 97), scale=1.0):
    g = torch.Generator().manual_seed(3)
    x = torch.rand(shape, generator=g)
    y = (x + 0.15 * torch.randn(shape, generator=g)).clamp(0, 1)
    return x * scale, y * scale


def test_pytorch_msssim_values_and_compat():
    pm = pytest.importorskip("pytorch_msssim")
    x, y = images(scale=255.0)
    torch.testing.assert_close(F.ssim(x, y, data_range=255), pm.ssim(x, y, data_range=255), **TOL)
    for size_average in (True, False):
        torch.testing.assert_close(compat_pm.ssim(x, y, size_average=size_average),
                                   pm.ssim(x, y, size_average=size_average), **TOL)
        torch.testing.assert_close(compat_pm.ssim(x, y, nonnegative_ssim=True, win_size=7, K=(0.02, 0.04),
                                                  size_average=size_average),
                                   pm.ssim(x, y, nonnegative_ssim=True, win_size=7, K=(0.02, 0.04),
                                           size_average=size_average), **TOL)
    torch.testing.assert_close(compat_pm.SSIM(channel=3)(x, y), pm.SSIM(channel=3)(x, y), **TOL)
    xm, ym = images((2, 3, 170, 183), scale=255.0)
    for size_average in (True, False):
        torch.testing.assert_close(compat_pm.ms_ssim(xm, ym, size_average=size_average),
                                   pm.ms_ssim(xm, ym, size_average=size_average), **TOL)
    torch.testing.assert_close(compat_pm.MS_SSIM(channel=3)(xm, ym), pm.MS_SSIM(channel=3)(xm, ym), **TOL)
    # gradients agree too (pytorch_msssim's own autograd)
    xa, xb = xm.clone().requires_grad_(), xm.clone().requires_grad_()
    compat_pm.ms_ssim(xa, ym).backward()
    pm.ms_ssim(xb, ym).backward()
    torch.testing.assert_close(xa.grad, xb.grad, rtol=1e-4, atol=1e-9)
    # pytorch_msssim's own error for a too-small MS-SSIM image is an AssertionError; ours a ValueError
    with pytest.raises(ValueError, match="161x161"):
        compat_pm.ms_ssim(x, y)


def test_compat_pytorch_msssim_without_peer():
    x, y = images(scale=255.0)
    torch.testing.assert_close(compat_pm.ssim(x, y), R.ssim(x.double(), y.double(), 255.0).float(), **TOL)
    with pytest.raises(ValueError, match="odd"):
        compat_pm.ssim(x, y, win_size=10)
    with pytest.raises(ValueError, match="4-d or 5-d"):
        compat_pm.ssim(x[None, None].expand(2, 2, -1, -1, -1, -1), y[None, None].expand(2, 2, -1, -1, -1, -1))
    with pytest.raises(ValueError, match="Gaussian"):
        compat_pm.ssim(x, y, win=torch.ones(3, 1, 1, 11) / 11)


def test_kornia():
    kornia = pytest.importorskip("kornia")
    x, y = images()
    torch.testing.assert_close(F.ssim(x, y, padding="same_reflect"),
                               kornia.metrics.ssim(x, y, 11, max_val=1.0, padding="same").mean(), **TOL)
    torch.testing.assert_close(F.ssim(x, y, padding="valid"),
                               kornia.metrics.ssim(x, y, 11, max_val=1.0, padding="valid").mean(), **TOL)
    torch.testing.assert_close(F.ssim(x, y, padding="same_reflect", reduction="map"),
                               kornia.metrics.ssim(x, y, 11, max_val=1.0, padding="same"), rtol=1e-5, atol=5e-5)


def test_torchmetrics():
    tm = pytest.importorskip("torchmetrics.functional.image")
    x, y = images()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = tm.structural_similarity_index_measure(x, y, data_range=1.0)
    torch.testing.assert_close(F.ssim(x, y, padding="same_reflect"), want, **TOL)


def test_torchmetrics_contrast_sensitivity():
    """torchmetrics' return_contrast_sensitivity (per image: the mean of the cs map of its reflect-padded
    SSIM with the window's border cropped, i.e. the valid positions) is the mean of contrast * structure."""
    tm = pytest.importorskip("torchmetrics.functional.image")
    x, y = (t.double() for t in images())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, want = tm.structural_similarity_index_measure(x, y, data_range=1.0, return_contrast_sensitivity=True)
    got = F.ssim(x, y, padding="valid", reduction="map", return_components=True)
    torch.testing.assert_close((got.contrast * got.structure).flatten(1).mean(1), want, rtol=0, atol=1e-12)


def test_scikit_image():
    metrics = pytest.importorskip("skimage.metrics")
    x, y = images()
    got = F.ssim(x, y, reduction="none")
    for i in range(x.shape[0]):
        want = metrics.structural_similarity(x[i].numpy(), y[i].numpy(), gaussian_weights=True, sigma=1.5,
                                             use_sample_covariance=False, data_range=1.0, channel_axis=0)
        assert abs(got[i].item() - float(want)) <= 1e-5


def test_scikit_image_defaults():
    """window="uniform", win_size=7, use_sample_covariance=True, padding="valid" is scikit-image's
    structural_similarity with its defaults (7x7 uniform filter, sample covariance, the
    border of the 'reflect'-filtered map cropped), per image and per channel, float64."""
    metrics = pytest.importorskip("skimage.metrics")
    x, y = (t.double() for t in images((2, 3, 45, 58)))
    kw = dict(window="uniform", win_size=7, use_sample_covariance=True, padding="valid")
    got = F.ssim(x, y, reduction="per_channel", **kw)
    for i in range(x.shape[0]):
        want = metrics.structural_similarity(x[i].numpy(), y[i].numpy(), data_range=1.0, channel_axis=0)
        assert abs(F.ssim(x[i:i + 1], y[i:i + 1], **kw).item() - float(want)) <= 1e-12
        for c in range(x.shape[1]):
            one = metrics.structural_similarity(x[i, c].numpy(), y[i, c].numpy(), data_range=1.0)
            assert abs(got[i, c].item() - float(one)) <= 1e-12
    # and in float32, to 1e-5 (the kernels' float32 accumulation)
    got32 = F.ssim(x.float(), y.float(), reduction="none", **kw)
    want = [metrics.structural_similarity(x[i].numpy(), y[i].numpy(), data_range=1.0, channel_axis=0) for i in range(2)]
    torch.testing.assert_close(got32.double(), torch.tensor(want, dtype=torch.float64), **TOL)


def test_fused_ssim_compat():
    x, y = images((1, 3, 40, 50))
    torch.testing.assert_close(compat_fused.fused_ssim(x, y), F.ssim(x, y, padding="same_zero"))
    torch.testing.assert_close(compat_fused.fused_ssim(x, y, padding="valid"), F.ssim(x, y))
    xa = x.clone().requires_grad_()
    v = compat_fused.fused_ssim(xa, y, train=False)
    assert not v.requires_grad
    with pytest.raises(ValueError, match="padding"):
        compat_fused.fused_ssim(x, y, padding="reflect")
