"""fastiqa.metrics (BasicSR-exact sr_psnr / sr_ssim) and fastiqa.meters."""
import math

import _basicsr_metrics as B
import numpy as np
import pytest
import torch

from fastiqa import metrics as M
from fastiqa.backends import reference as R
from fastiqa.meters import MeterCollection, PSNRMeter, SSIMMeter


def _pair_uint8(h=40, w=45, c=3, n=None, seed=0):
    rng = np.random.default_rng(seed)
    shape = (h, w, c) if n is None else (n, h, w, c)
    hr = rng.integers(0, 256, shape, dtype=np.uint8)
    noise = rng.normal(0, 12, shape)
    sr = np.clip(hr.astype(np.float64) + noise, 0, 255).round().astype(np.uint8)
    return sr, hr


@pytest.mark.parametrize("crop", [0, 4])
@pytest.mark.parametrize("y", [False, True])
def test_sr_psnr_matches_basicsr_transcription(crop, y):
    sr, hr = _pair_uint8()
    want = B.calculate_psnr(sr, hr, crop, "HWC", y)
    got = M.sr_psnr(sr, hr, crop, test_y_channel=y)
    assert isinstance(got, float)
    # BasicSR rounds its Y channel to float32; we keep float64
    assert got == pytest.approx(want, abs=1e-5 if y else 1e-10)
    # CHW input order, float numpy in [0, 255]
    got_chw = M.sr_psnr(sr.transpose(2, 0, 1).astype(np.float64), hr.transpose(2, 0, 1).astype(np.float64), crop,
                        input_order="CHW", test_y_channel=y)
    assert got_chw == pytest.approx(B.calculate_psnr(sr.transpose(2, 0, 1), hr.transpose(2, 0, 1), crop, "CHW", y),
                                    abs=1e-5 if y else 1e-10)


@pytest.mark.parametrize("crop", [0, 3])
@pytest.mark.parametrize("y", [False, True])
def test_sr_ssim_matches_basicsr_transcription(crop, y):
    sr, hr = _pair_uint8(32, 35)
    want = B.calculate_ssim(sr, hr, crop, "HWC", y)
    got = M.sr_ssim(sr, hr, crop, test_y_channel=y)
    assert got == pytest.approx(want, abs=1e-6 if y else 1e-10)


def test_batches_tensors_and_channel_orders_agree():
    sr, hr = _pair_uint8(n=3)
    want = [B.calculate_psnr(sr[i], hr[i], 4, "HWC", True) for i in range(3)]
    got_np = M.sr_psnr(sr, hr, 4, test_y_channel=True)  # numpy batch, BGR, HWC, [0, 255]
    assert isinstance(got_np, np.ndarray) and got_np.shape == (3,)
    np.testing.assert_allclose(got_np, want, atol=1e-5)
    # the same images as BasicSR's tensors: RGB, NCHW, float in [0, 1]
    to_t = lambda a: torch.from_numpy(a[..., ::-1].copy()).permute(0, 3, 1, 2).float() / 255
    got_t = M.sr_psnr(to_t(sr), to_t(hr), 4, test_y_channel=True)
    assert isinstance(got_t, torch.Tensor) and got_t.dtype == torch.float64
    np.testing.assert_allclose(got_t.numpy(), want, atol=1e-4)
    # uint8 RGB tensors
    to_u8 = lambda a: torch.from_numpy(a[..., ::-1].copy()).permute(0, 3, 1, 2)
    np.testing.assert_allclose(M.sr_psnr(to_u8(sr), to_u8(hr), 4, test_y_channel=True).numpy(), want, atol=1e-5)
    # RGB numpy needs channel_order="rgb"; reading it as BGR gives another (wrong) number
    rgb_sr, rgb_hr = sr[..., ::-1].copy(), hr[..., ::-1].copy()
    np.testing.assert_allclose(M.sr_psnr(rgb_sr, rgb_hr, 4, test_y_channel=True, channel_order="rgb"), want, atol=1e-5)
    assert not np.allclose(M.sr_psnr(rgb_sr, rgb_hr, 4, test_y_channel=True), want, atol=1e-3)
    ssim_t = M.sr_ssim(to_t(sr), to_t(hr), 4, test_y_channel=True)
    np.testing.assert_allclose(ssim_t.numpy(), [B.calculate_ssim(sr[i], hr[i], 4, "HWC", True) for i in range(3)],
                               atol=1e-6)


