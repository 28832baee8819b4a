"""PerceptualLoss, GANLoss, FeatureMatchingLoss, CombinedLoss against transcriptions of
BasicSR's formulas (basicsr/losses/basic_loss.py, gan_loss.py, archs/vgg_arch.py)."""

import pytest
import torch
from torch import nn

import fastiqa
import fastiqa.nn as fnn
from fastiqa.compat import basicsr as compat
from fastiqa.nn import (
    CombinedLoss,
    FeatureMatchingLoss,
    GANLoss,
    PerceptualLoss,
    SequentialFeatureExtractor,
    vgg_layer_names,
)

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def small_layers():
    torch.manual_seed(1)
    return [
        ("conv1_1", nn.Conv2d(3, 8, 3, padding=1)),
        ("relu1_1", nn.ReLU(inplace=True)),
        ("conv1_2", nn.Conv2d(8, 8, 3, padding=1)),
        ("relu1_2", nn.ReLU(inplace=True)),
        ("pool1", nn.MaxPool2d(2)),
        ("conv2_1", nn.Conv2d(8, 16, 3, padding=1)),
        ("relu2_1", nn.ReLU(inplace=True)),
        ("conv2_2", nn.Conv2d(16, 16, 3, padding=1)),
    ]


def basicsr_features(layers, names, x, use_input_norm, range_norm):
    """BasicSR VGGFeatureExtractor.forward: normalise, run the layers, clone requested outputs."""
    if range_norm:
        x = (x + 1) / 2
    if use_input_norm:
        x = (x - MEAN.to(x.dtype)) / STD.to(x.dtype)
    out = {}
    for key, layer in layers:
        x = layer(x)
        if key in names:
            out[key] = x.clone()
    return out


def basicsr_gram(x):
    n, c, h, w = x.size()
    features = x.view(n, c, w * h)
    return features.bmm(features.transpose(1, 2)) / (c * h * w)


def basicsr_criterion(name):
    if name == "l1":
        return torch.nn.L1Loss()
    if name == "l2":
        return torch.nn.MSELoss()
    return None  # fro


def basicsr_perceptual(
    layers, layer_weights, x, gt, use_input_norm, range_norm, perceptual_weight, style_weight, criterion_type
):
    crit = basicsr_criterion(criterion_type)
    x_features = basicsr_features(layers, layer_weights, x, use_input_norm, range_norm)
    gt_features = basicsr_features(layers, layer_weights, gt.detach(), use_input_norm, range_norm)
    if perceptual_weight > 0:
        percep_loss = 0
        for k in x_features.keys():
            if criterion_type == "fro":
                percep_loss += torch.norm(x_features[k] - gt_features[k], p="fro") * layer_weights[k]
            else:
                percep_loss += crit(x_features[k], gt_features[k]) * layer_weights[k]
        percep_loss *= perceptual_weight
    else:
        percep_loss = None
    if style_weight > 0:
        style_loss = 0
        for k in x_features.keys():
            if criterion_type == "fro":
                style_loss += (
                    torch.norm(basicsr_gram(x_features[k]) - basicsr_gram(gt_features[k]), p="fro") * layer_weights[k]
                )
            else:
                style_loss += crit(basicsr_gram(x_features[k]), basicsr_gram(gt_features[k])) * layer_weights[k]
        style_loss *= style_weight
    else:
        style_loss = None
    return percep_loss, style_loss


@pytest.mark.parametrize("criterion", ["l1", "l2", "fro"])
@pytest.mark.parametrize("norms", [(True, False), (False, True)])
def test_perceptual_matches_basicsr(criterion, norms):
    use_input_norm, range_norm = norms
    layer_weights = {"relu1_2": 0.5, "conv2_2": 1.0, "conv1_1": 0.25}
    layers = [(n, m.double()) for n, m in small_layers()]
    ref_layers = [(n, (nn.ReLU() if isinstance(m, nn.ReLU) else m)) for n, m in layers]
    ours = PerceptualLoss(
        layer_weights,
        use_input_norm=use_input_norm,
        range_norm=range_norm,
        perceptual_weight=0.7,
        style_weight=30.0,
        criterion=criterion,
        extractor=SequentialFeatureExtractor(layers, list(layer_weights), use_input_norm, range_norm),
    )
    x = torch.rand(2, 3, 19, 23, dtype=torch.float64, requires_grad=True)
    gt = torch.rand(2, 3, 19, 23, dtype=torch.float64)
    p, s = ours(x, gt)
    gp, gs = torch.autograd.grad(p + s, x)[0], None
    x2 = x.detach().clone().requires_grad_(True)
    rp, rs = basicsr_perceptual(ref_layers, layer_weights, x2, gt, use_input_norm, range_norm, 0.7, 30.0, criterion)
    (grp,) = torch.autograd.grad(rp + rs, x2)
    torch.testing.assert_close(p.double(), rp, rtol=1e-9, atol=0)
    torch.testing.assert_close(s.double(), rs, rtol=1e-9, atol=0)
    torch.testing.assert_close(gp, grp, rtol=1e-7, atol=1e-12)
    assert gs is None


