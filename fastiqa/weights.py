"""ImageNet backbone weights for the perceptual metrics (LPIPS, DISTS) and PerceptualLoss's VGG:
found on this machine, checked, never downloaded unless asked.

The backbones are torchvision's published state dicts (AlexNet, VGG, SqueezeNet 1.1). fastiqa
never bundles them. `find(name)` looks, in this order:

  1. the path given (``backbone_weights=PATH`` / ``weights=PATH``): used as given, whatever it
     holds; its SHA-256 is computed and reported (``Resolved.sha256``), and a warning says so
     when it is not the published file;
  2. ``$FASTIQA_WEIGHTS_DIR/<published file name>``;
  3. torchvision's cache, ``torch.hub.get_dir()/checkpoints/<published file name>``
     (``$TORCH_HOME/hub/checkpoints``, by default ``~/.cache/torch/hub/checkpoints``);
  4. with ``download=True`` only (or ``fastiqa weights fetch NAME``): the published URL, saved
     into ``$FASTIQA_WEIGHTS_DIR`` when set, else into torchvision's cache.

Files found by name (2-4) must be the published ones: their SHA-256 must begin with the prefix
the published file name carries (torchvision's own check, torch.hub's ``check_hash``); another
file under that name is an error that says what to do. Nothing found is one error
(``WeightsNotFoundError``) naming the file, where to get it and the command that fetches it.
SHA-256s are computed once per file per process (keyed by path, size and mtime).
"""
import dataclasses
import hashlib
import os
import re
import warnings
from typing import Dict, Optional

import torch

URL_BASE = "https://download.pytorch.org/models/"
ENV_DIR = "FASTIQA_WEIGHTS_DIR"


@dataclasses.dataclass(frozen=True)
class Backbone:
    """One published torchvision state dict: its name, file name and what uses it."""

    name: str
    file: str
    used_by: str

    @property
    def url(self) -> str:
        return URL_BASE + self.file

    @property
    def sha256_prefix(self) -> str:
        """The leading hex digits of the file's SHA-256 that its name carries (torch.hub's rule)."""
        return re.search(r"-([a-f0-9]+)\.pth$", self.file).group(1)


# file names from torchvision's model definitions (torchvision 0.29.1: models/alexnet.py,
# models/vgg.py, models/squeezenet.py, the IMAGENET1K_V1 weights of each)
BACKBONES: Dict[str, Backbone] = {b.name: b for b in (
    Backbone("alexnet", "alexnet-owt-7be5be79.pth", "LPIPS net='alex'"),
    Backbone("vgg16", "vgg16-397923af.pth", "LPIPS net='vgg', DISTS, PerceptualLoss vgg16"),
    Backbone("squeezenet1_1", "squeezenet1_1-b8a52dc0.pth", "LPIPS net='squeeze'"),
    Backbone("vgg11", "vgg11-8a719046.pth", "PerceptualLoss vgg11"),
    Backbone("vgg11_bn", "vgg11_bn-6002323d.pth", "PerceptualLoss vgg11_bn"),
    Backbone("vgg13", "vgg13-19584684.pth", "PerceptualLoss vgg13"),
    Backbone("vgg13_bn", "vgg13_bn-abd245e5.pth", "PerceptualLoss vgg13_bn"),
    Backbone("vgg16_bn", "vgg16_bn-6c64b313.pth", "PerceptualLoss vgg16_bn"),
    Backbone("vgg19", "vgg19-dcbb9e9d.pth", "PerceptualLoss vgg19 (BasicSR's default)"),
    Backbone("vgg19_bn", "vgg19_bn-c79401a0.pth", "PerceptualLoss vgg19_bn"),
)}


class WeightsNotFoundError(FileNotFoundError):
    """No file of a backbone's weights on this machine (and no download was asked for)."""


class WeightsMismatchError(ValueError):
    """A file found under a published name is not the published file."""


@dataclasses.dataclass(frozen=True)
class Resolved:
    """Where a backbone's weights were found. source: 'argument', ENV_DIR, 'torchvision cache'
    or 'download'; published: the file's SHA-256 begins with the published prefix."""

    name: str
    path: str
    sha256: str
    source: str
    published: bool


_SHA_CACHE: Dict[tuple, str] = {}


def sha256(path: str) -> str:
    """The file's SHA-256 (hex), computed once per (path, size, mtime) in this process."""
    st = os.stat(path)
    key = (os.path.realpath(path), st.st_size, st.st_mtime_ns)
    h = _SHA_CACHE.get(key)
    if h is None:
        d = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                d.update(block)
        h = _SHA_CACHE[key] = d.hexdigest()
    return h


def backbone(name: str) -> Backbone:
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; known: {', '.join(BACKBONES)}")
    return BACKBONES[name]


def torchvision_cache_dir() -> str:
    """torchvision's download folder: torch.hub.get_dir()/checkpoints (honours TORCH_HOME)."""
    return os.path.join(torch.hub.get_dir(), "checkpoints")


