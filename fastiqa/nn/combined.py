"""CombinedLoss: the weighted sum of restoration training (pixel + SSIM + perceptual +
style + GAN), from modules or from BasicSR-style option dicts.

Option dicts name their loss by type ("L1Loss", "PerceptualLoss", ...). The names
resolve through LOSS_TYPES: fastiqa.nn registers its modules, fastiqa.compat.basicsr
registers its BasicSR-semantics losses over them (BasicSR's names mean BasicSR's
formulas), so this module imports neither.
"""
from typing import Dict, Mapping, Optional

import torch
from torch import Tensor, nn

from .adversarial import GANLoss
from .perceptual import PerceptualLoss

LOSS_TYPES: Dict[str, type] = {}


def register_loss_types(*classes: type, override: bool = False) -> None:
    """Makes classes available to CombinedLoss.from_options under their class names;
    override=True replaces a name already registered (compat.basicsr's do)."""
    for cls in classes:
        if override or cls.__name__ not in LOSS_TYPES:
            LOSS_TYPES[cls.__name__] = cls


def _loss_class(type_name: str):
    try:
        return LOSS_TYPES[type_name]
    except KeyError:
        raise ValueError(f"unknown loss type {type_name!r}; known types: {sorted(LOSS_TYPES)}") from None

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
