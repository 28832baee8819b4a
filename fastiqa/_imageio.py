"""Image files for `fastiqa eval`: PNG, JPEG, TIFF, BMP in 8 and 16 bits, through
maintained decoders.

read_image(path) -> (array, max_value): an (H, W, C) uint8 or uint16 array, C = 1
(grey) or 3 (colour, RGB order), and the value of full white (255 or 65535).

Decoders, first available wins (`pip install fastiqa[eval]` installs the first two):
  1. TIFF: tifffile (exact samples, planar or not, 16-bit colour, never premultiplied);
     a TIFF it cannot decode (LZW or Deflate without the imagecodecs package) goes
     on to OpenCV when its samples are interleaved without alpha (OpenCV 5 misreads
     planar 16-bit TIFF, and libtiff's RGBA reader premultiplies colours by alpha),
     else to Pillow.
  2. OpenCV (opencv-python-headless): cv2.imdecode(..., IMREAD_UNCHANGED), what
     BasicSR's scripts use; every other format and bit depth, 16-bit colour included.
     A file OpenCV cannot decode goes on to Pillow (whose message is reported).
  3. Pillow (a fastiqa dependency) for the rest: 8-bit files and 16-bit grey. It
     cannot return 16-bit colour (it truncates to 8 bits), so such files are refused
     with a message naming what to install.

Rules (the same whatever the decoder):
  colour order  RGB (OpenCV's BGR is flipped).
  alpha         dropped: the colour (or grey) channels are compared, never alpha,
                as BasicSR's cv2.imread(IMREAD_COLOR) does.
  grey          one channel; a grey+alpha file is grey.
  bit depth     8-bit files give uint8 with full white 255, 16-bit files uint16 with
                65535; other depths (float, 32-bit) are refused.
Every failure is an ImageReadError with a one-line reason (empty images included);
a path that is not a regular file (a directory, a broken symbolic link, a link loop,
a FIFO) is reported as what it is before it is opened (file_problem).

Large images: image_size(data) reads the width and height from the header (PNG
IHDR, or Pillow's lazy open for the other formats) so that a caller can compare two
files before decoding either. Pillow refuses images of more than twice
PIL.Image.MAX_IMAGE_PIXELS (its decompression-bomb limit) with a message of ours; one
between the limit and twice it is decoded and, when `notes` is given, gets a note
(the caller silences Pillow's own DecompressionBombWarning, see
fastiqa.evaluation.pipeline).
"""
import errno
import functools
import importlib
import io
import os
import stat
import struct

import numpy as np

SUPPORTED = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
TIFF = (".tif", ".tiff")
INSTALL_HINT = "pip install opencv-python-headless tifffile (or fastiqa[eval])"

__all__ = ["read_image", "read_file", "decode", "image_size", "file_problem", "ImageReadError", "SUPPORTED",
           "decoders"]


class ImageReadError(Exception):
    pass


def _optional(name):
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


@functools.lru_cache(maxsize=None)
def decoders():
    """{'cv2': module or None, 'tifffile': module or None}: the optional decoders
    installed here (imported on the first read, so `import fastiqa` stays light)."""
    return {"cv2": _optional("cv2"), "tifffile": _optional("tifffile")}


def _full_scale(arr):
    if arr.dtype == np.uint8:
        return 255
    if arr.dtype == np.uint16:
        return 65535
    raise ImageReadError(f"{arr.dtype} samples are not supported; save the image with 8 or 16 bits per sample")


def _channels_last(arr):
    """(H, W) or (H, W, C) -> (H, W, 1 or 3) without alpha (channel 2 of grey+alpha,
    channel 4 of RGBA)."""
    if arr.ndim == 2:
        return arr[..., None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 2, 3, 4):
        raise ImageReadError(f"unsupported image layout {arr.shape} (expected grey, grey+alpha, RGB or RGBA)")
    return arr[..., :1] if arr.shape[2] <= 2 else arr[..., :3]


