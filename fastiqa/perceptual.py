"""Perceptual, texture (style), feature-matching and GAN losses, and the weighted
sum that restoration training uses (modules; the fused math is in fastiqa.functional).

    PerceptualLoss       BasicSR's interface: (percep, style), style on the fused Gram op
    VGGFeatureExtractor  VGG11/13/16/19(_bn) from torchvision (optional), BasicSR layer names
    SequentialFeatureExtractor  any nn.Sequential (or named layers) as a feature extractor
    FeatureMatchingLoss  L1 between discriminator features, averaged per layer
    GANLoss              vanilla / lsgan / wgan / wgan_softplus / hinge (BasicSR semantics)
    CombinedLoss         pixel + SSIM + perceptual + style + GAN, from modules or BasicSR options

A feature extractor is any module whose forward(x) returns a mapping from layer
name to feature tensor; if it has a `layer_names` attribute, requested names are
checked against it at construction.
"""
import os
from collections import OrderedDict
from typing import Dict, Mapping, Optional, Sequence

import torch
from torch import Tensor, nn

from . import _checks, functional as F

# ----------------------------------------------------------------------------
# feature extractors
# ----------------------------------------------------------------------------

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


def _vgg_weights_file(vgg_type: str) -> str:
    import torchvision

    enum_name = {"vgg11": "VGG11", "vgg13": "VGG13", "vgg16": "VGG16", "vgg19": "VGG19"}[vgg_type.replace("_bn", "")]
    enum_name += "_BN_Weights" if vgg_type.endswith("_bn") else "_Weights"
    url = getattr(torchvision.models, enum_name).IMAGENET1K_V1.url
    return os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(url))


def load_vgg_features(vgg_type: str = "vgg19", weights: Optional[str] = None) -> nn.Sequential:
    """torchvision's vgg.features with ImageNet weights from `weights` (a local .pth of
    the full VGG state dict), else from torchvision's cache (torch.hub.get_dir()/checkpoints).
    weights="random" keeps the random initialisation. Never downloads: a clear error
    says where to put the file when none is found."""
    _checks.choice(vgg_type, "vgg_type", VGG_TYPES)
    try:
        import torchvision
    except ImportError as exc:
        raise ImportError(
            "VGG feature extraction needs torchvision (pip install torchvision), or pass your own "
            "feature extractor with extractor=..."
        ) from exc
    model = getattr(torchvision.models, vgg_type)(weights=None)
    if weights != "random":
        path = weights if weights is not None else _vgg_weights_file(vgg_type)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"no {vgg_type} weights at {path!r}: download them once (e.g. "
                f"torchvision.models.{vgg_type}(weights='DEFAULT') on a machine with network access, "
                f"which fills {os.path.dirname(path)}), or pass weights='/path/to/{vgg_type}.pth', "
                "or weights='random'"
            )
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.features


class VGGFeatureExtractor(SequentialFeatureExtractor):
    """BasicSR's VGGFeatureExtractor on torchvision's VGG (optional dependency):
    {layer name: feature} for layer_name_list (names from vgg_layer_names)."""

    def __init__(self, layer_name_list: Sequence[str], vgg_type: str = "vgg19", use_input_norm: bool = True,
                 range_norm: bool = False, requires_grad: bool = False, remove_pooling: bool = False,
                 pooling_stride: int = 2, weights: Optional[str] = None):
        names = vgg_layer_names(vgg_type)
        missing = [n for n in layer_name_list if n not in names]
        if missing:
            raise ValueError(f"layer names {missing} are not {vgg_type} layers; valid names: {names}")
        features = load_vgg_features(vgg_type, weights)
        layers = []
        for name, layer in zip(names, features.children()):
            if name.startswith("pool"):
                if remove_pooling:
                    continue
                layer = nn.MaxPool2d(kernel_size=2, stride=pooling_stride)
            layers.append((name, layer))
        super().__init__(layers, layer_name_list, use_input_norm, range_norm, requires_grad)


# ----------------------------------------------------------------------------
# perceptual + style loss
# ----------------------------------------------------------------------------

_FEATURE_CRITERIA = ("l1", "l2", "fro")


def _feature_distance(a: Tensor, b: Tensor, criterion: str, backend) -> Tensor:
    if criterion == "l1":
        return F.l1_loss(a, b, backend=backend)
    if criterion == "l2":
        return F.mse_loss(a, b, backend=backend)
    return torch.norm(a - b, p="fro")


