"""LPIPS and DISTS: the published networks (backbone + learned head) as modules, and the
user functions `lpips` / `dists` in fastiqa's conventions.

    lpips(pred, target, reduction="mean", *, net="alex", input_range=(0, 1), backbone_weights=None, download=False)
    dists(pred, target, reduction="mean", *, input_range=(0, 1), backbone_weights=None, download=False)

LPIPS v0.1 (Zhang et al. 2018; the `lpips` package 0.1.4): images mapped to [-1, 1], the
scaling layer (x - shift) / scale, the backbone's layers (AlexNet relu1-relu5, VGG16
relu1_2-relu5_3, SqueezeNet 1.1 relu1-relu7), then fastiqa.functional._heads.lpips_head.
DISTS (Ding et al. 2020; DISTS_pytorch 0.1): ImageNet mean/std normalisation, VGG16 with its
max pools replaced by L2 pooling, the input and relu1_2-relu5_3, then dists_head with the
learned alpha/beta. The heads' weights ship with fastiqa (fastiqa/data, LICENSE-lpips.txt,
LICENSE-DISTS.txt); the backbones come from fastiqa.weights (never downloaded unless asked).

Values are computed in float32 (float64 for float64 inputs; float16 / bfloat16 inputs are
computed in float32); the networks are cached per (backbone file, device, dtype).
"""
import copy
import os
from typing import Dict, Optional, Tuple

import torch
from torch import Tensor, nn

from .. import _checks
from .. import weights as _weights
from ._backbones import L2Pool, Taps, load_features
from ._heads import dists_head, lpips_head

_DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data")

# net -> (backbone, indices of the tapped layers in its `features`)
LPIPS_NETS = {"alex": ("alexnet", (1, 4, 7, 9, 11)), "vgg": ("vgg16", (3, 8, 15, 22, 29)),
              "squeeze": ("squeezenet1_1", (1, 4, 7, 9, 10, 11, 12))}
LPIPS_HEAD_FILES = {net: os.path.join(_DATA, f"lpips_v0.1_{net}.pth") for net in LPIPS_NETS}
DISTS_HEAD_FILE = os.path.join(_DATA, "dists_alpha_beta.pt")
DISTS_POOLS = {4: 64, 9: 128, 16: 256, 23: 512}  # VGG16 max pools DISTS replaces by L2 pooling
DISTS_TAPS = (3, 8, 15, 22, 29)
# the smallest square image each network accepts (min_side of its layers; tests check it)
LPIPS_MIN_SIDE = {"alex": 31, "vgg": 16, "squeeze": 17}
DISTS_MIN_SIDE = 1
INPUT_RANGES = ((0, 1), (-1, 1))
REDUCTIONS = ("mean", "sum", "none")

