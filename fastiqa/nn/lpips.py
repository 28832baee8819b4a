"""LPIPS and DISTS as modules (metrics and training losses): the network is built and its
weights found once, at construction; move the module with .to(device) / .double()."""
from typing import Optional

from torch import Tensor, nn

from .. import _checks
from ..functional import _perceptual as P


class _PerceptualMetric(nn.Module):
    def __init__(self, reduction: str, input_range, backend):
        super().__init__()
        self.reduction = _checks.choice(reduction, "reduction", P.REDUCTIONS)
        self.input_range = P.check_input_range(input_range)
        self.backend = backend

    @property
    def weights_info(self):
        """Where the backbone's weights came from (fastiqa.weights.Resolved: path, SHA-256, source)."""
        return self.net.weights_info

    def extra_repr(self) -> str:
        w = self.weights_info
        return (f"reduction={self.reduction!r}, input_range={self.input_range}, backbone={w.path!r} "
                f"(sha256 {w.sha256[:12]}..., {w.source}{'' if w.published else ', not the published file'})")


class LPIPS(_PerceptualMetric):
    """LPIPS v0.1 (fastiqa.functional.lpips): forward(pred, target) -> distance; a loss as it
    is (lower is better). Gradients flow to pred, and to target when it requires grad; the
    network's own parameters are frozen. Computes in the module's dtype (float32 unless
    .double()); inputs are cast to it."""

    def __init__(self, net: str = "alex", reduction: str = "mean", *, input_range=(0, 1),
                 backbone_weights: Optional[str] = None, download: bool = False, backend: Optional[str] = None):
        super().__init__(reduction, input_range, backend)
        self.net = P.LPIPSNet(net, backbone_weights, download)

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        return P.lpips_with(self.net, pred, target, self.reduction, self.input_range, self.backend)


class DISTS(_PerceptualMetric):
    """DISTS (fastiqa.functional.dists): forward(pred, target) -> distance; a loss as it is.
    Same conventions as LPIPS."""

    def __init__(self, reduction: str = "mean", *, input_range=(0, 1), backbone_weights: Optional[str] = None,
                 download: bool = False, backend: Optional[str] = None):
        super().__init__(reduction, input_range, backend)
        self.net = P.DISTSNet(backbone_weights, download)

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        return P.dists_with(self.net, pred, target, self.reduction, self.input_range, self.backend)