class PerceptualLoss(nn.Module):
    """BasicSR's PerceptualLoss: forward(x, gt) -> (percep, style).

    percep = perceptual_weight * sum_k layer_weights[k] * criterion(phi_k(x), phi_k(gt))
    style  = style_weight * sum_k layer_weights[k] * criterion(G(phi_k(x)), G(phi_k(gt)))
    with G(f) = f f^T / (C*H*W) on the fused Gram op; criterion "l1" (mean), "l2"
    (mean squared) or "fro" (Frobenius norm). A term whose weight is 0 is None and is
    not computed. The target branch runs without grad; features are not cloned.

    extractor: any module returning {name: feature}; default: VGGFeatureExtractor
    (torchvision) of vgg_type with weights from `weights` or torchvision's cache.
    vgg_type, use_input_norm and range_norm configure that default extractor only; a
    given extractor does its own input normalisation (SequentialFeatureExtractor
    takes the same two flags).
    """

    def __init__(self, layer_weights: Mapping[str, float], vgg_type: str = "vgg19", use_input_norm: bool = True,
                 range_norm: bool = False, perceptual_weight: float = 1.0, style_weight: float = 0.0,
                 criterion: str = "l1", *, extractor: Optional[nn.Module] = None, weights: Optional[str] = None,
                 backend: Optional[str] = None):
        super().__init__()
        if not isinstance(layer_weights, Mapping) or not layer_weights:
            raise ValueError("layer_weights must be a non-empty dict {layer name: weight}")
        self.criterion = _checks.choice(criterion, "criterion", _FEATURE_CRITERIA)
        self.layer_weights = dict(layer_weights)
        self.perceptual_weight = float(perceptual_weight)
        self.style_weight = float(style_weight)
        self.backend = backend
        if extractor is None:
            extractor = VGGFeatureExtractor(list(layer_weights), vgg_type, use_input_norm, range_norm,
                                            weights=weights)
        else:
            available = getattr(extractor, "layer_names", None)
            if available is not None:
                missing = [k for k in layer_weights if k not in available]
                if missing:
                    raise ValueError(f"layer_weights names {missing} are not layers of the extractor; "
                                     f"it has {list(available)}")
        self.vgg = extractor

    def _features(self, x):
        feats = self.vgg(x)
        missing = [k for k in self.layer_weights if k not in feats]
        if missing:
            raise ValueError(f"the feature extractor returned no {missing}; it returned {list(feats)}")
        return feats

    def forward(self, x: Tensor, gt: Tensor):
        _checks.pair(x, gt, "x", "gt")
        if self.perceptual_weight == 0 and self.style_weight == 0:
            return None, None
        x_features = self._features(x)
        with torch.no_grad():
            gt_features = self._features(gt.detach())
        percep = style = None
        if self.perceptual_weight > 0:
            percep = 0
            for k, w in self.layer_weights.items():
                percep = percep + _feature_distance(x_features[k], gt_features[k], self.criterion, self.backend) * w
            percep = percep * self.perceptual_weight
        if self.style_weight > 0:
            style = 0
            for k, w in self.layer_weights.items():
                style = style + F.style_loss(x_features[k], gt_features[k], self.criterion, backend=self.backend) * w
            style = style * self.style_weight
        return percep, style

    def extra_repr(self) -> str:
        return (f"layer_weights={self.layer_weights}, perceptual_weight={self.perceptual_weight}, "
                f"style_weight={self.style_weight}, criterion={self.criterion!r}")


class StyleLoss(nn.Module):
    """style_loss(feat_x, feat_y) as a module (fused Gram difference and criterion)."""

    def __init__(self, criterion: str = "l1", normalize: bool = True, loss_weight: float = 1.0,
                 backend: Optional[str] = None):
        super().__init__()
        self.criterion = _checks.choice(criterion, "criterion", F.GRAM_CRITERIA)
        self.normalize = normalize
        self.loss_weight = loss_weight
        self.backend = backend

    def forward(self, feat_x, feat_y=None, target_gram=None):
        loss = F.style_loss(feat_x, feat_y, self.criterion, target_gram=target_gram, normalize=self.normalize,
                            backend=self.backend)
        return loss if self.loss_weight == 1.0 else loss * self.loss_weight


# ----------------------------------------------------------------------------
# GAN and feature-matching losses
# ----------------------------------------------------------------------------

GAN_TYPES = ("vanilla", "lsgan", "wgan", "wgan_softplus", "hinge")


