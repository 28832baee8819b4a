"""nn.Module wrappers of fastiqa.functional, and the losses of restoration training
built on them (perceptual, style, GAN, feature matching, their weighted sum).
One module per concern; everything is importable from fastiqa.nn."""
from .adversarial import GAN_TYPES, FeatureMatchingLoss, GANLoss
from .combined import CombinedLoss, register_loss_types
from .features import VGG_TYPES, SequentialFeatureExtractor, VGGFeatureExtractor, load_vgg_features, vgg_layer_names
from .gram import GramMatrix, StyleLoss
from .lpips import DISTS, LPIPS
from .perceptual import PerceptualLoss
from .pixel import CharbonnierLoss, L1Loss, MSELoss
from .psnr import PSNRLoss
from .ssim import L1SSIMLoss, MSSSIMLoss, SSIMLoss

__all__ = ["L1Loss", "MSELoss", "CharbonnierLoss", "SSIMLoss", "MSSSIMLoss", "L1SSIMLoss", "PSNRLoss",
           "GramMatrix", "StyleLoss", "PerceptualLoss", "LPIPS", "DISTS", "GANLoss", "FeatureMatchingLoss",
           "CombinedLoss",
           "SequentialFeatureExtractor", "VGGFeatureExtractor", "load_vgg_features", "vgg_layer_names",
           "register_loss_types", "GAN_TYPES", "VGG_TYPES"]

register_loss_types(L1Loss, MSELoss, CharbonnierLoss, SSIMLoss, MSSSIMLoss, L1SSIMLoss, PSNRLoss, StyleLoss,
                    PerceptualLoss, GANLoss, FeatureMatchingLoss)
