"""Bad input to the pixel losses: clear errors naming the argument."""
import os
import subprocess
import sys

import pytest
import torch

import fastiqa.functional as F
from fastiqa.compat import basicsr


def pair(shape=(2, 3, 8, 8)):
    return torch.rand(shape), torch.rand(shape)


def test_shape_mismatch():
    with pytest.raises(ValueError, match="pred and target must have the same shape"):
        F.l1_loss(torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 9))


@pytest.mark.parametrize("dtype", [torch.int64, torch.uint8, torch.bool, torch.complex64])
def test_non_float(dtype):
    p, t = pair()
    with pytest.raises(TypeError, match="pred must be a floating-point tensor"):
        F.mse_loss(p.to(dtype), t)
    with pytest.raises(TypeError, match="target must be a floating-point tensor"):
        F.mse_loss(p, t.to(dtype))


def test_not_a_tensor():
    with pytest.raises(TypeError, match="pred must be a torch.Tensor"):
        F.l1_loss([1.0], torch.rand(1))


def test_weight_errors():
    p, t = pair()
    with pytest.raises(ValueError, match="weight of shape"):
        F.l1_loss(p, t, torch.rand(2, 2, 8, 8))
    with pytest.raises(TypeError, match="weight must be a floating-point tensor"):
        F.l1_loss(p, t, torch.ones(2, 1, 8, 8, dtype=torch.int32))
    with pytest.raises(ValueError, match="weight must be on the input's device"):
        F.l1_loss(p, t, torch.ones(2, 1, 8, 8, device="meta"))


@pytest.mark.parametrize("eps", [0.0, -1e-3, float("nan"), float("inf")])
def test_bad_eps(eps):
    p, t = pair()
    with pytest.raises(ValueError, match="eps must be a finite number > 0"):
        F.charbonnier_loss(p, t, eps=eps)


def test_unknown_reduction():
    p, t = pair()
    with pytest.raises(ValueError, match="reduction must be one of"):
        F.l1_loss(p, t, reduction="avg")
    with pytest.raises(ValueError, match="Unsupported reduction mode"):
        basicsr.L1Loss(reduction="weighted_mean")


def test_devices_differ():
    p, _ = pair()
    with pytest.raises(ValueError, match="same device"):
        F.l1_loss(p, torch.rand(2, 3, 8, 8, device="meta"))


def test_backend_forcing(monkeypatch):
    p, t = pair()
    with pytest.raises(ValueError, match="backend must be one of"):
        F.l1_loss(p, t, backend="gpu")
    with pytest.raises(RuntimeError, match="backend 'cuda' is unavailable"):
        F.l1_loss(p, t, backend="cuda")
    monkeypatch.setenv("FASTIQA_BACKEND", "magic")
    with pytest.raises(ValueError, match="FASTIQA_BACKEND must be one of"):
        F.l1_loss(p, t)
    monkeypatch.setenv("FASTIQA_BACKEND", "reference")
    torch.testing.assert_close(F.l1_loss(p, t), (p - t).abs().mean())


def test_triton_on_cpu_needs_interpreter(monkeypatch):
    pytest.importorskip("triton", reason="triton not installed")
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    p, t = pair()
    with pytest.raises(RuntimeError, match="TRITON_INTERPRET=1"):
        F.l1_loss(p, t, backend="triton")


def test_import_without_compiled_kernels():
    """Hide fastiqa._C from the import system: fastiqa still works, on the reference backend."""
    code = (
        "import sys, warnings, importlib.abc\n"
        "class Hide(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name == 'fastiqa._C': raise ImportError('hidden by the test')\n"
        "sys.meta_path.insert(0, Hide())\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        "    import fastiqa, torch\n"
        "assert any('compiled kernels unavailable' in str(x.message) for x in w), [str(x.message) for x in w]\n"
        "import fastiqa.functional as F\n"
        "p = torch.rand(2, 3, 4, 4, requires_grad=True); t = torch.rand(2, 3, 4, 4)\n"
        "l = F.charbonnier_loss(p, t); l.backward()\n"
        "assert torch.allclose(l, torch.sqrt((p - t) ** 2 + 1e-6).mean())\n"
        "r = fastiqa.info()\n"
        "assert r['extension_loaded'] is False and r['families']['pixel']['on_cpu_tensors'] == 'reference'\n"
        "print('ok')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "FASTIQA_BACKEND"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("ok")
