"""The whole LPIPS (VGG16) and DISTS, backbone included, against the packages that define them
(lpips 0.1.4 `LPIPS(net="vgg")`, DISTS_pytorch 0.1 `DISTS`), the same randomly initialised VGG16
loaded into both (tests/_perceptual_peers.py), forward and forward+backward (gradient to pred),
8x3x256x256 float32 images. The backbone convolutions are the same torch ops on both sides, so
the difference is the heads, the input scaling and the framework around them; the issue's bar
is "no slower than the packages". The package is the ratio's baseline ("eager"), in the same run.

    PYTHONPATH=<folder with torchvision, lpips, DISTS_pytorch> pytest benchmarks/test_bench_perceptual_metrics.py
    FASTIQA_BENCH_SMOKE=1 ... --benchmark-disable      # 2x3x32x32, proves it runs

Skips (with the reason) when the packages or torchvision are absent (.ci/stage_peers.sh
installs them into a folder of their own). floor_bytes: the images read once (the backbone's
own traffic is not modelled).
"""
import os
import sys
import warnings

import pytest
import torch

import fastiqa.functional as F

from harness import SMOKE, run_case

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, "tests"))
from _perceptual_peers import dists_peer, lpips_peer, random_state_dict  # noqa: E402

SHAPE = (2, 3, 32, 32) if SMOKE else (8, 3, 256, 256)
_STATE = {}


def _backbone(tmp_path_factory):
    if "path" not in _STATE:
        sd = random_state_dict("vgg16", seed=3)
        path = tmp_path_factory.mktemp("bench_backbone") / "vgg16-random.pth"
        torch.save(sd, path)
        _STATE.update(path=str(path), sd=sd)
    return _STATE["path"], _STATE["sd"]


def _fn(metric, impl, tmp_path_factory):
    path, sd = _backbone(tmp_path_factory)
    if impl == "eager":
        peer = lpips_peer("vgg", sd) if metric == "lpips" else dists_peer(sd)
        if metric == "lpips":
            return lambda x, y: peer(x, y, normalize=True).reshape(-1)
        return lambda x, y: peer(x, y, require_grad=True, batch_average=False).reshape(-1)
    if metric == "lpips":
        return lambda x, y: F.lpips(x, y, reduction="none", net="vgg", backbone_weights=path)
    return lambda x, y: F.dists(x, y, reduction="none", backbone_weights=path)


@pytest.mark.parametrize("impl", ["eager", "fastiqa"])
@pytest.mark.parametrize("metric", ["lpips", "dists"])
@pytest.mark.parametrize("mode", ["fwd", "fwdbwd"])
def test_bench_metric(benchmark, tmp_path_factory, impl, metric, mode):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(SHAPE, generator=g)
    y = (x + 0.1 * torch.randn(SHAPE, generator=g)).clamp(0, 1)
    with warnings.catch_warnings():  # the random backbone is not the published file: warned once
        warnings.simplefilter("ignore", UserWarning)
        fn = _fn(metric, impl, tmp_path_factory)
        fn(x, y)  # builds and caches the networks outside the timing
    xg = x.clone().requires_grad_(True)

    def step():
        if mode == "fwd":
            with torch.no_grad():
                return fn(x, y)
        xg.grad = None
        v = fn(xg, y)
        v.sum().backward()
        return v

    step()
    benchmark.group = f"{metric}-vgg16-{mode} {'x'.join(map(str, SHAPE))} float32 cpu"
    run_case(benchmark, benchmark.group, impl, step, 4 * x.numel() * (2 if mode == "fwd" else 3), "cpu",
             rounds=1 if SMOKE else 5)
