"""`fastiqa human example OUT`: folders for a worked example from the photographs
shipped in fastiqa/data (see LICENSE-images.txt there): OUT/ref and one folder per
degradation (Gaussian blur, Gaussian noise, JPEG), named like the references."""
import io
import os

import numpy as np
from PIL import Image, ImageFilter

from ..eval_demo import data_dir

# name: (kind, level): blur sigma in pixels, noise sigma in 8-bit levels, JPEG quality
METHODS = {"blur": ("blur", 1.5), "noise": ("noise", 12.0), "jpeg": ("jpeg", 12)}
PHOTOS = ("astronaut", "chelsea", "coffee")


def degrade(img, kind, level, rng):
    """A degraded copy of the PIL RGB image."""
    if kind == "blur":
        return img.filter(ImageFilter.GaussianBlur(level))
    if kind == "noise":
        a = np.asarray(img, dtype=np.float64)
        return Image.fromarray(np.clip(a + rng.normal(0, level, a.shape), 0, 255).round().astype(np.uint8))
    if kind == "jpeg":
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=int(level))
        return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    raise ValueError(f"kind must be blur, noise or jpeg, got {kind!r}")


def next_steps(out_dir):
    """The worked example's commands after `fastiqa human example OUT` (the README's, with OUT)."""
    j = os.path.join
    methods = " ".join(f"--method {n}={j(out_dir, n)}" for n in METHODS)
    study = j(out_dir, "study")
    return [f"fastiqa human init {study} --ref {j(out_dir, 'ref')} {methods} --protocol pc --show-ref --gold 2 "
            "--training 1",
            f"fastiqa human serve {study}",
            f"fastiqa human analyze {study} --out {j(out_dir, 'report')}",
            f"fastiqa human export {study} --format pwcmp"]


def write_example_folders(out_dir, methods=None, photos=PHOTOS, size=None, suffix="", seed=0):
    """(ref_dir, {method: dir}) written under out_dir; size (w, h) crops the photographs."""
    methods = METHODS if methods is None else methods
    rng = np.random.default_rng(seed)
    ref = os.path.join(out_dir, "ref")
    dirs = {name: os.path.join(out_dir, name) for name in methods}
    for d in [ref, *dirs.values()]:
        os.makedirs(d, exist_ok=True)
    for p in photos:
        with Image.open(os.path.join(data_dir(), f"{p}.png")) as im:
            img = im.convert("RGB")
        if size is not None:
            img = img.crop((0, 0, min(size[0], img.width), min(size[1], img.height)))
        img.save(os.path.join(ref, f"{p}.png"))
        for name, (kind, level) in methods.items():
            degrade(img, kind, level, rng).save(os.path.join(dirs[name], f"{p}{suffix}.png"))
    return ref, dirs
