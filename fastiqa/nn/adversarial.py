"""Adversarial-training losses: GANLoss (BasicSR semantics) and FeatureMatchingLoss."""
from typing import Optional

from torch import Tensor, nn

from .. import _checks
from .. import functional as F

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