_LPIPS_SHIFT = (-0.030, -0.088, -0.188)  # lpips.ScalingLayer
_LPIPS_SCALE = (0.458, 0.448, 0.450)
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def _side_after(layers, side: int, last: int) -> int:
    """The spatial side after layers[0..last] for an input side (0: too small for a layer)."""
    for i, layer in enumerate(layers):
        if i > last or side < 1:
            break
        if isinstance(layer, (nn.Conv2d, nn.MaxPool2d)):
            k, s, p = (layer.kernel_size, layer.stride, layer.padding)
            k, s, p = (v[0] if isinstance(v, tuple) else v for v in (k, s, p))
            span = side + 2 * p - k  # torch's output size rule (pooling: ceil_mode included)
            if getattr(layer, "ceil_mode", False):
                out = -(-span // s) + 1
                side = out - 1 if (out - 1) * s >= side + p else out
            else:
                side = span // s + 1
        elif isinstance(layer, L2Pool):
            side = (side + 2 - 3) // 2 + 1
    return side


def min_side(layers, taps) -> int:
    """The smallest square input whose every tapped layer has at least one pixel."""
    side = 1
    while _side_after(layers, side, taps[-1]) < 1:
        side += 1
    return side


class _Net(nn.Module):
    """Common part of LPIPSNet and DISTSNet: the tapped backbone and where it came from."""

    metric = ""

    def _set_backbone(self, layers, taps, resolved):
        self.features = Taps(layers, taps)
        self.weights_info = resolved
        self.min_side = min_side(layers, taps)

    def check(self, pred: Tensor, target: Tensor) -> Tuple[Tensor, Tensor]:
        pred, target = _checks.pair(pred, target)
        if pred.dim() != 4 or pred.shape[1] != 3:
            raise ValueError(f"pred and target must be RGB image batches (N, 3, H, W), got shape {tuple(pred.shape)}")
        h, w = pred.shape[-2:]
        if min(h, w) < self.min_side:
            raise ValueError(f"{self.metric} needs images of at least {self.min_side}x{self.min_side} pixels, "
                             f"got pred and target of {w}x{h} (W x H)")
        return pred, target

    @property
    def dtype(self) -> torch.dtype:
        """The dtype it computes in (its buffers' and parameters')."""
        return self.head_weights()[0].dtype

    def _both(self, pred: Tensor, target: Tensor):
        """Features of both images; the target's without a graph unless it requires grad."""
        f0 = self._features(pred)
        with torch.set_grad_enabled(torch.is_grad_enabled() and target.requires_grad):
            f1 = self._features(target)
        return f0, f1


class LPIPSNet(_Net):
    """LPIPS v0.1: forward(pred, target) on images in [-1, 1] -> (N,) distances."""

    metric = "LPIPS"

    def __init__(self, net: str = "alex", backbone_weights=None, download: bool = False):
        super().__init__()
        _checks.choice(net, "net", tuple(LPIPS_NETS))
        name, taps = LPIPS_NETS[net]
        layers, resolved = load_features(name, backbone_weights, download)
        self._set_backbone(layers, taps, resolved)
        self.net = net
        self.metric = f"LPIPS (net={net!r})"
        lin = torch.load(LPIPS_HEAD_FILES[net], map_location="cpu", weights_only=True)
        ws = [lin[f"lin{k}.model.1.weight"].reshape(-1) for k in range(len(taps))]
        for k, w in enumerate(ws):
            self.register_buffer(f"w{k}", w.clone())
        self.register_buffer("shift", torch.tensor(_LPIPS_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(_LPIPS_SCALE).view(1, 3, 1, 1))

    def head_weights(self):
        return [getattr(self, f"w{k}") for k in range(len(self.features.taps))]

    def _features(self, x):
        return self.features((x - self.shift) / self.scale)

    def forward(self, pred: Tensor, target: Tensor, backend: Optional[str] = None) -> Tensor:
        return lpips_head(*self._both(pred, target), self.head_weights(), backend)


class DISTSNet(_Net):
    """DISTS: forward(pred, target) on images in [0, 1] -> (N,) distances."""

    metric = "DISTS"

    def __init__(self, backbone_weights=None, download: bool = False):
        super().__init__()
        layers, resolved = load_features("vgg16", backbone_weights, download)
        layers = nn.Sequential(*[L2Pool(DISTS_POOLS[i]) if i in DISTS_POOLS else m for i, m in enumerate(layers)])
        self._set_backbone(layers, DISTS_TAPS, resolved)
        ab = torch.load(DISTS_HEAD_FILE, map_location="cpu", weights_only=True)
        alpha, beta = ab["alpha"].reshape(-1), ab["beta"].reshape(-1)
        total = alpha.sum() + beta.sum()
        chans = [3] + [m.out_channels for i, m in enumerate(layers) if isinstance(m, nn.Conv2d)
                       and i + 1 in DISTS_TAPS]
        for k, (a, b) in enumerate(zip(torch.split(alpha / total, chans), torch.split(beta / total, chans))):
            self.register_buffer(f"ab{k}", torch.stack([a, b]))
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1))

    def head_weights(self):
        return [getattr(self, f"ab{k}") for k in range(len(self.features.taps) + 1)]

    def _features(self, x):
        return [x] + self.features((x - self.mean) / self.std)

    def forward(self, pred: Tensor, target: Tensor, backend: Optional[str] = None) -> Tensor:
        return dists_head(*self._both(pred, target), self.head_weights(), backend)


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def check_input_range(input_range) -> Tuple[int, int]:
    try:
        r = tuple(float(v) for v in input_range)
    except (TypeError, ValueError):
        r = None
    if r not in INPUT_RANGES:
        raise ValueError(f"input_range must be (0, 1) (images in [0, 1], the default) or (-1, 1) (the lpips "
                         f"package's convention), got {input_range!r}")
    return int(r[0]), int(r[1])


