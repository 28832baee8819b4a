"""fastiqa._imageio.read_image over 8/16-bit grey, colour and alpha images in PNG,
TIFF, BMP and JPEG written by OpenCV, Pillow and tifffile, compared pixel for pixel
with the arrays written (alpha dropped, RGB order), through each decoder path:
OpenCV (default when installed), tifffile (TIFF without OpenCV), Pillow (neither)."""
import importlib.util

import numpy as np
import pytest
from PIL import Image

from fastiqa import _imageio
from fastiqa._imageio import ImageReadError, read_image

HAS_CV2 = importlib.util.find_spec("cv2") is not None
HAS_TIFFFILE = importlib.util.find_spec("tifffile") is not None
needs_cv2 = pytest.mark.skipif(not HAS_CV2, reason="opencv-python-headless is not installed (fastiqa[eval])")
needs_tifffile = pytest.mark.skipif(not HAS_TIFFFILE, reason="tifffile is not installed (fastiqa[eval])")

H, W = 13, 17
KINDS = {  # name: (dtype, channels); channels 2 = grey + alpha, 4 = RGBA
    "grey8": (np.uint8, 1), "grey16": (np.uint16, 1), "la8": (np.uint8, 2),
    "rgb8": (np.uint8, 3), "rgb16": (np.uint16, 3), "rgba8": (np.uint8, 4), "rgba16": (np.uint16, 4),
}


def _array(kind, seed=0):
    dtype, c = KINDS[kind]
    a = np.random.default_rng(seed).integers(0, np.iinfo(dtype).max + 1, (H, W, c)).astype(dtype)
    return a[..., 0] if c == 1 else a


def _expected(a):
    """What read_image must return: (H, W, 1 or 3), alpha dropped."""
    if a.ndim == 2:
        return a[..., None]
    return a[..., :1] if a.shape[2] == 2 else a[..., :3]


def _write_cv2(path, a):
    import cv2

    if a.ndim == 3:  # OpenCV writes BGR(A)
        a = a[..., [2, 1, 0, 3][: a.shape[2]]] if a.shape[2] >= 3 else a
    assert cv2.imwrite(str(path), np.ascontiguousarray(a))


def _write_pillow(path, a):
    mode = "LA" if a.ndim == 3 and a.shape[2] == 2 else None
    Image.fromarray(a, mode=mode).save(path)


def _write_tifffile(path, a, planar=False):
    import tifffile

    c = 1 if a.ndim == 2 else a.shape[2]
    kw = {"photometric": "rgb" if c >= 3 else "minisblack"}
    if c in (2, 4):
        kw["extrasamples"] = ["unassalpha"]
    if planar and a.ndim == 3:
        a, kw["planarconfig"] = np.moveaxis(a, -1, 0), "separate"
    tifffile.imwrite(path, a, **kw)


# (writer, extension, kind): what each library can write losslessly
CASES = (
    [("cv2", e, k) for e in ("png", "tif") for k in ("grey8", "grey16", "rgb8", "rgb16", "rgba8", "rgba16")]
    + [("cv2", "bmp", k) for k in ("grey8", "rgb8")]
    + [("pillow", "png", k) for k in ("grey8", "grey16", "la8", "rgb8", "rgba8")]
    + [("pillow", "tif", k) for k in ("grey8", "grey16", "rgb8", "rgba8")]
    + [("pillow", "bmp", k) for k in ("grey8", "rgb8")]
    + [("tifffile", "tif", k) for k in ("grey8", "grey16", "la8", "rgb8", "rgb16", "rgba8", "rgba16")]
    + [("tifffile-planar", "tif", k) for k in ("rgb8", "rgb16")]
)
WRITERS = {"cv2": _write_cv2, "pillow": _write_pillow, "tifffile": _write_tifffile,
           "tifffile-planar": lambda p, a: _write_tifffile(p, a, planar=True)}
NEEDS = {"cv2": needs_cv2, "tifffile": needs_tifffile, "tifffile-planar": needs_tifffile}


def _case_params():
    out = []
    for writer, ext, kind in CASES:
        marks = [NEEDS[writer]] if writer in NEEDS else []
        out.append(pytest.param(writer, ext, kind, marks=marks, id=f"{writer}-{ext}-{kind}"))
    return out


