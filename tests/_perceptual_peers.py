"""The lpips and DISTS_pytorch packages as test oracles, with a given (random) backbone.

Both import torchvision, whose PyPI wheels are CUDA builds: under a CPU torch its compiled
ops do not load and `import torchvision` fails in torchvision/_meta_registrations.py
("operator torchvision::nms does not exist": it registers fake kernels for nms and qnms,
the only two it registers without checking that the ops loaded). `import_torchvision`
defines those two op names with torch.library (schemas only, no kernel) and imports again;
the models, all that lpips and DISTS_pytorch use, are plain Python. .ci/stage_peers.sh
installs the three packages (--no-deps, into a folder of their own) so that nothing here
skips in CI.
"""
import importlib
import sys
import types

import pytest
import torch

_SHIM_OPS = ("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
             "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
_LIB = []  # the torch.library fragment stays alive (its definitions die with it)


def _purge(prefix):
    for name in [m for m in sys.modules if m == prefix or m.startswith(prefix + ".")]:
        del sys.modules[name]


def import_torchvision():
    """torchvision, importable under a CPU torch (see the module doc); pytest.skip when absent."""
    try:
        return importlib.import_module("torchvision")
    except ImportError as exc:
        pytest.skip(f"torchvision is not installed ({exc}); .ci/stage_peers.sh installs it")
    except RuntimeError as exc:
        if "torchvision::" not in str(exc):
            raise
    _purge("torchvision")
    if not _LIB:
        lib = torch.library.Library("torchvision", "FRAGMENT")
        for schema in _SHIM_OPS:
            if not hasattr(torch.ops.torchvision, schema.split("(")[0]):
                lib.define(schema)
        _LIB.append(lib)
    return importlib.import_module("torchvision")


def import_peer(name):
    """lpips or DISTS_pytorch.DISTS_pt (torchvision made importable first), or pytest.skip."""
    try:
        importlib.import_module(name.split(".")[0])
    except ImportError as exc:
        if "torchvision" not in str(exc) and getattr(exc, "name", "") != "torchvision":
            pytest.skip(f"{name} is not installed ({exc}); .ci/stage_peers.sh installs it")
    except RuntimeError as exc:
        if "torchvision::" not in str(exc):
            raise
    import_torchvision()
    _purge(name.split(".")[0])
    return importlib.import_module(name)


def torchvision_model(name, state_dict):
    """torchvision.models.<name>(weights=None) with the `features.*` entries of state_dict loaded."""
    tv = import_torchvision()
    model = getattr(tv.models, name)(weights=None)
    missing, unexpected = model.load_state_dict(state_dict, strict=False)
    assert not unexpected and all(k.startswith("classifier.") for k in missing), (missing, unexpected)
    return model


def lpips_peer(net, state_dict):
    """lpips.LPIPS(net=net) (v0.1, the package's linear layers) on the given backbone."""
    lp = import_peer("lpips")
    backbone = {"alex": "alexnet", "vgg": "vgg16", "squeeze": "squeezenet1_1"}[net]
    model = torchvision_model(backbone, state_dict)
    fake_tv = types.SimpleNamespace(**{backbone: lambda **kw: model})
    pn = sys.modules["lpips.pretrained_networks"]
    real, pn.tv = pn.tv, fake_tv
    try:
        m = lp.LPIPS(net=net, version="0.1", verbose=False)
    finally:
        pn.tv = real
    return m.eval()


def dists_peer(state_dict):
    """DISTS_pytorch's DISTS on the given VGG16, alpha/beta from the package's weights.pt."""
    import os

    mod = import_peer("DISTS_pytorch.DISTS_pt")
    model = torchvision_model("vgg16", state_dict)
    real = mod.models
    mod.models = types.SimpleNamespace(vgg16=lambda **kw: model)
    try:
        m = mod.DISTS(load_weights=False)
    finally:
        mod.models = real
    ab = torch.load(os.path.join(os.path.dirname(mod.__file__), "weights.pt"), map_location="cpu")
    m.alpha.data, m.beta.data = ab["alpha"], ab["beta"]
    return m.eval()


def random_state_dict(name, seed=0):
    """A torchvision-format state dict (features.* only) of backbone `name`, randomly
    initialised by torch.nn's default init with a fixed seed (fastiqa's layer shapes)."""
    from fastiqa.functional import _backbones

    torch.manual_seed(seed)
    feats = _backbones.features(name)
    return {f"features.{k}": v for k, v in feats.state_dict().items()}
