"""Gram-family modules: GramMatrix and StyleLoss (fused Gram difference and criterion)."""
from typing import Optional

import torch

from .. import _checks
from .. import functional as F


class GramMatrix(torch.nn.Module):
    """gram_matrix(feat) as a module: (N, C, H, W) -> (N, C, C)."""

    def __init__(self, normalize: bool = True, backend: Optional[str] = None):
        super().__init__()
        self.normalize = _checks.flag(normalize, "normalize")
        self.backend = backend

    def forward(self, feat):
        return F.gram_matrix(feat, self.normalize, backend=self.backend)


class StyleLoss(torch.nn.Module):
    """style_loss(pred, target) on features as a module (fused Gram difference and criterion)."""

    def __init__(self, criterion: str = "l1", normalize: bool = True, loss_weight: float = 1.0,
                 backend: Optional[str] = None):
        super().__init__()
        self.criterion = _checks.choice(criterion, "criterion", F.GRAM_CRITERIA)
        self.normalize = normalize
        self.loss_weight = loss_weight
        self.backend = backend

    def forward(self, pred, target=None, target_gram=None):
        loss = F.style_loss(pred, target, self.criterion, target_gram=target_gram, normalize=self.normalize,
                            backend=self.backend)
        return loss if self.loss_weight == 1.0 else loss * self.loss_weight
