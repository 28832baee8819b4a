"""Helpers shared by the test modules (import as `from support import ...`;
pytest puts tests/ on sys.path). conftest.py only sets the environment up."""
import csv
import itertools

import pytest
import torch

from fastiqa import _ext
from fastiqa.info import FAMILIES
from fastiqa.ops import _dispatch


def backend_devices(family: str):
    """(backend, device) pairs that can run op `family` here: reference, the CPU
    kernels and Triton (interpreted) on CPU tensors; on a GPU machine also the
    reference, the CUDA kernels and Triton on CUDA tensors."""
    kernel = FAMILIES[family]
    pairs = [("reference", "cpu")]
    if _ext.has_kernel(kernel, "CPU"):
        pairs.append(("cpu", "cpu"))
    if _dispatch.triton_installed() and _dispatch.triton_interpreted():
        pairs.append(("triton", "cpu"))
    if torch.cuda.is_available():
        pairs.append(("reference", "cuda"))
        if _ext.has_kernel(kernel, "CUDA"):
            pairs.append(("cuda", "cuda"))
        if _dispatch.triton_installed():
            pairs.append(("triton", "cuda"))
    return pairs


def cpu_backends(family: str):
    """The backends that run op `family` on CPU tensors here."""
    return [b for b, d in backend_devices(family) if d == "cpu"]


# the backends that run every family on CPU tensors here: for suites that cover all families
BACKENDS = [b for b in cpu_backends("pixel") if all(b in cpu_backends(f) for f in FAMILIES)]


def overload(op: str, backend: str):
    """The overload of fastiqa_C::<op> that `backend` runs (the compiled kernels: the default)."""
    packet = getattr(torch.ops.fastiqa_C, op)
    return packet.default if backend in ("cpu", "cuda") else getattr(packet, backend)


def ids(pairs):
    return [f"{b}-{d}" for b, d in pairs]


def tol(dtype):
    """(rtol, atol) against the float64 reference (fastiqa/testing.py states the rule)."""
    if dtype in (torch.float16, torch.bfloat16):
        return 1e-2, 1e-2
    if dtype == torch.float32:
        return 1e-5, 1e-6
    return 1e-10, 1e-12


def param_cases(*axes, slow=lambda *values: False):
    """The product of parametrize axes as pytest.params, one test id per case, marked
    slow where slow(*values) holds (deselected by default, `pytest -m slow` runs them).
    Each axis is a list of (id, value) pairs; a value that is a tuple is unpacked."""
    params = []
    for combo in itertools.product(*axes):
        values = []
        for _, v in combo:
            values.extend(v if isinstance(v, tuple) else (v,))
        marks = [pytest.mark.slow] if slow(*values) else []
        params.append(pytest.param(*values, id="-".join(i for i, _ in combo), marks=marks))
    return params


def named(values, name=str):
    """[(id, value)] for an axis of param_cases()."""
    return [(name(v), v) for v in values]


def run_eval_cli(capsys, *argv):
    """`fastiqa eval --no-progress ARGV` in-process: (exit code, stdout, stderr); never a traceback."""
    from fastiqa import cli  # the app layer, imported only by the eval tests

    rc = cli.main(["eval", "--no-progress", *map(str, argv)])
    out = capsys.readouterr()
    assert "Traceback" not in out.err and "Traceback" not in out.out
    return rc, out.out, out.err


def read_csv(path):
    """The rows of a CSV the eval wrote (UTF-8, header first) as dicts."""
    with open(path, encoding="utf-8") as f:
        return list(csv.DictReader(f))