def test_grayscale_and_four_channels_follow_basicsr():
    sr, hr = _pair_uint8(30, 31, 1)
    g_sr, g_hr = sr[..., 0], hr[..., 0]
    assert M.sr_psnr(g_sr, g_hr, 2, test_y_channel=True) == pytest.approx(
        B.calculate_psnr(g_sr, g_hr, 2, "HWC", True), abs=1e-5)
    sr4, hr4 = _pair_uint8(30, 31, 4)  # test_y_channel leaves non-RGB images as they are
    assert M.sr_psnr(sr4, hr4, 2, test_y_channel=True) == pytest.approx(
        B.calculate_psnr(sr4, hr4, 2, "HWC", True), abs=1e-5)


def test_quantize_option_equals_rounding_first():
    rng = np.random.default_rng(1)
    hr = torch.from_numpy(rng.integers(0, 256, (2, 3, 24, 26))).double() / 255
    sr = (hr + torch.from_numpy(rng.normal(0, 0.03, hr.shape))).clamp(0, 1)
    rounded = torch.round(sr * 255) / 255
    np.testing.assert_allclose(M.sr_psnr(sr, hr, 2, test_y_channel=True, quantize=True).numpy(),
                               M.sr_psnr(rounded, hr, 2, test_y_channel=True).numpy(), atol=1e-9)
    np.testing.assert_allclose(M.sr_ssim(sr, hr, 2, test_y_channel=True, quantize=True).numpy(),
                               M.sr_ssim(rounded, hr, 2, test_y_channel=True).numpy(), atol=1e-12)


def test_identical_images_psnr_inf():
    _, hr = _pair_uint8()
    assert math.isinf(M.sr_psnr(hr, hr.copy(), 4, test_y_channel=True))
    assert M.sr_ssim(hr, hr.copy(), 4, test_y_channel=True) == pytest.approx(1.0)


def test_luma_constants_match_reference():
    assert M.Y_WEIGHTS == R.Y_WEIGHTS and M.Y_OFFSET == R.Y_OFFSET


def test_against_scikit_image():
    skm = pytest.importorskip("skimage.metrics", reason="scikit-image not installed (optional peer)")
    sr, hr = _pair_uint8(48, 50)
    crop = 4
    ysr = B.to_y_channel(sr[crop:-crop, crop:-crop]).astype(np.float64)[..., 0]
    yhr = B.to_y_channel(hr[crop:-crop, crop:-crop]).astype(np.float64)[..., 0]
    want_psnr = skm.peak_signal_noise_ratio(yhr, ysr, data_range=255)
    want_ssim = skm.structural_similarity(yhr, ysr, data_range=255, gaussian_weights=True, sigma=1.5,
                                          use_sample_covariance=False)
    assert M.sr_psnr(sr, hr, crop, test_y_channel=True) == pytest.approx(want_psnr, abs=1e-5)
    assert M.sr_ssim(sr, hr, crop, test_y_channel=True) == pytest.approx(want_ssim, abs=1e-6)


def test_metric_errors():
    sr, hr = _pair_uint8()
    with pytest.raises(ValueError, match="same shape"):
        M.sr_psnr(sr, hr[:-1], 0)
    with pytest.raises(ValueError, match="input_order"):
        M.sr_psnr(sr, hr, 0, input_order="WHC")
    with pytest.raises(ValueError, match="channel_order"):
        M.sr_ssim(sr, hr, 0, channel_order="grb")
    with pytest.raises(TypeError, match="numpy array or a torch.Tensor"):
        M.sr_psnr(sr.tolist(), hr, 0)
    with pytest.raises(ValueError, match="crop_border"):
        M.sr_psnr(sr, hr, 20)
    with pytest.raises(ValueError, match="crop_border"):
        M.sr_ssim(sr, hr, -1)
    with pytest.raises(ValueError, match="smaller than"):
        M.sr_ssim(sr, hr, 15)  # 10x15 left: smaller than the 11x11 window
    with pytest.raises(TypeError, match="unexpected keyword"):
        M.sr_psnr(sr, hr, 0, test_y_chanel=True)
    assert M.sr_psnr(sr, hr, 0, better="higher") == pytest.approx(B.calculate_psnr(sr, hr, 0))


