"""fastiqa.functional.lpips / dists and fastiqa.nn.LPIPS / DISTS without the peer packages:
the heads against their formulas in float64 (gradcheck), the API conventions (reductions,
input ranges, dtypes, gradients as a loss) and bad input. Values against the lpips and
DISTS_pytorch packages: tests/test_lpips_peers.py."""
import warnings

import pytest
import torch
from _perceptual_peers import random_state_dict

import fastiqa.functional as F
import fastiqa.nn as FN
from fastiqa.functional import _backbones, _heads
from fastiqa.functional import _perceptual as P


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Random torchvision-format backbone files: {backbone: path}."""
    folder = tmp_path_factory.mktemp("backbones")
    out = {}
    for i, name in enumerate(("squeezenet1_1", "alexnet", "vgg16")):
        out[name] = str(folder / f"{name}.pth")
        torch.save(random_state_dict(name, seed=i), out[name])
    return out


def _q(fn, *a, **k):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a random file is not the published one
        return fn(*a, **k)


@pytest.fixture(scope="module")
def dists_module(files):
    return _q(FN.DISTS, reduction="none", backbone_weights=files["vgg16"])


def _feats(shapes, dtype=torch.float64, grad=True):
    return [torch.randn(s, dtype=dtype, requires_grad=grad) for s in shapes]


SHAPES = [(2, 3, 5, 7), (2, 4, 3, 3), (2, 2, 1, 2)]


def test_heads_gradcheck_float64():
    p, t = _feats(SHAPES), _feats(SHAPES)
    w = [torch.rand(s[1], dtype=torch.float64) for s in SHAPES]
    ab = [torch.rand(2, s[1], dtype=torch.float64) / 10 for s in SHAPES]
    n = len(SHAPES)
    assert torch.autograd.gradcheck(lambda *f: _heads.lpips_head(f[:n], f[n:], w), (*p, *t))
    pos = [f.detach().abs().requires_grad_(True) for f in p + t]  # DISTS features are post-ReLU
    assert torch.autograd.gradcheck(lambda *f: _heads.dists_head(f[:n], f[n:], ab), tuple(pos))


def test_heads_by_hand():
    f0 = torch.tensor([[[[3.0]], [[4.0]]]], dtype=torch.float64)  # (1, 2, 1, 1): unit (0.6, 0.8)
    f1 = torch.tensor([[[[0.0]], [[2.0]]]], dtype=torch.float64)  # unit (0, 1)
    w = [torch.tensor([1.0, 2.0], dtype=torch.float64)]
    expect = 1.0 * (0.6 - 0) ** 2 + 2.0 * (0.8 - 1) ** 2
    assert abs(_heads.lpips_head([f0], [f1], w).item() - expect) < 1e-9
    same = torch.rand(1, 3, 4, 4, dtype=torch.float64)
    ab = [torch.full((2, 3), 1 / 6, dtype=torch.float64)]  # sums to 1: identical images give 0
    assert abs(_heads.dists_head([same], [same], ab).item()) < 1e-12


def test_identical_images_give_zero(files, dists_module):
    x = torch.rand(2, 3, 33, 35)
    assert _q(F.lpips, x, x, net="squeeze", backbone_weights=files["squeezenet1_1"]).item() == 0
    assert dists_module(x, x).abs().max().item() < 1e-6


def test_reductions_ranges_and_dtypes(files):
    path = files["squeezenet1_1"]
    x, y = torch.rand(3, 3, 27, 30), torch.rand(3, 3, 27, 30)
    none = _q(F.lpips, x, y, "none", net="squeeze", backbone_weights=path)
    assert none.shape == (3,) and none.dtype == torch.float32 and (none > 0).all()
    assert torch.allclose(_q(F.lpips, x, y, net="squeeze", backbone_weights=path), none.mean())
    assert torch.allclose(_q(F.lpips, x, y, "sum", net="squeeze", backbone_weights=path), none.sum())
    m11 = _q(F.lpips, 2 * x - 1, 2 * y - 1, "none", net="squeeze", input_range=(-1, 1), backbone_weights=path)
    assert torch.allclose(m11, none, rtol=1e-5, atol=1e-7)
    d64 = _q(F.lpips, x.double(), y.double(), "none", net="squeeze", backbone_weights=path)
    assert d64.dtype == torch.float64 and torch.allclose(d64.float(), none, rtol=1e-4)
    h = _q(F.lpips, x.half(), y.half(), "none", net="squeeze", backbone_weights=path)
    assert h.dtype == torch.float32 and torch.allclose(h, none, rtol=1e-2)


def test_dists_input_range(dists_module):
    x, y = torch.rand(1, 3, 20, 21), torch.rand(1, 3, 20, 21)
    a = dists_module(x, y)
    b = P.dists_with(dists_module.net, 2 * x - 1, 2 * y - 1, "none", (-1, 1))  # the same network
    assert torch.allclose(b, a, rtol=1e-5, atol=1e-7)


def test_modules_as_losses(files):
    loss = _q(FN.LPIPS, "alex", backbone_weights=files["alexnet"])
    assert all(not p.requires_grad for p in loss.parameters())
    x = torch.rand(2, 3, 40, 41, requires_grad=True)
    y = torch.rand(2, 3, 40, 41)
    v = loss(x, y)
    v.backward()
    assert v.dim() == 0 and x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in loss.parameters())
    y.requires_grad_(True)
    loss(x, y).backward()
    assert y.grad is not None and y.grad.abs().sum() > 0
    w = loss.weights_info
    assert w.path == files["alexnet"] and w.source == "argument" and not w.published and len(w.sha256) == 64
    assert w.sha256[:12] in repr(loss)
    d = loss.double()
    assert d(x.double(), y.double()).dtype == torch.float64


def test_target_without_grad_builds_no_graph(files):
    net = _q(P.LPIPSNet, "squeeze", files["squeezenet1_1"])
    x = torch.rand(1, 3, 25, 25, requires_grad=True)
    f0, f1 = net._both(x, torch.rand(1, 3, 25, 25))
    assert f0[0].requires_grad and not f1[0].requires_grad


def test_functional_caches_the_network(files):
    path = files["squeezenet1_1"]
    x = torch.rand(1, 3, 25, 25)
    _q(F.lpips, x, x, net="squeeze", backbone_weights=path)
    a = _q(P.cached_net, "lpips", torch.device("cpu"), torch.float32, path, net="squeeze")
    b = _q(P.cached_net, "lpips", torch.device("cpu"), torch.float32, path, net="squeeze")
    c = _q(P.cached_net, "lpips", torch.device("cpu"), torch.float64, path, net="squeeze")
    assert a is b and c is not a and c.w0.dtype == torch.float64 and a.w0.dtype == torch.float32


def test_min_sizes_match_the_layers():
    assert F.LPIPS_MIN_SIDE == {"alex": 31, "squeeze": 17, "vgg": 16}
    for net, side in F.LPIPS_MIN_SIDE.items():
        name, taps = P.LPIPS_NETS[net]
        layers = _backbones.features(name)
        assert P.min_side(layers, taps) == side
        with torch.no_grad():  # the side below fails in torch, the side itself runs
            Taps = _backbones.Taps(layers, taps)
            assert Taps(torch.zeros(1, 3, side, side))[-1].shape[-1] >= 1
            with pytest.raises(RuntimeError):
                Taps(torch.zeros(1, 3, side - 1, side - 1))


def test_bad_input_names_the_argument(files, dists_module):
    path = files["squeezenet1_1"]
    x = torch.rand(1, 3, 30, 30)

    def lp(a, b, *args, **kw):
        kw.setdefault("net", "squeeze")
        return _q(F.lpips, a, b, *args, backbone_weights=path, **kw)

    with pytest.raises(ValueError, match="net must be one of"):
        lp(x, x, net="resnet")
    for fn in (F.lpips, F.dists):  # arguments before the weights: no file is looked for
        with pytest.raises(ValueError, match="reduction must be one of"):
            fn(x, x, "max", backbone_weights="/no/such/file.pth")
        with pytest.raises(ValueError, match="input_range must be"):
            fn(x, x, input_range=(0, 255), backbone_weights="/no/such/file.pth")
    with pytest.raises(ValueError, match="reduction must be one of"):
        lp(x, x, "max")
    with pytest.raises(ValueError, match=r"input_range must be \(0, 1\).*got \(0, 255\)"):
        lp(x, x, input_range=(0, 255))
    with pytest.raises(ValueError, match=r"RGB image batches \(N, 3, H, W\), got shape \(1, 1, 30, 30\)"):
        lp(x[:, :1], x[:, :1])
    with pytest.raises(ValueError, match=r"RGB image batches.*got shape \(3, 30, 30\)"):
        lp(x[0], x[0])
    with pytest.raises(ValueError, match="pred and target must have the same shape"):
        lp(x, x[..., :29])
    with pytest.raises(ValueError, match=r"at least 17x17 pixels, got pred and target of 16x30"):
        lp(x[..., :16], x[..., :16])
    with pytest.raises(TypeError, match="pred must be a floating-point tensor"):
        lp((x * 255).byte(), x)
    with pytest.raises(TypeError, match="target must be a torch.Tensor"):
        lp(x, x.numpy())
    with pytest.raises(ValueError, match="reduction must be one of"):
        _q(FN.LPIPS, "squeeze", "max", backbone_weights=path)
    with pytest.raises(ValueError, match="not a torchvision-format alexnet state dict"):
        _q(FN.LPIPS, "alex", backbone_weights=path)  # a squeezenet file for AlexNet
    with pytest.raises(ValueError, match=r"RGB image batches"):
        dists_module(x[:, :2], x[:, :2])