def _finish(arr):
    """Common checks of every decoder's output: (array, full white)."""
    full = _full_scale(arr)
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ImageReadError(f"the image is empty ({arr.shape[1]}x{arr.shape[0]} pixels)")
    return np.ascontiguousarray(arr), full


def _png_ihdr(head):
    """(bit depth, colour type) of a PNG header, or None when not a PNG."""
    if len(head) < 29 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return struct.unpack(">BB", head[24:26])


def _read_cv2(cv2, data, head):
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None:
        return None
    ihdr = _png_ihdr(head)
    if ihdr is not None and ihdr[1] == 4 and arr.ndim == 3:  # grey+alpha PNG, which OpenCV expands to BGRA
        return arr[..., :1]
    if arr.ndim == 3 and arr.shape[2] in (3, 4):  # BGR(A) -> RGB, alpha dropped: OpenCV's vectorised
        return cv2.cvtColor(arr, cv2.COLOR_BGR2RGB if arr.shape[2] == 3 else cv2.COLOR_BGRA2RGB)  # copy
    return _channels_last(arr)


def _read_tifffile(tifffile, path):
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        arr = page.asarray()
        if arr.ndim == 3 and int(page.planarconfig) == 2 and arr.shape[0] in (1, 2, 3, 4):  # planar: C, H, W
            arr = np.moveaxis(arr, 0, -1)
    return _channels_last(arr)