class GANLoss(nn.Module):
    """BasicSR's GANLoss: forward(input, target_is_real, is_disc=False).

    vanilla: BCE with logits against the real/fake label; lsgan: mean squared error to
    the label; wgan: -mean(input) if real else mean(input); wgan_softplus:
    mean(softplus(-input)) if real else mean(softplus(input)); hinge: for the
    discriminator mean(relu(1 - input)) if real else mean(relu(1 + input)), for the
    generator -mean(input). loss_weight multiplies the generator loss only
    (is_disc=False). No full-size target tensor is allocated.
    """

    def __init__(self, gan_type: str, real_label_val: float = 1.0, fake_label_val: float = 0.0,
                 loss_weight: float = 1.0):
        super().__init__()
        self.gan_type = _checks.choice(gan_type, "gan_type", GAN_TYPES)
        self.real_label_val = float(real_label_val)
        self.fake_label_val = float(fake_label_val)
        self.loss_weight = float(loss_weight)

    def forward(self, input: Tensor, target_is_real: bool, is_disc: bool = False) -> Tensor:
        _checks.tensor(input, "input")
        x = input
        t = self.real_label_val if target_is_real else self.fake_label_val
        if self.gan_type == "vanilla":
            # BCEWithLogits(x, t) = softplus(x) - t x, as a scalar label
            loss = (nn.functional.softplus(x) - t * x).mean() if t != 0 else nn.functional.softplus(x).mean()
        elif self.gan_type == "lsgan":
            loss = nn.functional.mse_loss(x, x.new_tensor(t).expand_as(x))
        elif self.gan_type == "wgan":
            loss = -x.mean() if target_is_real else x.mean()
        elif self.gan_type == "wgan_softplus":
            loss = nn.functional.softplus(-x).mean() if target_is_real else nn.functional.softplus(x).mean()
        else:  # hinge
            if is_disc:
                loss = nn.functional.relu(1 - x).mean() if target_is_real else nn.functional.relu(1 + x).mean()
            else:
                loss = -x.mean()
        return loss if is_disc else loss * self.loss_weight

    def extra_repr(self) -> str:
        return f"gan_type={self.gan_type!r}, loss_weight={self.loss_weight}"


class FeatureMatchingLoss(nn.Module):
    """L1 between the discriminator features of fake and real images, averaged per layer
    (mean over layers of the mean absolute difference; with a list of lists, one per
    discriminator, also averaged over discriminators); real features are detached;
    loss_weight applied once."""

    def __init__(self, loss_weight: float = 1.0, backend: Optional[str] = None):
        super().__init__()
        self.loss_weight = float(loss_weight)
        self.backend = backend

    def _one(self, fake, real):
        if len(fake) != len(real) or len(fake) == 0:
            raise ValueError(f"fake and real feature lists must be non-empty and of one length, got "
                             f"{len(fake)} and {len(real)}")
        total = 0
        for i, (a, b) in enumerate(zip(fake, real)):
            if a.shape != b.shape:
                raise ValueError(f"feature {i}: fake and real shapes differ, {tuple(a.shape)} and {tuple(b.shape)}")
            total = total + F.l1_loss(a, b.detach(), backend=self.backend)
        return total / len(fake)

    def forward(self, fake_feats, real_feats) -> Tensor:
        if len(fake_feats) and isinstance(fake_feats[0], (list, tuple)):
            if len(fake_feats) != len(real_feats):
                raise ValueError("fake and real must hold one feature list per discriminator")
            loss = sum(self._one(a, b) for a, b in zip(fake_feats, real_feats)) / len(fake_feats)
        else:
            loss = self._one(fake_feats, real_feats)
        return loss * self.loss_weight


# ----------------------------------------------------------------------------
# the weighted sum of restoration training
# ----------------------------------------------------------------------------


def _loss_class(type_name: str):
    """A loss class by BasicSR type name: fastiqa.compat.basicsr first, then fastiqa.nn
    (looked up lazily, so losses added later, e.g. SSIMLoss, are found)."""
    from . import nn as fnn
    from .compat import basicsr

    for mod in (basicsr, fnn):
        cls = getattr(mod, type_name, None)
        if isinstance(cls, type) and issubclass(cls, nn.Module):
            return cls
    raise ValueError(f"unknown loss type {type_name!r}: not in fastiqa.compat.basicsr or fastiqa.nn")