@pytest.fixture(params=["default", "opencv-only", "tifffile-only", "pillow-only"])
def decoder(request, monkeypatch):
    """Which decoders read_image may use: all installed, OpenCV without tifffile,
    tifffile without OpenCV, Pillow alone."""
    if request.param == "default":
        return "cv2" if HAS_CV2 else ("tifffile" if HAS_TIFFFILE else "pillow")
    if request.param == "opencv-only":
        if not HAS_CV2:
            pytest.skip("opencv-python-headless is not installed (fastiqa[eval])")
        monkeypatch.setattr(_imageio, "decoders", lambda: {"cv2": _imageio._optional("cv2"), "tifffile": None})
        return "cv2-only"
    if request.param == "tifffile-only":
        if not HAS_TIFFFILE:
            pytest.skip("tifffile is not installed (fastiqa[eval])")
        tifffile = _imageio.decoders()["tifffile"]
        monkeypatch.setattr(_imageio, "decoders", lambda: {"cv2": None, "tifffile": tifffile})
        return "tifffile"
    monkeypatch.setattr(_imageio, "decoders", lambda: {"cv2": None, "tifffile": None})
    return "pillow"


def _refused(writer, ext, kind, decoder):
    """Whether read_image must refuse the file: 16-bit colour that neither tifffile
    (not for OpenCV's LZW TIFF without imagecodecs) nor OpenCV (not for planar or
    alpha TIFF) may decode, which Pillow would truncate to 8 bits."""
    if kind not in ("rgb16", "rgba16"):
        return False
    if ext != "tif":  # without OpenCV, PNG goes to Pillow
        return decoder in ("pillow", "tifffile")
    by_tifffile = decoder in ("cv2", "tifffile") and writer != "cv2"
    # OpenCV is trusted with interleaved TIFF without an ExtraSamples (alpha) tag; it writes none itself
    by_cv2 = decoder in ("cv2", "cv2-only") and (writer == "cv2" or (writer == "tifffile" and kind == "rgb16"))
    return not (by_tifffile or by_cv2)


@pytest.mark.parametrize("writer, ext, kind", _case_params())
def test_read_matches_written_array(tmp_path, writer, ext, kind, decoder):
    a = _array(kind)
    path = tmp_path / f"img.{ext}"
    WRITERS[writer](path, a)
    if _refused(writer, ext, kind, decoder):
        with pytest.raises(ImageReadError, match="16-bit colour .* needs .*pip install"):
            read_image(str(path))
        return
    got, full = read_image(str(path))
    want = _expected(a)
    assert full == (65535 if a.dtype == np.uint16 else 255)
    assert got.dtype == a.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("writer", [pytest.param("cv2", marks=needs_cv2), "pillow"])
def test_jpeg_matches_the_other_librarys_decoding(tmp_path, writer, channels, decoder):
    """JPEG is lossy, so the reference is the other library's decoding of the same
    file. OpenCV and Pillow both use libjpeg(-turbo) with the default (islow) IDCT,
    but their builds may upsample chroma differently: 1 level of 255 at most."""
    yy, xx = np.mgrid[0:32, 0:48]
    rgb = np.dstack([xx * 5, yy * 7, (xx + yy) * 3]).astype(np.uint8)
    a = rgb[..., 1] if channels == 1 else rgb
    path = tmp_path / "img.jpg"
    WRITERS[writer](path, a)
    got, full = read_image(str(path))
    with Image.open(path) as im:
        want = np.array(im.convert("L" if channels == 1 else "RGB"))
    want = want[..., None] if channels == 1 else want
    assert full == 255 and got.shape == want.shape and got.dtype == np.uint8
    tol = 0 if decoder == "pillow" else 1
    assert int(np.abs(got.astype(int) - want).max()) <= tol


@needs_cv2
def test_jpeg_through_opencv_is_opencvs_decoding(tmp_path):
    import cv2

    rgb = np.random.default_rng(3).integers(0, 256, (20, 24, 3), dtype=np.uint8)
    path = tmp_path / "img.jpg"
    _write_pillow(path, rgb)
    got, _ = read_image(str(path))
    np.testing.assert_array_equal(got, cv2.imread(str(path), cv2.IMREAD_UNCHANGED)[..., ::-1])


def test_missing_empty_and_garbage_files(tmp_path, decoder):
    with pytest.raises(ImageReadError, match="file not found"):
        read_image(str(tmp_path / "none.png"))
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageReadError, match="the file is empty"):
        read_image(str(tmp_path / "empty.png"))
    (tmp_path / "junk.png").write_bytes(b"not an image at all")
    with pytest.raises(ImageReadError, match="cannot read image"):
        read_image(str(tmp_path / "junk.png"))


@needs_tifffile
def test_float_tiff_is_refused(tmp_path):
    import tifffile

    tifffile.imwrite(tmp_path / "f.tif", np.zeros((4, 5, 3), np.float32), photometric="rgb")
    with pytest.raises(ImageReadError, match="float32 samples are not supported"):
        read_image(str(tmp_path / "f.tif"))


def test_zero_sized_array_is_refused():
    with pytest.raises(ImageReadError, match=r"the image is empty \(32x0 pixels\)"):
        _imageio._finish(np.zeros((0, 32, 3), np.uint8))
