"""Image files for `fastiqa eval`: PNG, JPEG, TIFF, BMP in 8 and 16 bits.

read_image(path) -> (array, max_value): an (H, W, C) uint8 or uint16 array in RGB
order (C = 1 or 3; alpha is dropped) and the value of full white (255 or 65535).
Decoding is Pillow's, except 16-bit colour PNG, which Pillow reads truncated to
8 bits: those are decoded here (zlib + PNG unfiltering in numpy), so no precision
is lost silently. 16-bit colour TIFF, also truncated by Pillow, is refused with a
message. Every failure is an ImageReadError with a one-line reason.
"""
import struct
import zlib

import numpy as np

SUPPORTED = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


class ImageReadError(Exception):
    pass


def _png_header(path):
    with open(path, "rb") as f:
        head = f.read(33)
    if len(head) < 33 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", head[16:29])
    return w, h, depth, ctype, interlace


def _unfilter(data: bytes, h: int, stride: int, bpp: int) -> np.ndarray:
    """PNG scanline unfiltering (None, Sub, Up, Average, Paeth)."""
    buf = np.frombuffer(data, dtype=np.uint8)
    if buf.size < h * (stride + 1):
        raise ImageReadError("truncated PNG image data")
    rows = buf[: h * (stride + 1)].reshape(h, stride + 1)
    out = np.empty((h, stride), dtype=np.uint8)
    prev = np.zeros(stride, dtype=np.uint8)
    for r in range(h):
        ft, line = rows[r, 0], rows[r, 1:]
        if ft == 0:
            cur = line.copy()
        elif ft == 1:  # Sub: running sum per byte lane, modulo 256
            cur = np.cumsum(line.reshape(-1, bpp), axis=0, dtype=np.uint8).reshape(-1)
        elif ft == 2:  # Up
            cur = line + prev
        elif ft in (3, 4):  # Average, Paeth: sequential along the row
            cur_l = line.tolist()
            up = prev.tolist()
            if ft == 3:
                for i in range(stride):
                    left = cur_l[i - bpp] if i >= bpp else 0
                    cur_l[i] = (cur_l[i] + ((left + up[i]) >> 1)) & 0xFF
            else:
                for i in range(stride):
                    if i >= bpp:
                        a, c = cur_l[i - bpp], up[i - bpp]
                    else:
                        a = c = 0
                    b = up[i]
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    pred = a if (pa <= pb and pa <= pc) else (b if pb <= pc else c)
                    cur_l[i] = (cur_l[i] + pred) & 0xFF
            cur = np.array(cur_l, dtype=np.uint8)
        else:
            raise ImageReadError(f"bad PNG filter type {int(ft)} in row {r}")
        out[r] = cur
        prev = cur
    return out


def _read_png16(path, w, h, ctype, interlace):
    if interlace:
        raise ImageReadError("interlaced 16-bit colour PNG is not supported; save it without interlacing")
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[ctype]
    with open(path, "rb") as f:
        data = f.read()
    pos, idat = 8, []
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        if kind == b"IDAT":
            idat.append(data[pos + 8:pos + 8 + length])
        elif kind == b"IEND":
            break
        pos += 12 + length
    try:
        raw = zlib.decompress(b"".join(idat))
    except zlib.error as exc:
        raise ImageReadError(f"corrupt PNG data ({exc})") from None
    bpp = 2 * channels
    rows = _unfilter(raw, h, w * bpp, bpp)
    img = rows.view(">u2").reshape(h, w, channels).astype(np.uint16)
    if channels in (2, 4):  # drop alpha
        img = img[..., : channels - 1]
    return np.ascontiguousarray(img), 65535


def read_image(path):
    """(H, W, C) uint8/uint16 RGB (or gray) array and its full-scale value."""
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - pillow is a dependency
        raise ImageReadError("reading images needs Pillow: pip install pillow") from None
    try:
        hdr = _png_header(path)
        if hdr is not None and hdr[2] == 16 and hdr[3] in (2, 4, 6):
            return _read_png16(path, hdr[0], hdr[1], hdr[3], hdr[4])
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
                arr = np.array(im).astype(np.uint16)
                return arr[..., None], 65535
            if mode == "I":
                arr = np.array(im)
                if arr.min() < 0 or arr.max() > 65535:
                    raise ImageReadError("32-bit integer images are not supported (values beyond 16 bits)")
                return arr.astype(np.uint16)[..., None], 65535
            if mode == "F":
                raise ImageReadError("floating-point images are not supported; save as 8- or 16-bit")
            if mode in ("RGB", "RGBA") and im.format == "TIFF":
                bits = im.tag_v2.get(258) if hasattr(im, "tag_v2") else None
                if bits is not None and max(bits if isinstance(bits, tuple) else (bits,)) > 8:
                    raise ImageReadError("16-bit colour TIFF is read truncated to 8 bits by Pillow; "
                                         "save it as 16-bit PNG instead")
            if mode in ("1", "L", "LA", "La"):
                return np.array(im.convert("L"))[..., None], 255
            return np.array(im.convert("RGB")), 255
    except ImageReadError:
        raise
    except FileNotFoundError:
        raise ImageReadError("file not found") from None
    except Exception as exc:  # Pillow's UnidentifiedImageError, OSError on truncated files, ...
        raise ImageReadError(f"cannot read image ({type(exc).__name__}: {exc})") from None