def search_dirs():
    """[(source, folder)] searched for the published file names, in order."""
    dirs = []
    env = os.environ.get(ENV_DIR)
    if env:
        dirs.append((ENV_DIR, env))
    dirs.append(("torchvision cache", torchvision_cache_dir()))
    return dirs


def _checked(b: Backbone, path: str, source: str) -> Resolved:
    h = sha256(path)
    if not h.startswith(b.sha256_prefix):
        raise WeightsMismatchError(
            f"{path} ({source}) is named as torchvision's published {b.name} weights but is not that file: "
            f"its SHA-256 is {h}, the published one begins {b.sha256_prefix}. Delete it and run "
            f"`fastiqa weights fetch {b.name}`, or pass it explicitly (backbone_weights={path!r}) to use it as given"
        )
    return Resolved(b.name, path, h, source, True)


def _missing_message(b: Backbone, looked) -> str:
    where = "; ".join(f"{src}: {p}" for src, p in looked)
    env = "" if os.environ.get(ENV_DIR) else f" ({ENV_DIR} is not set)"
    return (
        f"no {b.name} weights on this machine ({b.used_by} needs torchvision's ImageNet {b.name}, file {b.file}); "
        f"looked in {where}{env}. Get the file from {b.url}: run `fastiqa weights fetch {b.name}` (downloads it "
        f"and checks its SHA-256), or put it into one of those folders yourself, or pass its path "
        f"(backbone_weights=PATH), or download=True. fastiqa never downloads without being asked."
    )


def find(name: str, path=None, download: bool = False) -> Resolved:
    """The weights of backbone `name` by the module's order; see the module doc. path: a
    file given by the user, or a Resolved of this backbone (returned as it is)."""
    b = backbone(name)
    if isinstance(path, Resolved) and path.name == name:  # found already: not checked twice
        return path
    if path is not None:
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise WeightsNotFoundError(f"backbone_weights={path!r}: no such file (a torchvision-format {b.name} "
                                       f"state dict, e.g. {b.file} from {b.url})")
        h = sha256(path)
        published = h.startswith(b.sha256_prefix)
        if not published:
            warnings.warn(f"backbone_weights={path!r} (SHA-256 {h}) is not torchvision's published {b.name} file "
                          f"{b.file} (SHA-256 begins {b.sha256_prefix}); using it as given", stacklevel=3)
        return Resolved(b.name, path, h, "argument", published)
    looked = []
    for source, folder in search_dirs():
        candidate = os.path.join(folder, b.file)
        looked.append((source, candidate))
        if os.path.isfile(candidate):
            return _checked(b, candidate, source)
    if download:
        return fetch(name)
    raise WeightsNotFoundError(_missing_message(b, looked))


def fetch(name: str, folder: Optional[str] = None, progress: bool = True) -> Resolved:
    """Downloads backbone `name`'s published file into `folder` (default: $FASTIQA_WEIGHTS_DIR,
    else torchvision's cache) unless the checked file is already there; checks its SHA-256."""
    b = backbone(name)
    folder = folder or os.environ.get(ENV_DIR) or torchvision_cache_dir()
    dest = os.path.join(folder, b.file)
    if os.path.isfile(dest):
        return _checked(b, dest, "download")
    os.makedirs(folder, exist_ok=True)
    try:
        torch.hub.download_url_to_file(b.url, dest, hash_prefix=b.sha256_prefix, progress=progress)
    except RuntimeError as exc:  # torch.hub's hash mismatch (it removed the file)
        raise WeightsMismatchError(f"downloaded {b.url} but it is not the published file: {exc}") from None
    except OSError as exc:  # offline, refused, not found
        raise WeightsNotFoundError(f"could not download {b.url} into {folder}: {exc}. Download it on a machine "
                                   f"with network access and copy it there (or into ${ENV_DIR})") from None
    return _checked(b, dest, "download")


def load_state_dict(resolved: Resolved) -> dict:
    """The state dict in the file (weights only: a pickled model is refused)."""
    try:
        sd = torch.load(resolved.path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(f"{resolved.path}: not a loadable torchvision state dict of {resolved.name} "
                         f"({type(exc).__name__}: {exc})") from None
    if not isinstance(sd, dict):
        raise ValueError(f"{resolved.path}: holds a {type(sd).__name__}, not a state dict of {resolved.name}")
    return sd


def status(names=None):
    """[{name, file, used_by, path or None, source}] for `fastiqa info`: where each backbone's
    file is, by name only (no SHA-256 computed: info stays quick)."""
    out = []
    for name in names or BACKBONES:
        b = BACKBONES[name]
        found = next(((src, os.path.join(d, b.file)) for src, d in search_dirs()
                      if os.path.isfile(os.path.join(d, b.file))), (None, None))
        out.append({"name": name, "file": b.file, "used_by": b.used_by, "path": found[1], "source": found[0]})
    return out