def reduce(values: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return values.mean()
    if reduction == "sum":
        return values.sum()
    return values


_CACHE: Dict[tuple, nn.Module] = {}


def cached_net(kind: str, device, dtype, backbone_weights=None, download: bool = False, net: str = "alex"):
    """The LPIPSNet / DISTSNet for these weights on (device, dtype), built once per process
    (kept for the process's life: a VGG16 is about 60 MB per device and dtype)."""
    backbone = LPIPS_NETS[net][0] if kind == "lpips" else "vgg16"
    resolved = _weights.find(backbone, backbone_weights, download)  # checked (and warned) every call
    key = (kind, net if kind == "lpips" else "", resolved.path, resolved.sha256)
    cpu = _CACHE.get(key)
    if cpu is None:
        cpu = _CACHE[key] = LPIPSNet(net, resolved) if kind == "lpips" else DISTSNet(resolved)
    device = torch.device(device)
    if device.type == "cpu" and dtype == torch.float32:
        return cpu
    dkey = key + (str(device), dtype)
    moved = _CACHE.get(dkey)
    if moved is None:  # Module.to moves in place: a copy, the CPU float32 one stays
        moved = _CACHE[dkey] = copy.deepcopy(cpu).to(device=device, dtype=dtype)
    return moved


def _prepared(pred, target, net_module, input_range, reduction, to_unit: bool):
    """pred and target checked, in the network's dtype, on the network's range."""
    _checks.choice(reduction, "reduction", REDUCTIONS)
    lo, _ = check_input_range(input_range)
    pred, target = net_module.check(pred, target)
    pred, target = pred.to(net_module.dtype), target.to(net_module.dtype)
    if to_unit and lo == -1:  # DISTS reads [0, 1]
        pred, target = (pred + 1) / 2, (target + 1) / 2
    if not to_unit and lo == 0:  # LPIPS reads [-1, 1]: the lpips package's 2x - 1
        pred, target = 2 * pred - 1, 2 * target - 1
    return pred, target


def _check_call(pred, reduction, input_range):
    """The arguments checked before any network is looked for (pred and target fully later)."""
    _checks.tensor(pred, "pred")
    _checks.choice(reduction, "reduction", REDUCTIONS)
    check_input_range(input_range)


def lpips_with(module: LPIPSNet, pred, target, reduction="mean", input_range=(0, 1), backend=None) -> Tensor:
    pred, target = _prepared(pred, target, module, input_range, reduction, to_unit=False)
    return reduce(module(pred, target, backend), reduction)


def dists_with(module: DISTSNet, pred, target, reduction="mean", input_range=(0, 1), backend=None) -> Tensor:
    pred, target = _prepared(pred, target, module, input_range, reduction, to_unit=True)
    return reduce(module(pred, target, backend), reduction)


def lpips(pred: Tensor, target: Tensor, reduction: str = "mean", *, net: str = "alex", input_range=(0, 1),
          backbone_weights: Optional[str] = None, download: bool = False, backend: Optional[str] = None) -> Tensor:
    """LPIPS v0.1 distance (lower is more similar): (N,) with reduction="none", else its mean / sum.

    pred, target: RGB batches (N, 3, H, W), any float dtype, in [0, 1] (input_range=(-1, 1):
    the lpips package's convention). net: "alex" (the published default), "vgg" or "squeeze".
    backbone_weights: a torchvision-format state dict file of the backbone (AlexNet, VGG16,
    SqueezeNet 1.1), else found by fastiqa.weights; download=True fetches the published file
    when it is nowhere on this machine. Gradients flow to pred, and to target when it requires grad.
    backend: forces the distance head's backend ("reference", "triton"; the backbone's
    convolutions are torch's).
    """
    _checks.choice(net, "net", tuple(LPIPS_NETS))
    _check_call(pred, reduction, input_range)
    module = cached_net("lpips", pred.device, compute_dtype(pred.dtype), backbone_weights, download, net)
    return lpips_with(module, pred, target, reduction, input_range, backend)


def dists(pred: Tensor, target: Tensor, reduction: str = "mean", *, input_range=(0, 1),
          backbone_weights: Optional[str] = None, download: bool = False, backend: Optional[str] = None) -> Tensor:
    """DISTS distance (lower is more similar): (N,) with reduction="none", else its mean / sum.

    pred, target: RGB batches (N, 3, H, W), any float dtype, in [0, 1] (or input_range=(-1, 1)).
    backbone_weights: a torchvision-format VGG16 state dict file, else found by fastiqa.weights
    (download=True fetches it when absent). Gradients flow to pred, and to target when it
    requires grad. backend: as lpips's.
    """
    _check_call(pred, reduction, input_range)
    module = cached_net("dists", pred.device, compute_dtype(pred.dtype), backbone_weights, download)
    return dists_with(module, pred, target, reduction, input_range, backend)