def test_perceptual_zero_weights_are_none_and_skipped():
    calls = []
    layers = small_layers()
    ext = SequentialFeatureExtractor(layers, ["relu1_1"])
    ext.register_forward_hook(lambda m, i, o: calls.append(1))
    x, gt = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)
    p, s = PerceptualLoss({"relu1_1": 1.0}, perceptual_weight=1.0, style_weight=0.0, extractor=ext)(x, gt)
    assert p is not None and s is None
    p, s = PerceptualLoss({"relu1_1": 1.0}, perceptual_weight=0.0, style_weight=2.0, extractor=ext)(x, gt)
    assert p is None and s is not None
    calls.clear()
    p, s = PerceptualLoss({"relu1_1": 1.0}, perceptual_weight=0.0, style_weight=0.0, extractor=ext)(x, gt)
    assert p is None and s is None and not calls, "zero weights must not run the extractor"


def test_target_branch_without_grad_and_no_clone():
    grad_modes = []
    layers = small_layers()
    ext = SequentialFeatureExtractor(layers, ["conv1_1", "conv2_2"])
    # the in-place ReLU after a requested layer was made out-of-place instead of cloning
    assert ext.layers.relu1_1.inplace is False and ext.layers.relu1_2.inplace is True
    ext.layers.conv1_1.register_forward_hook(lambda m, i, o: grad_modes.append(torch.is_grad_enabled()))
    loss = PerceptualLoss({"conv1_1": 1.0, "conv2_2": 1.0}, use_input_norm=False, extractor=ext)
    x = torch.rand(1, 3, 8, 8, requires_grad=True)
    gt = torch.rand(1, 3, 8, 8, requires_grad=True)
    p, _ = loss(x, gt)
    p.backward()
    assert grad_modes == [True, False]
    assert gt.grad is None and x.grad is not None
    feats = ext(x.detach())
    manual = layers[0][1](x.detach())
    torch.testing.assert_close(feats["conv1_1"], manual)


def test_extractor_is_frozen_by_default():
    ext = SequentialFeatureExtractor(small_layers(), ["relu1_1"])
    assert not ext.training and all(not p.requires_grad for p in ext.parameters())


def test_perceptual_bad_input():
    ext = SequentialFeatureExtractor(small_layers(), ["relu1_1"])
    with pytest.raises(ValueError, match="conv9_9"):
        PerceptualLoss({"conv9_9": 1.0}, extractor=ext)
    with pytest.raises(ValueError, match="conv9_9"):
        SequentialFeatureExtractor(small_layers(), ["conv9_9"])
    with pytest.raises(ValueError, match="criterion"):
        PerceptualLoss({"relu1_1": 1.0}, criterion="l3", extractor=ext)
    with pytest.raises(ValueError, match="layer_weights"):
        PerceptualLoss({}, extractor=ext)
    loss = PerceptualLoss({"relu1_1": 1.0}, extractor=ext)
    with pytest.raises(ValueError, match="same shape"):
        loss(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 9))

    class Partial(nn.Module):  # no layer_names: checked at forward
        def forward(self, x):
            return {"a": x}

    with pytest.raises(ValueError, match="returned no"):
        PerceptualLoss({"b": 1.0}, extractor=Partial())(torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 4))


def test_vgg_layer_names():
    names = vgg_layer_names("vgg19")
    assert len(names) == 37 and names[:3] == ["conv1_1", "relu1_1", "conv1_2"] and names[-1] == "pool5"
    assert "relu5_4" in names
    bn = vgg_layer_names("vgg16_bn")
    assert len(bn) == 44 and bn[1] == "bn1_1"
    assert len(vgg_layer_names("vgg11")) == 21
    with pytest.raises(ValueError, match="vgg_type"):
        vgg_layer_names("vgg12")


# VGGFeatureExtractor / PerceptualLoss on a (random) VGG19 file against BasicSR, and the
# weights handling of that path: tests/test_perceptual_vgg.py


# ---------------------------------------------------------------------------- GAN