def test_meters_match_batch_computation():
    sr, hr = _pair_uint8(n=7, h=28, w=30)
    psnr_all = M.sr_psnr(sr, hr, 2, test_y_channel=True)
    ssim_all = M.sr_ssim(sr, hr, 2, test_y_channel=True)
    meters = MeterCollection(psnr=PSNRMeter(2, True, keep_values=True), ssim=SSIMMeter(2, True))
    for a, b in [(0, 3), (3, 4), (4, 7)]:  # uneven batches
        meters.update(sr[a:b], hr[a:b])
    out = meters.compute()
    assert out["psnr"] == pytest.approx(psnr_all.mean(), abs=1e-10)
    assert out["ssim"] == pytest.approx(ssim_all.mean(), abs=1e-12)
    np.testing.assert_allclose(meters["psnr"].values, psnr_all)
    single = PSNRMeter(2, True)
    single.update(sr[0], hr[0])  # one unbatched image counts as one
    assert single.count == 1 and single.compute() == pytest.approx(psnr_all[0])
    meters.reset()
    assert math.isnan(meters.compute()["psnr"])


def test_meter_collection_errors():
    with pytest.raises(ValueError, match="at least one"):
        MeterCollection()
    with pytest.raises(TypeError, match="Meter"):
        MeterCollection(psnr=lambda a, b: 0)


def test_sixteen_bit_inputs_use_their_full_range():
    rng = np.random.default_rng(2)
    a = rng.integers(0, 65536, (20, 21, 3)).astype(np.uint16)
    b = np.clip(a.astype(np.int64) + rng.integers(-300, 300, a.shape), 0, 65535).astype(np.uint16)
    d = a[2:-2, 2:-2].astype(np.float64) - b[2:-2, 2:-2]
    want = 10 * np.log10(65535.0 ** 2 / np.mean(d * d))
    assert M.sr_psnr(a, b, 2) == pytest.approx(want, abs=1e-10)
    ta, tb = torch.from_numpy(a).permute(2, 0, 1), torch.from_numpy(b).permute(2, 0, 1)
    assert M.sr_psnr(ta, tb, 2) == pytest.approx(want, abs=1e-10)


def test_pooled_psnr_matches_torchmetrics_dim_none():
    """psnr(reduction="pooled") and PSNRMeter's pooled PSNR are torchmetrics' PSNR with
    dim=None (one sum of squared errors and one element count over every update), batches
    of different sizes included; to 1e-5 dB: torchmetrics keeps its sum in float32."""
    tm = pytest.importorskip("torchmetrics.image", reason="torchmetrics not installed (the peers CI stage has it)")
    import fastiqa.functional as F

    g = torch.Generator().manual_seed(11)
    batches = []
    for shape, sigma in [((2, 3, 21, 30), 0.01), ((1, 3, 40, 17), 0.1), ((3, 3, 25, 25), 0.04)]:
        x = torch.rand(shape, generator=g, dtype=torch.float64)
        batches.append(((x + sigma * torch.randn(shape, generator=g, dtype=torch.float64)).clamp(0, 1), x))
    peer = tm.PeakSignalNoiseRatio(data_range=1.0).double()
    meter = PSNRMeter(0)
    for p, t in batches:
        peer.update(p, t)
        meter.update(p, t)
        one = tm.PeakSignalNoiseRatio(data_range=1.0).double()
        one.update(p, t)
        assert F.psnr(p, t, reduction="pooled").item() == pytest.approx(one.compute().item(), abs=1e-5)
    assert meter.compute_pooled() == pytest.approx(peer.compute().item(), abs=1e-5)
    assert abs(meter.compute() - peer.compute().item()) > 1  # dB: the mean of per-image values is another number
