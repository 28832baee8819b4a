"""Feature extractors for perceptual and style losses.

A feature extractor is any module whose forward(x) returns a mapping from layer
name to feature tensor; if it has a `layer_names` attribute, requested names are
checked against it at construction.

    VGGFeatureExtractor         VGG11/13/16/19(_bn) (torchvision's layers, no torchvision), BasicSR layer names
    SequentialFeatureExtractor  any nn.Sequential (or named layers) as a feature extractor
"""
from collections import OrderedDict
from typing import Dict, Mapping, Optional, Sequence

import torch
from torch import Tensor, nn

from .. import _checks
from ..functional import _backbones

_VGG_BLOCKS = {"vgg11": (1, 1, 2, 2, 2), "vgg13": (2, 2, 2, 2, 2), "vgg16": (2, 2, 3, 3, 3),
               "vgg19": (2, 2, 4, 4, 4)}
VGG_TYPES = tuple(_VGG_BLOCKS) + tuple(k + "_bn" for k in _VGG_BLOCKS)
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def vgg_layer_names(vgg_type: str):
    """BasicSR's names of the layers of torchvision's vgg.features, in order
    (conv1_1, [bn1_1,] relu1_1, ..., pool5)."""
    _checks.choice(vgg_type, "vgg_type", VGG_TYPES)
    bn = vgg_type.endswith("_bn")
    names = []
    for b, convs in enumerate(_VGG_BLOCKS[vgg_type.replace("_bn", "")], start=1):
        for c in range(1, convs + 1):
            names.append(f"conv{b}_{c}")
            if bn:
                names.append(f"bn{b}_{c}")
            names.append(f"relu{b}_{c}")
        names.append(f"pool{b}")
    return names


class SequentialFeatureExtractor(nn.Module):
    """Runs named layers in order and returns {name: output} for the requested names,
    stopping after the last one. Optional input normalisation as BasicSR's
    VGGFeatureExtractor: range_norm maps [-1, 1] to [0, 1], use_input_norm subtracts
    the ImageNet mean and divides by its std.

    Outputs are not cloned: an in-place layer (ReLU(inplace=True)) right after a
    requested layer is switched to out-of-place instead, once, at construction.
    """

    def __init__(self, layers, layer_name_list: Sequence[str], use_input_norm: bool = False,
                 range_norm: bool = False, requires_grad: bool = False):
        super().__init__()
        if isinstance(layers, nn.Sequential):
            named = list(layers.named_children())
        elif isinstance(layers, Mapping):
            named = list(layers.items())
        else:
            named = list(layers)
        self.layer_names = [str(n) for n, _ in named]
        self.layers = nn.Sequential(OrderedDict(named))
        wanted = list(layer_name_list)
        missing = [n for n in wanted if n not in self.layer_names]
        if missing:
            raise ValueError(f"layer names {missing} are not layers of this extractor; it has {self.layer_names}")
        if not wanted:
            raise ValueError("layer_name_list must name at least one layer")
        self.layer_name_list = wanted
        self._last = max(self.layer_names.index(n) for n in wanted)
        modules = list(self.layers.children())
        for name in wanted:
            i = self.layer_names.index(name)
            if i + 1 < len(modules) and getattr(modules[i + 1], "inplace", False):
                modules[i + 1].inplace = False
        self.use_input_norm = use_input_norm
        self.range_norm = range_norm
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        if not requires_grad:
            self.eval()
            for p in self.parameters():
                p.requires_grad_(False)

    def forward(self, x: Tensor) -> Dict[str, Tensor]:
        if self.range_norm:
            x = (x + 1) / 2
        if self.use_input_norm:
            x = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        wanted = set(self.layer_name_list)
        out = {}
        for i, (name, layer) in enumerate(self.layers.named_children()):
            x = layer(x)
            if name in wanted:
                out[name] = x
            if i == self._last:
                break
        return out


def load_vgg_features(vgg_type: str = "vgg19", weights: Optional[str] = None, download: bool = False) -> nn.Sequential:
    """torchvision's vgg.features (built in plain torch.nn: fastiqa.functional._backbones, the
    same layers at the same indices) with ImageNet weights found by fastiqa.weights: the file
    `weights` (a torchvision-format state dict of the whole VGG, used as given; a warning when
    it is not the published file), else $FASTIQA_WEIGHTS_DIR, else torchvision's cache, both
    checked by SHA-256. weights="random" keeps a random initialisation. Never downloads
    unless download=True; a missing file is one error naming it and `fastiqa weights fetch`."""
    _checks.choice(vgg_type, "vgg_type", VGG_TYPES)
    if weights == "random":
        return _backbones.features(vgg_type)
    features = _backbones.load_features(vgg_type, weights, download, arg="weights")[0]
    for p in features.parameters():  # as torchvision returns it: trainable, train mode (the
        p.requires_grad_(True)       # extractor freezes it unless requires_grad=True)
    return features.train()


class VGGFeatureExtractor(SequentialFeatureExtractor):
    """BasicSR's VGGFeatureExtractor on torchvision's VGG (load_vgg_features: weights found by
    fastiqa.weights): {layer name: feature} for layer_name_list (names from vgg_layer_names)."""

    def __init__(self, layer_name_list: Sequence[str], vgg_type: str = "vgg19", use_input_norm: bool = True,
                 range_norm: bool = False, requires_grad: bool = False, remove_pooling: bool = False,
                 pooling_stride: int = 2, weights: Optional[str] = None, download: bool = False):
        names = vgg_layer_names(vgg_type)
        missing = [n for n in layer_name_list if n not in names]
        if missing:
            raise ValueError(f"layer names {missing} are not {vgg_type} layers; valid names: {names}")
        features = load_vgg_features(vgg_type, weights, download)
        layers = []
        for name, layer in zip(names, features.children()):
            if name.startswith("pool"):
                if remove_pooling:
                    continue
                layer = nn.MaxPool2d(kernel_size=2, stride=pooling_stride)
            layers.append((name, layer))
        super().__init__(layers, layer_name_list, use_input_norm, range_norm, requires_grad)
