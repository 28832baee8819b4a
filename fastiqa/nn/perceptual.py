"""BasicSR's PerceptualLoss: (percep, style) on a feature extractor, style on the fused Gram op."""
from typing import Mapping, Optional

import torch
from torch import Tensor, nn

from .. import _checks
from .. import functional as F
from .features import VGGFeatureExtractor

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

    extractor: any module returning {name: feature}; default: VGGFeatureExtractor of
    vgg_type (torchvision's VGG layers in plain torch.nn) with ImageNet weights found by
    fastiqa.weights: the file `weights` (used as given), else $FASTIQA_WEIGHTS_DIR, else
    torchvision's cache; download=True fetches the published file when it is nowhere.
    vgg_type, use_input_norm and range_norm configure that default extractor only; a
    given extractor does its own input normalisation (SequentialFeatureExtractor
    takes the same two flags).
    """

    def __init__(self, layer_weights: Mapping[str, float], vgg_type: str = "vgg19", use_input_norm: bool = True,
                 range_norm: bool = False, perceptual_weight: float = 1.0, style_weight: float = 0.0,
                 criterion: str = "l1", *, extractor: Optional[nn.Module] = None, weights: Optional[str] = None,
                 download: bool = False, backend: Optional[str] = None):
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
                                            weights=weights, download=download)
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
