"""PerceptualLoss's VGG path (fastiqa.nn.VGGFeatureExtractor on torchvision's VGG layers, weights
found by fastiqa.weights) against a transcription of BasicSR's VGGFeatureExtractor +
PerceptualLoss (basicsr/archs/vgg_arch.py, basicsr/losses/basic_loss.py) on the same random
VGG19 file: torchvision's make_layers written out here, BasicSR's layer names, pooling and
normalisation, its criteria and Gram matrix. No ImageNet file is needed."""
import hashlib
import warnings
from collections import OrderedDict

import pytest
import torch
from torch import nn

from fastiqa import weights as W
from fastiqa.nn import PerceptualLoss, VGGFeatureExtractor

# torchvision.models.vgg: cfgs["E"] (vgg19), make_layers(batch_norm=False)
CFG_E = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"]
# basicsr/archs/vgg_arch.py: NAMES["vgg19"]
NAMES_VGG19 = [
    "conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1", "conv2_1", "relu2_1", "conv2_2", "relu2_2", "pool2",
    "conv3_1", "relu3_1", "conv3_2", "relu3_2", "conv3_3", "relu3_3", "conv3_4", "relu3_4", "pool3", "conv4_1",
    "relu4_1", "conv4_2", "relu4_2", "conv4_3", "relu4_3", "conv4_4", "relu4_4", "pool4", "conv5_1", "relu5_1",
    "conv5_2", "relu5_2", "conv5_3", "relu5_3", "conv5_4", "relu5_4", "pool5"]
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def make_layers(cfg):
    layers, c = [], 3
    for v in cfg:
        if v == "M":
            layers += [nn.MaxPool2d(kernel_size=2, stride=2)]
        else:
            layers += [nn.Conv2d(c, v, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            c = v
    return nn.Sequential(*layers)


class BasicSRVGG(nn.Module):
    """BasicSR's VGGFeatureExtractor (vgg19, requires_grad=False), weights from a torchvision file."""

    def __init__(self, layer_name_list, path, use_input_norm=True, range_norm=False, remove_pooling=False,
                 pooling_stride=2):
        super().__init__()
        self.layer_name_list = layer_name_list
        self.use_input_norm, self.range_norm = use_input_norm, range_norm
        features = make_layers(CFG_E)
        sd = torch.load(path, map_location="cpu")
        features.load_state_dict({k[len("features."):]: v for k, v in sd.items() if k.startswith("features.")})
        max_idx = max(NAMES_VGG19.index(v) for v in layer_name_list)
        modified = OrderedDict()
        for k, v in zip(NAMES_VGG19, features[:max_idx + 1]):
            if "pool" in k:
                if remove_pooling:
                    continue
                modified[k] = nn.MaxPool2d(kernel_size=2, stride=pooling_stride)
            else:
                modified[k] = v
        self.vgg_net = nn.Sequential(modified).eval()
        for p in self.parameters():
            p.requires_grad = False

    def forward(self, x):
        if self.range_norm:
            x = (x + 1) / 2
        if self.use_input_norm:
            x = (x - MEAN) / STD
        out = {}
        for key, layer in self.vgg_net._modules.items():
            x = layer(x)
            if key in self.layer_name_list:
                out[key] = x.clone()
        return out


def basicsr_perceptual(vgg, layer_weights, x, gt, perceptual_weight, style_weight, criterion):
    """BasicSR's PerceptualLoss.forward."""
    def gram(f):
        n, c, h, w = f.size()
        f = f.view(n, c, w * h)
        return f.bmm(f.transpose(1, 2)) / (c * h * w)

    crit = {"l1": torch.nn.L1Loss(), "l2": torch.nn.MSELoss(), "fro": None}[criterion]
    xf, gf = vgg(x), vgg(gt.detach())
    percep = style = None
    if perceptual_weight > 0:
        percep = 0
        for k in xf:
            d = torch.norm(xf[k] - gf[k], p="fro") if criterion == "fro" else crit(xf[k], gf[k])
            percep += d * layer_weights[k]
        percep *= perceptual_weight
    if style_weight > 0:
        style = 0
        for k in xf:
            gx, gg = gram(xf[k]), gram(gf[k])
            d = torch.norm(gx - gg, p="fro") if criterion == "fro" else crit(gx, gg)
            style += d * layer_weights[k]
        style *= style_weight
    return percep, style


@pytest.fixture(scope="module")
def vgg19_file(tmp_path_factory):
    """A random torchvision-format VGG19 state dict (features.*, 80 MB) and its SHA-256."""
    torch.manual_seed(5)
    sd = {f"features.{k}": v for k, v in make_layers(CFG_E).state_dict().items()}
    path = tmp_path_factory.mktemp("vgg") / "vgg19-random.pth"
    torch.save(sd, path)
    return str(path), hashlib.sha256(path.read_bytes()).hexdigest()


CASES = [  # layer_weights, perceptual_weight, style_weight, criterion, use_input_norm, range_norm
    ({"conv5_4": 1.0}, 1.0, 0.0, "l1", True, False),  # ESRGAN / Real-ESRGAN's perceptual term
    ({"conv1_2": 0.1, "conv2_2": 0.1, "conv3_4": 1.0, "conv4_4": 1.0, "conv5_4": 1.0}, 1.0, 0.5, "l1", True, False),
    ({"relu2_2": 1.0, "relu4_4": 0.5}, 0.7, 2.0, "l2", False, True),
    ({"conv3_1": 1.0, "pool3": 0.3}, 1.0, 1.0, "fro", True, False),
]


@pytest.mark.parametrize("case", CASES, ids=["esrgan", "five_layers_style", "l2_range_norm", "fro"])
def test_perceptual_loss_matches_basicsr_on_a_random_vgg19(vgg19_file, case):
    path, _ = vgg19_file
    layer_weights, pw, sw, crit, norm, rnorm = case
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # not the published file: tested below
        ours = PerceptualLoss(layer_weights, "vgg19", norm, rnorm, pw, sw, crit, weights=path)
    ref = BasicSRVGG(list(layer_weights), path, norm, rnorm)
    torch.manual_seed(3)
    lo = -1.0 if rnorm else 0.0
    x = (torch.rand(2, 3, 35, 33) * (1 - lo) + lo).requires_grad_(True)
    gt = torch.rand(2, 3, 35, 33) * (1 - lo) + lo
    x2 = x.detach().clone().requires_grad_(True)
    p, s = ours(x, gt)
    rp, rs = basicsr_perceptual(ref, layer_weights, x2, gt, pw, sw, crit)
    total, rtotal = 0, 0
    for a, b in ((p, rp), (s, rs)):
        assert (a is None) == (b is None)
        if a is not None:
            assert torch.allclose(a, b, rtol=2e-5, atol=1e-7), (a.item(), b.item())
            total, rtotal = total + a, rtotal + b
    total.backward()
    rtotal.backward()
    assert torch.allclose(x.grad, x2.grad, rtol=1e-4, atol=1e-6 * x2.grad.abs().max().item())


def test_vgg_weights_found_as_the_other_backbones(vgg19_file, tmp_path, monkeypatch):
    path, sha = vgg19_file
    monkeypatch.setenv(W.ENV_DIR, str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    with pytest.raises(W.WeightsNotFoundError, match=r"vgg19-dcbb9e9d.pth.*fastiqa weights fetch vgg19"):
        PerceptualLoss({"conv5_4": 1.0})  # BasicSR's default VGG19: never downloaded silently
    with pytest.warns(UserWarning, match=rf"{sha}.*not torchvision's published vgg19"):
        ext = VGGFeatureExtractor(["relu1_1"], "vgg19", weights=path)
    assert ext(torch.rand(1, 3, 8, 8))["relu1_1"].shape == (1, 64, 8, 8)
    b = W.Backbone("vgg19", f"vgg19-{sha[:8]}.pth", "test")  # the stand-in as the published file
    monkeypatch.setitem(W.BACKBONES, "vgg19", b)
    (tmp_path / b.file).symlink_to(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = PerceptualLoss({"relu2_1": 1.0})
    assert loss.vgg.layer_names[:2] == ["conv1_1", "relu1_1"]
    with pytest.raises(ValueError, match=r"weights='.*vgg19-random.pth' is not a torchvision-format vgg16"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            VGGFeatureExtractor(["relu1_1"], "vgg16", weights=path)
    ext = VGGFeatureExtractor(["relu1_1", "relu2_1"], "vgg11", weights="random")
    out = ext(torch.rand(1, 3, 16, 16))
    assert set(out) == {"relu1_1", "relu2_1"} and out["relu2_1"].shape == (1, 128, 8, 8)