def _tiff_is_plain(path):
    """True when the TIFF's samples are interleaved with no extra (alpha) samples, the
    layouts OpenCV reads exactly; False otherwise; None when Pillow cannot tell."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            tags = getattr(im, "tag_v2", {})
            return tags.get(284, 1) != 2 and not tags.get(338)  # PlanarConfiguration, ExtraSamples
    except Exception:
        return None


def _read_tiff(path, data, head, mods, notes=None):
    """tifffile, then OpenCV for interleaved TIFF without alpha (OpenCV 5 misreads planar
    16-bit TIFF and libtiff's RGBA path premultiplies colours by alpha), then Pillow."""
    if mods["tifffile"] is not None:
        try:
            return _read_tifffile(mods["tifffile"], path)
        except ImageReadError:
            raise
        except Exception:  # e.g. LZW or Deflate without the imagecodecs package: the others may read it
            pass
    if mods["cv2"] is not None and _tiff_is_plain(path) is not False:
        arr = _read_cv2(mods["cv2"], data, head)
        if arr is not None:
            return arr
    return _read_pillow(path, head, data, notes)


def _open_pillow(path, data, notes):
    """Image.open with Pillow's decompression-bomb limit reported in our words."""
    from PIL import Image

    try:
        im = Image.open(path)  # the path, not the bytes: Pillow's messages name the file
    except Image.DecompressionBombError:
        size = image_size(data) if data is not None else None
        what = f"{size[0]}x{size[1]} pixels" if size else "the image"
        raise ImageReadError(f"{what} is more than twice Pillow's decompression-bomb limit "
                             f"(PIL.Image.MAX_IMAGE_PIXELS = {Image.MAX_IMAGE_PIXELS} pixels): Pillow refuses to "
                             f"decode it (raise that limit, or {INSTALL_HINT})") from None
    limit = Image.MAX_IMAGE_PIXELS
    if notes is not None and limit and im.size[0] * im.size[1] > limit:
        notes.append(f"{im.size[0]}x{im.size[1]} pixels is more than Pillow's decompression-bomb limit "
                     f"(PIL.Image.MAX_IMAGE_PIXELS = {limit} pixels); decoded anyway (a file given to evaluate)")
    return im


def _read_pillow(path, head, data=None, notes=None):
    ihdr = _png_ihdr(head)
    if ihdr is not None and ihdr[0] == 16 and ihdr[1] in (2, 6):
        raise ImageReadError(f"16-bit colour PNG needs OpenCV (Pillow would truncate it to 8 bits): {INSTALL_HINT}")
    with _open_pillow(path, data, notes) as im:
        im.load()
        mode = im.mode
        if im.format == "TIFF" and mode in ("RGB", "RGBA"):
            bits = im.tag_v2.get(258) if hasattr(im, "tag_v2") else None
            if bits is not None and max(bits if isinstance(bits, tuple) else (bits,)) > 8:
                raise ImageReadError(f"16-bit colour TIFF needs tifffile (with imagecodecs when compressed) or, "
                                     f"interleaved without alpha, OpenCV (Pillow would truncate it to 8 bits): "
                                     f"{INSTALL_HINT}")
        if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
            return np.array(im).astype(np.uint16)[..., None]
        if mode == "I":
            arr = np.array(im)
            if arr.size and (arr.min() < 0 or arr.max() > 65535):
                raise ImageReadError("32-bit integer images are not supported (values beyond 16 bits)")
            return arr.astype(np.uint16)[..., None]
        if mode == "F":
            raise ImageReadError("floating-point images are not supported; save as 8- or 16-bit")
        if mode in ("1", "L", "LA", "La") or (mode == "P" and im.palette is not None and im.palette.mode == "L"):
            return np.array(im.convert("L"))[..., None]
        return np.array(im.convert("RGB"))


def file_problem(path):
    """None when path opens as a regular file (through symbolic links), else a one-line
    account of what it is: a directory, a broken symbolic link, a link loop, not a
    regular file (a FIFO would block a reader), or why it cannot be examined."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        if os.path.islink(path):
            try:
                target = os.readlink(path)
            except OSError:
                return "a broken symbolic link"
            return f"a broken symbolic link (to {target!r}, which does not exist)"
        return "file not found"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a symbolic link loop (the link leads back to itself)"
        return f"cannot open the file ({exc.strerror or exc})"
    if stat.S_ISDIR(mode):
        return "a directory, not an image file"
    if not stat.S_ISREG(mode):
        return "not a regular file (a FIFO, socket or device)"
    return None


def read_file(path) -> bytes:
    """The bytes of an image file; ImageReadError saying what the path is otherwise."""
    problem = file_problem(path)
    if problem is not None:
        raise ImageReadError(problem)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise ImageReadError("file not found") from None
    except OSError as exc:
        raise ImageReadError(f"cannot open the file ({exc.strerror or exc})") from None
    if not data:
        raise ImageReadError("the file is empty (0 bytes)")
    return data


def image_size(data):
    """(width, height) from an image file's header, without decoding it, or None when
    the header does not say (an unknown or damaged format, or an image Pillow refuses)."""
    head = data[:33]
    if _png_ihdr(head) is not None:
        return struct.unpack(">II", head[16:24])
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:  # lazy: reads the header only
            return im.size
    except Exception:
        return None


def decode(path, data, notes=None):
    """read_image for bytes already read from path; notes: a list that gets a line for
    what the caller should know (an image above Pillow's decompression-bomb limit)."""
    head = data[:33]
    is_tiff = os.path.splitext(str(path))[1].lower() in TIFF or head[:4] in (b"II*\x00", b"MM\x00*")
    mods = decoders()
    try:
        if is_tiff:
            return _finish(_read_tiff(path, data, head, mods, notes))
        arr = _read_cv2(mods["cv2"], data, head) if mods["cv2"] is not None else None
        # Pillow: also what OpenCV refused
        return _finish(arr if arr is not None else _read_pillow(path, head, data, notes))
    except ImageReadError:
        raise
    except Exception as exc:  # Pillow's UnidentifiedImageError, tifffile's errors, truncated files, ...
        raise ImageReadError(f"cannot read image ({type(exc).__name__}: {exc})") from None


def read_image(path, notes=None):
    """(H, W, C) uint8/uint16 array (C = 1 grey or 3 RGB, alpha dropped) and its full
    white value (255 or 65535). See the module doc for the decoders and the rules."""
    return decode(path, read_file(path), notes)
