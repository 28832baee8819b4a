"""The ImageNet backbones of LPIPS, DISTS and PerceptualLoss in plain torch.nn, no torchvision.

Each `*_features()` builds the `features` part of torchvision's model with the same layers at
the same indices, so a torchvision state dict's `features.*` entries load into it unchanged
(`load_features`). torchvision itself is not imported: its PyPI wheels are CUDA builds whose
compiled ops do not load under a CPU torch, and the models are a few lines.

    alexnet        torchvision.models.alexnet().features (indices 0-12)
    vgg11 ... vgg19(_bn)   torchvision.models.vgg*().features (make_layers of cfgs A, B, D, E)
    squeezenet1_1  torchvision.models.squeezenet1_1().features (indices 0-12, Fire modules)

`Taps` runs a Sequential and returns the outputs of the layers at given indices (the
feature maps LPIPS and DISTS compare), stopping after the last one.
"""
from typing import Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor, nn

from .. import weights as _weights

VGG_CFGS = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512,
              "M"],
}


def alexnet_features() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2), nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(64, 192, kernel_size=5, padding=2), nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(192, 384, kernel_size=3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
    )


def vgg_features(vgg_type: str) -> nn.Sequential:
    """torchvision's make_layers(cfgs[...], batch_norm) for vgg11/13/16/19 and their _bn."""
    batch_norm = vgg_type.endswith("_bn")
    layers, c_in = [], 3
    for v in VGG_CFGS[vgg_type.replace("_bn", "")]:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            continue
        layers.append(nn.Conv2d(c_in, v, kernel_size=3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(v))
        layers.append(nn.ReLU(inplace=True))
        c_in = v
    return nn.Sequential(*layers)


class Fire(nn.Module):
    """SqueezeNet's Fire module (torchvision's parameter names)."""

    def __init__(self, c_in: int, squeeze: int, e1: int, e3: int):
        super().__init__()
        self.squeeze = nn.Conv2d(c_in, squeeze, kernel_size=1)
        self.squeeze_activation = nn.ReLU(inplace=True)
        self.expand1x1 = nn.Conv2d(squeeze, e1, kernel_size=1)
        self.expand1x1_activation = nn.ReLU(inplace=True)
        self.expand3x3 = nn.Conv2d(squeeze, e3, kernel_size=3, padding=1)
        self.expand3x3_activation = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        x = self.squeeze_activation(self.squeeze(x))
        return torch.cat([self.expand1x1_activation(self.expand1x1(x)),
                          self.expand3x3_activation(self.expand3x3(x))], 1)


def squeezenet1_1_features() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 64, kernel_size=3, stride=2), nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
        Fire(64, 16, 64, 64), Fire(128, 16, 64, 64),
        nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
        Fire(128, 32, 128, 128), Fire(256, 32, 128, 128),
        nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
        Fire(256, 48, 192, 192), Fire(384, 48, 192, 192), Fire(384, 64, 256, 256), Fire(512, 64, 256, 256),
    )


def features(name: str) -> nn.Sequential:
    """The randomly initialised `features` Sequential of backbone `name` (torchvision's init
    is not reproduced: weights are always loaded, or the caller initialises them)."""
    if name == "alexnet":
        return alexnet_features()
    if name == "squeezenet1_1":
        return squeezenet1_1_features()
    if name.replace("_bn", "") in VGG_CFGS:
        return vgg_features(name)
    raise ValueError(f"unknown backbone {name!r}; known: alexnet, squeezenet1_1, {', '.join(VGG_CFGS)} (+ _bn)")


def load_features(name: str, backbone_weights: Optional[str] = None, download: bool = False,
                  arg: str = "backbone_weights") -> Tuple[nn.Sequential, "_weights.Resolved"]:
    """(features of backbone `name` with the `features.*` entries of its torchvision state
    dict, where fastiqa.weights found it). Other entries (classifier.*) are ignored; a
    missing or misshapen feature entry is a ValueError naming `arg` and the file."""
    resolved = _weights.find(name, backbone_weights, download)
    sd = _weights.load_state_dict(resolved)
    feats = {k[len("features."):]: v for k, v in sd.items() if k.startswith("features.")}
    module = features(name)
    try:
        module.load_state_dict(feats, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise ValueError(f"{arg}={resolved.path!r} is not a torchvision-format {name} state dict "
                         f"(its features.* entries do not fit torchvision's {name}: "
                         f"{' '.join(s.strip() for s in first[:3])})") from None
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module, resolved


class Taps(nn.Module):
    """Runs `layers` in order and returns the outputs at indices `taps` (ascending)."""

    def __init__(self, layers: nn.Sequential, taps: Sequence[int]):
        super().__init__()
        self.layers = layers
        self.taps = tuple(taps)

    def forward(self, x: Tensor):
        out, want = [], set(self.taps)
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i in want:
                out.append(x)
            if i == self.taps[-1]:
                break
        return out


class L2Pool(nn.Module):
    """DISTS's L2 pooling: sqrt(hanning-window blur of x^2, stride 2, + 1e-12), per channel
    (DISTS_pytorch's L2pooling: filter_size 5, the 3 inner taps of np.hanning(5), padding 1)."""

    def __init__(self, channels: int):
        super().__init__()
        a = np.hanning(5)[1:-1]
        g = torch.tensor(a[:, None] * a[None, :], dtype=torch.float32)
        g = g / g.sum()
        self.register_buffer("filter", g[None, None].repeat(channels, 1, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        out = nn.functional.conv2d(x * x, self.filter.to(x.dtype), stride=2, padding=1, groups=x.shape[1])
        return (out + 1e-12).sqrt()
