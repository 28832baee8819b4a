"""LPIPS and DISTS against the packages that define them, with identical backbone weights.

No ImageNet weights on the test machine: the same randomly initialised backbone (a
torchvision-format state dict file) goes into fastiqa (backbone_weights=PATH) and into
torchvision's model inside `lpips` 0.1.4 / DISTS_pytorch 0.1 (tests/_perceptual_peers.py,
which also makes torchvision importable under a CPU torch). The heads are the published
ones on both sides (the files fastiqa ships and the packages' own). Values and gradients
(to pred and to target) must agree to float32 noise, on odd sizes and batch 1.
Skips when the packages are absent; .ci/stage_peers.sh installs them and allows no skip.
"""
import warnings

import pytest
import torch
from _perceptual_peers import dists_peer, import_peer, lpips_peer, random_state_dict

import fastiqa.functional as F
import fastiqa.nn as FN
from fastiqa import weights as W

BACKBONE = {"alex": "alexnet", "squeeze": "squeezenet1_1", "vgg": "vgg16"}


@pytest.fixture(scope="module")
def backbones(tmp_path_factory):
    """{backbone: (path, state dict)}: random torchvision-format files, written once."""
    out = {}
    folder = tmp_path_factory.mktemp("backbones")
    for i, name in enumerate(("alexnet", "squeezenet1_1", "vgg16")):
        sd = random_state_dict(name, seed=10 + i)
        path = folder / f"{name}-random.pth"
        torch.save(sd, path)
        out[name] = (str(path), sd)
    return out


_PEERS = {}


def _peer(kind, backbones):
    """The peer model of kind ('alex', 'squeeze', 'vgg' or 'dists'), built once per module
    (building torchvision's model, classifier included, is most of a case's time)."""
    if kind not in _PEERS:
        sd = backbones["vgg16" if kind == "dists" else BACKBONE[kind]][1]
        _PEERS[kind] = dists_peer(sd) if kind == "dists" else lpips_peer(kind, sd)
    return _PEERS[kind]


def _quiet(fn, *a, **k):
    with warnings.catch_warnings():  # the random file is not the published one: warned, tested elsewhere
        warnings.simplefilter("ignore", UserWarning)
        return fn(*a, **k)


def _pair(shape, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g)
    return x, (x + 0.2 * torch.randn(shape, generator=g)).clamp(0, 1)


def _close(ours, theirs, what):
    scale = theirs.abs().max().item()
    err = (ours - theirs).abs().max().item()
    assert err <= 1e-5 * scale + 1e-7, f"{what}: max |diff| {err:.3g} (scale {scale:.3g})"


# (net, shape): odd sizes, batch 1, each net at its smallest accepted size and above
LPIPS_CASES = [("alex", (1, 3, 31, 31)), ("alex", (2, 3, 47, 64)), ("squeeze", (1, 3, 17, 33)),
               ("squeeze", (3, 3, 40, 29)), ("vgg", (1, 3, 16, 16)), ("vgg", (2, 3, 23, 37))]


@pytest.mark.parametrize("net,shape", LPIPS_CASES, ids=[f"{n}-{'x'.join(map(str, s))}" for n, s in LPIPS_CASES])
def test_lpips_matches_the_lpips_package(backbones, net, shape):
    path, _ = backbones[BACKBONE[net]]
    peer = _peer(net, backbones)
    x, y = _pair(shape, sum(shape))
    for range_ in ((0, 1), (-1, 1)):
        a = x.clone().requires_grad_(True)
        b = y.clone().requires_grad_(True)
        if range_ == (-1, 1):
            a0, b0 = (2 * x - 1).requires_grad_(True), (2 * y - 1).requires_grad_(True)
            ours = _quiet(F.lpips, a0, b0, "none", net=net, input_range=(-1, 1), backbone_weights=path)
            theirs = peer(a, b, normalize=True).reshape(-1)
            g_ours = torch.autograd.grad(ours.sum(), (a0, b0))
            g_ours = tuple(2 * g for g in g_ours)  # d/dx of f(2x - 1)
        else:
            ours = _quiet(F.lpips, a, b, "none", net=net, backbone_weights=path)
            g_ours = torch.autograd.grad(ours.sum(), (a, b))
            theirs = peer(a, b, normalize=True).reshape(-1)
        g_theirs = torch.autograd.grad(theirs.sum(), (a, b))
        assert ours.shape == (shape[0],) and ours.dtype == torch.float32
        _close(ours, theirs, f"lpips {net} {range_} value")
        _close(g_ours[0], g_theirs[0], f"lpips {net} {range_} grad pred")
        _close(g_ours[1], g_theirs[1], f"lpips {net} {range_} grad target")


DISTS_CASES = [(1, 3, 32, 32), (2, 3, 37, 45), (1, 3, 9, 13)]


@pytest.mark.parametrize("shape", DISTS_CASES, ids=["x".join(map(str, s)) for s in DISTS_CASES])
def test_dists_matches_dists_pytorch(backbones, shape):
    path, _ = backbones["vgg16"]
    peer = _peer("dists", backbones)
    x, y = _pair(shape, sum(shape))
    a, b = x.clone().requires_grad_(True), y.clone().requires_grad_(True)
    if "module" not in _PEERS:
        _PEERS["module"] = _quiet(FN.DISTS, reduction="none", backbone_weights=path)
    module = _PEERS["module"]
    ours = module(a, b)
    theirs = peer(a, b, require_grad=True).reshape(-1)
    _close(ours, theirs, "dists value")
    for go, gt, what in zip(torch.autograd.grad(ours.sum(), (a, b)), torch.autograd.grad(theirs.sum(), (a, b)),
                            ("pred", "target")):
        _close(go, gt, f"dists grad {what}")
    fn = _quiet(F.dists, x, y, "none", backbone_weights=path)
    _close(fn, theirs.detach(), "dists functional value")


def test_shipped_heads_are_the_packages_files():
    import os

    lp = import_peer("lpips")
    ds = import_peer("DISTS_pytorch.DISTS_pt")
    data = os.path.join(os.path.dirname(W.__file__), "data")
    for net in ("alex", "vgg", "squeeze"):
        theirs = os.path.join(os.path.dirname(lp.__file__), "weights", "v0.1", f"{net}.pth")
        assert W.sha256(theirs) == W.sha256(os.path.join(data, f"lpips_v0.1_{net}.pth"))
    theirs = os.path.join(os.path.dirname(ds.__file__), "weights.pt")
    assert W.sha256(theirs) == W.sha256(os.path.join(data, "dists_alpha_beta.pt"))


@pytest.mark.slow
@pytest.mark.parametrize("net", ["alex", "vgg", "squeeze"])
def test_lpips_full_size(backbones, net):
    path, _ = backbones[BACKBONE[net]]
    peer = _peer(net, backbones)
    x, y = _pair((2, 3, 256, 256), 7)
    _close(_quiet(F.lpips, x, y, "none", net=net, backbone_weights=path), peer(x, y, normalize=True).reshape(-1)
           .detach(), f"lpips {net} 256x256")


@pytest.mark.slow
def test_dists_full_size(backbones):
    path, _ = backbones["vgg16"]
    x, y = _pair((2, 3, 256, 256), 8)
    _close(_quiet(F.dists, x, y, "none", backbone_weights=path), _peer("dists", backbones)(x, y).reshape(-1),
           "dists 256x256")