def _term_is_zero(opt: Mapping) -> bool:
    if opt.get("type") == "PerceptualLoss":
        return float(opt.get("perceptual_weight", 1.0)) == 0 and float(opt.get("style_weight", 0.0)) == 0
    return float(opt.get("loss_weight", 1.0)) == 0


class CombinedLoss(nn.Module):
    """Weighted sum of loss terms: forward(pred, target, disc_fake=None) -> (total, logs).

    terms: {name: module}; weights: {name: factor} (default 1; 0 skips the term).
    Modules are called as module(pred, target), except PerceptualLoss (its (percep,
    style) pair logs as l_<name> and l_<name>_style, "l_style" for the name "percep")
    and GANLoss, called as gan(disc_fake, True, is_disc=False) on the discriminator's
    output for pred: disc_fake= in forward, or discriminator(pred) when a
    discriminator module was given. logs: {"l_<name>": detached value}.

    CombinedLoss.from_options(pixel_opt=..., perceptual_opt=..., gan_opt=..., ssim_opt=...)
    builds the terms from BasicSR-style option dicts ({"type": ..., "loss_weight": ...,
    the loss's own arguments}); a None option or a zero weight leaves the term out, so
    it is never built nor computed.
    """

    def __init__(self, terms: Mapping[str, nn.Module], weights: Optional[Mapping[str, float]] = None,
                 discriminator: Optional[nn.Module] = None):
        super().__init__()
        if not isinstance(terms, Mapping):
            raise TypeError(f"terms must be a dict {{name: loss module}}, got {type(terms).__name__}")
        weights = dict(weights or {})
        unknown = [k for k in weights if k not in terms]
        if unknown:
            raise ValueError(f"weights names {unknown} are not terms; terms are {list(terms)}")
        for name, module in terms.items():
            if not isinstance(module, nn.Module):
                raise TypeError(f"term {name!r} must be an nn.Module, got {type(module).__name__}")
        self.terms = nn.ModuleDict({k: v for k, v in terms.items() if float(weights.get(k, 1.0)) != 0})
        self.weights = {k: float(weights.get(k, 1.0)) for k in self.terms}
        self.discriminator = discriminator

    @classmethod
    def from_options(cls, pixel_opt: Optional[Mapping] = None, perceptual_opt: Optional[Mapping] = None,
                     gan_opt: Optional[Mapping] = None, ssim_opt: Optional[Mapping] = None,
                     discriminator: Optional[nn.Module] = None, **extractor_kwargs):
        """BasicSR option dicts -> CombinedLoss with terms "pix", "ssim", "percep", "gan".
        extractor_kwargs (e.g. extractor=..., weights=...) go to PerceptualLoss."""
        terms = {}
        for name, opt in (("pix", pixel_opt), ("ssim", ssim_opt), ("percep", perceptual_opt), ("gan", gan_opt)):
            if opt is None:
                continue
            if not isinstance(opt, Mapping) or "type" not in opt:
                raise ValueError(f"{name} options must be a dict with a 'type' key, got {opt!r}")
            if _term_is_zero(opt):
                continue
            args = {k: v for k, v in opt.items() if k != "type"}
            loss_cls = _loss_class(opt["type"])
            if issubclass(loss_cls, PerceptualLoss):
                args.update(extractor_kwargs)
            terms[name] = loss_cls(**args)
        return cls(terms, discriminator=discriminator)

    def forward(self, pred: Tensor, target: Tensor, disc_fake: Optional[Tensor] = None):
        total = 0
        logs = {}
        for name, module in self.terms.items():
            w = self.weights[name]
            if isinstance(module, PerceptualLoss):
                percep, style = module(pred, target)
                for key, value in ((f"l_{name}", percep),
                                   ("l_style" if name == "percep" else f"l_{name}_style", style)):
                    if value is not None:
                        total = total + w * value
                        logs[key] = value.detach()
                continue
            if isinstance(module, GANLoss):
                logits = disc_fake
                if logits is None:
                    if self.discriminator is None:
                        raise ValueError(f"term {name!r} is a GANLoss: pass disc_fake= (the discriminator's "
                                         "output for pred) or give CombinedLoss a discriminator")
                    logits = self.discriminator(pred)
                value = module(logits, True, is_disc=False)
                key = "l_g_gan" if name == "gan" else f"l_{name}"
            else:
                value = module(pred, target)
                key = f"l_{name}"
            total = total + w * value
            logs[key] = value.detach()
        if not isinstance(total, Tensor):
            total = pred.new_zeros((), dtype=torch.float32)
        return total, logs