def basicsr_gan(gan_type, x, target_is_real, is_disc, real_val, fake_val, loss_weight):
    if gan_type in ("wgan", "wgan_softplus"):
        target_label = target_is_real
    else:
        target_val = real_val if target_is_real else fake_val
        target_label = x.new_ones(x.size()) * target_val
    if gan_type == "vanilla":
        loss = torch.nn.BCEWithLogitsLoss()(x, target_label)
    elif gan_type == "lsgan":
        loss = torch.nn.MSELoss()(x, target_label)
    elif gan_type == "wgan":
        loss = -x.mean() if target_label else x.mean()
    elif gan_type == "wgan_softplus":
        loss = torch.nn.functional.softplus(-x).mean() if target_label else torch.nn.functional.softplus(x).mean()
    else:
        if is_disc:
            xx = -x if target_is_real else x
            loss = torch.nn.ReLU()(1 + xx).mean()
        else:
            loss = -x.mean()
    return loss if is_disc else loss * loss_weight


@pytest.mark.parametrize("gan_type", ["vanilla", "lsgan", "wgan", "wgan_softplus", "hinge"])
@pytest.mark.parametrize("target_is_real", [True, False])
@pytest.mark.parametrize("is_disc", [True, False])
def test_gan_loss_matches_basicsr(gan_type, target_is_real, is_disc):
    x = torch.randn(4, 1, 7, 5, dtype=torch.float64, requires_grad=True)
    loss = GANLoss(gan_type, real_label_val=0.9, fake_label_val=0.1, loss_weight=0.3)(x, target_is_real, is_disc)
    (g,) = torch.autograd.grad(loss, x)
    x2 = x.detach().clone().requires_grad_(True)
    ref = basicsr_gan(gan_type, x2, target_is_real, is_disc, 0.9, 0.1, 0.3)
    (g2,) = torch.autograd.grad(ref, x2)
    torch.testing.assert_close(loss, ref, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(g, g2, rtol=1e-12, atol=1e-14)


def test_gan_loss_default_labels_and_errors():
    x = torch.randn(3, 1, 4, 4, dtype=torch.float64)
    for real in (True, False):
        torch.testing.assert_close(
            GANLoss("vanilla")(x, real, True), basicsr_gan("vanilla", x, real, True, 1.0, 0.0, 1.0)
        )
    with pytest.raises(ValueError, match="gan_type"):
        GANLoss("wgan_gp")
    with pytest.raises(TypeError, match="input"):
        GANLoss("lsgan")([1.0], True)
    assert compat.GANLoss is GANLoss and compat.PerceptualLoss is PerceptualLoss


# ---------------------------------------------------------------------------- feature matching


def test_feature_matching_loss():
    fake = [torch.randn(2, 4, 8, 8, requires_grad=True), torch.randn(2, 8, 4, 4, requires_grad=True)]
    real = [torch.randn(2, 4, 8, 8, requires_grad=True), torch.randn(2, 8, 4, 4, requires_grad=True)]
    loss = FeatureMatchingLoss(loss_weight=10.0)(fake, real)
    ref = 10.0 * sum((a - b.detach()).abs().mean() for a, b in zip(fake, real)) / 2
    torch.testing.assert_close(loss, ref)
    loss.backward()
    assert all(r.grad is None for r in real) and all(f.grad is not None for f in fake)
    nested = FeatureMatchingLoss()([fake, fake[:1]], [real, real[:1]])
    ref2 = (sum((a - b).abs().mean() for a, b in zip(fake, real)) / 2 + (fake[0] - real[0]).abs().mean()) / 2
    torch.testing.assert_close(nested, ref2.detach(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="one length"):
        FeatureMatchingLoss()(fake, real[:1])
    with pytest.raises(ValueError, match="shapes differ"):
        FeatureMatchingLoss()(fake, real[::-1])


# ---------------------------------------------------------------------------- combined


class Counting(nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner, self.calls = inner, 0

    def forward(self, *args):
        self.calls += 1
        return self.inner(*args)


def test_combined_from_modules():
    pred = torch.rand(2, 3, 16, 16, requires_grad=True)
    target = torch.rand(2, 3, 16, 16)
    l1, mse, skipped = Counting(fnn.L1Loss()), Counting(fnn.MSELoss()), Counting(fnn.L1Loss())
    combined = CombinedLoss({"pix": l1, "mse": mse, "off": skipped}, weights={"mse": 2.0, "off": 0.0})
    total, logs = combined(pred, target)
    ref = (pred - target).abs().mean() + 2.0 * ((pred - target) ** 2).mean()
    torch.testing.assert_close(total, ref)
    assert set(logs) == {"l_pix", "l_mse"} and not logs["l_pix"].requires_grad
    assert skipped.calls == 0, "a zero weight must skip its term's computation"
    total.backward()
    assert pred.grad is not None
    with pytest.raises(ValueError, match="weights names"):
        CombinedLoss({"pix": l1}, weights={"nope": 1.0})
    with pytest.raises(TypeError, match="pix"):
        CombinedLoss({"pix": lambda a, b: a})


def test_combined_from_basicsr_options():
    layers = small_layers()
    ext = SequentialFeatureExtractor(layers, ["relu1_2", "conv2_2"], use_input_norm=True)
    disc = nn.Sequential(nn.Conv2d(3, 1, 3))
    combined = CombinedLoss.from_options(
        pixel_opt={"type": "L1Loss", "loss_weight": 1.0, "reduction": "mean"},
        perceptual_opt={
            "type": "PerceptualLoss",
            "layer_weights": {"relu1_2": 1.0, "conv2_2": 0.5},
            "vgg_type": "vgg19",
            "use_input_norm": True,
            "perceptual_weight": 1.0,
            "style_weight": 50.0,
            "criterion": "l1",
        },
        gan_opt={"type": "GANLoss", "gan_type": "vanilla", "loss_weight": 0.1},
        discriminator=disc,
        extractor=ext,
    )
    pred = torch.rand(2, 3, 16, 16, requires_grad=True)
    target = torch.rand(2, 3, 16, 16)
    total, logs = combined(pred, target)
    assert set(logs) == {"l_pix", "l_percep", "l_style", "l_g_gan"}
    percep, style = PerceptualLoss({"relu1_2": 1.0, "conv2_2": 0.5}, style_weight=50.0, extractor=ext)(pred, target)
    gan = 0.1 * torch.nn.functional.binary_cross_entropy_with_logits(disc(pred), torch.ones_like(disc(pred)))
    ref = (pred - target).abs().mean() + percep + style + gan
    torch.testing.assert_close(total, ref, rtol=1e-5, atol=1e-7)
    total.backward()
    assert torch.isfinite(pred.grad).all()
    # disc_fake given explicitly instead of a discriminator
    logits = torch.randn(2, 1, 8, 8)
    c2 = CombinedLoss.from_options(gan_opt={"type": "GANLoss", "gan_type": "lsgan", "loss_weight": 0.5})
    t2, l2 = c2(pred, target, disc_fake=logits)
    torch.testing.assert_close(t2, 0.5 * ((logits - 1) ** 2).mean())
    with pytest.raises(ValueError, match="disc_fake"):
        c2(pred, target)


def test_combined_zero_weight_options_are_not_built():
    # a perceptual term with both weights 0 would need VGG weights if it were built
    combined = CombinedLoss.from_options(
        pixel_opt={"type": "CharbonnierLoss", "loss_weight": 1.0},
        perceptual_opt={
            "type": "PerceptualLoss",
            "layer_weights": {"conv5_4": 1.0},
            "perceptual_weight": 0.0,
            "style_weight": 0.0,
        },
        gan_opt={"type": "GANLoss", "gan_type": "hinge", "loss_weight": 0.0},
    )
    assert list(combined.terms) == ["pix"]
    pred, target = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)
    total, logs = combined(pred, target)
    torch.testing.assert_close(total, compat.CharbonnierLoss()(pred, target))
    assert list(logs) == ["l_pix"]


def test_combined_bad_options_and_ssim_lookup():
    with pytest.raises(ValueError, match="unknown loss type"):
        CombinedLoss.from_options(pixel_opt={"type": "NoSuchLoss"})
    with pytest.raises(ValueError, match="type"):
        CombinedLoss.from_options(pixel_opt={"loss_weight": 1.0})
    if hasattr(fastiqa.nn, "SSIMLoss"):  # built by the ssim family when merged
        combined = CombinedLoss.from_options(ssim_opt={"type": "SSIMLoss"})
        assert "ssim" in combined.terms
    else:
        with pytest.raises(ValueError, match="SSIMLoss"):
            CombinedLoss.from_options(ssim_opt={"type": "SSIMLoss", "loss_weight": 1.0})


def test_style_and_gram_modules():
    x, y = torch.randn(2, 4, 5, 6), torch.randn(2, 4, 5, 6)
    torch.testing.assert_close(
        fnn.StyleLoss("l2", loss_weight=3.0)(x, y), 3.0 * fastiqa.functional.style_loss(x, y, "l2")
    )
    torch.testing.assert_close(fnn.GramMatrix()(x), fastiqa.functional.gram_matrix(x))
