"""A transcription, in numpy, of the published semantics of BasicSR's
basicsr/metrics/psnr_ssim.py (calculate_psnr, calculate_ssim) and
basicsr/utils/color_util.py (bgr2ycbcr, to_y_channel), written from their
documented behaviour for the tests: images in [0, 255] (any dtype), BGR channel
order (cv2), HWC or CHW, crop, optional Y channel, float64 statistics.
cv2.getGaussianKernel / cv2.filter2D are replaced by their definitions (the
[5:-5, 5:-5] crop of filter2D's output is a valid correlation)."""
import numpy as np


def reorder_image(img, input_order="HWC"):
    if input_order not in ("HWC", "CHW"):
        raise ValueError(input_order)
    if img.ndim == 2:
        img = img[..., None]
    if input_order == "CHW":
        img = img.transpose(1, 2, 0)
    return img


def _convert_input_type_range(img):
    img_type = img.dtype
    img = img.astype(np.float32)
    if img_type == np.float32:
        pass
    elif img_type == np.uint8:
        img /= 255.0
    else:
        raise TypeError(img_type)
    return img


def _convert_output_type_range(img, dst_type):
    if dst_type == np.uint8:
        img = img.round()
    else:
        img /= 255.0
    return img.astype(dst_type)


def bgr2ycbcr(img, y_only=False):
    img_type = img.dtype
    img = _convert_input_type_range(img)
    if not y_only:
        raise NotImplementedError("only y_only is transcribed")
    out = np.dot(img, [24.966, 128.553, 65.481]) + 16.0
    return _convert_output_type_range(out, img_type)


def to_y_channel(img):
    img = img.astype(np.float32) / 255.0
    if img.ndim == 3 and img.shape[2] == 3:
        img = bgr2ycbcr(img, y_only=True)
        img = img[..., None]
    return img * 255.0


def calculate_psnr(img, img2, crop_border, input_order="HWC", test_y_channel=False):
    assert img.shape == img2.shape
    img = reorder_image(img, input_order)
    img2 = reorder_image(img2, input_order)
    if crop_border != 0:
        img = img[crop_border:-crop_border, crop_border:-crop_border, ...]
        img2 = img2[crop_border:-crop_border, crop_border:-crop_border, ...]
    if test_y_channel:
        img = to_y_channel(img)
        img2 = to_y_channel(img2)
    img = img.astype(np.float64)
    img2 = img2.astype(np.float64)
    mse = np.mean((img - img2) ** 2)
    if mse == 0:
        return float("inf")
    return 10.0 * np.log10(255.0 * 255.0 / mse)


def gaussian_kernel_2d(ksize=11, sigma=1.5):
    x = np.arange(ksize, dtype=np.float64) - (ksize - 1) / 2.0
    g = np.exp(-(x * x) / (2.0 * sigma * sigma))
    g = g / g.sum()
    return np.outer(g, g.T)


def _filter_valid(img, window):
    k = window.shape[0]
    view = np.lib.stride_tricks.sliding_window_view(img, (k, k))
    return np.einsum("ijkl,kl->ij", view, window)


def _ssim(img, img2):
    c1 = (0.01 * 255) ** 2
    c2 = (0.03 * 255) ** 2
    img = img.astype(np.float64)
    img2 = img2.astype(np.float64)
    window = gaussian_kernel_2d(11, 1.5)
    mu1 = _filter_valid(img, window)
    mu2 = _filter_valid(img2, window)
    mu1_sq, mu2_sq, mu1_mu2 = mu1 ** 2, mu2 ** 2, mu1 * mu2
    sigma1_sq = _filter_valid(img ** 2, window) - mu1_sq
    sigma2_sq = _filter_valid(img2 ** 2, window) - mu2_sq
    sigma12 = _filter_valid(img * img2, window) - mu1_mu2
    ssim_map = ((2 * mu1_mu2 + c1) * (2 * sigma12 + c2)) / ((mu1_sq + mu2_sq + c1) * (sigma1_sq + sigma2_sq + c2))
    return ssim_map.mean()


def calculate_ssim(img, img2, crop_border, input_order="HWC", test_y_channel=False):
    assert img.shape == img2.shape
    img = reorder_image(img, input_order)
    img2 = reorder_image(img2, input_order)
    if crop_border != 0:
        img = img[crop_border:-crop_border, crop_border:-crop_border, ...]
        img2 = img2[crop_border:-crop_border, crop_border:-crop_border, ...]
    if test_y_channel:
        img = to_y_channel(img)
        img2 = to_y_channel(img2)
    img = img.astype(np.float64)
    img2 = img2.astype(np.float64)
    ssims = [_ssim(img[..., i], img2[..., i]) for i in range(img.shape[2])]
    return np.array(ssims).mean()
