"""Each op's signature is written once (fastiqa/_kernel_schemas.py); every entry point that
implements it must agree with it.

Types of the C++ kernels are checked by the dispatcher itself when fastiqa/_ext.py
defines the schemas (a mismatch raises at import; test_cpp_types_checked_by_dispatcher
shows that it does). Argument names are checked here, by reading the entry points:
the CPU kernels (csrc/cpu/register.cpp: an entry of the table every ISA variant fills,
csrc/cpu/kernel_tables.h, or a function defined there), the CUDA hosts
(csrc/cuda/<family>_host.cpp), the reference and Triton backends (fastiqa/backends/) and
the fake kernels (fastiqa/ops/<family>.py); every overload carries the fake kernel and,
for the forward ops, the autograd formula."""
import importlib
import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fastiqa import _ext, _kernel_schemas
from fastiqa.backends import reference

ROOT = Path(__file__).resolve().parents[1]
OPS = [name for name in _kernel_schemas.SCHEMAS if name != "release_cpu_buffers"]


def _param_names(params: str) -> list:
    """Names of a C++ parameter list: the last identifier of each parameter."""
    params = re.sub(r"<[^<>]*>", "", re.sub(r"<[^<>]*>", "", params))  # drop template arguments
    return [re.findall(r"\w+", p)[-1] for p in params.split(",") if p.strip()]


def _definition(text: str, fn: str, where: str) -> list:
    """Argument names of the C++ function `fn` defined in `text`."""
    m = re.search(rf"\b{fn}\(\s*(const at::Tensor&.*?)\)\s*\{{", text, re.S)
    assert m, f"{where}: no definition of {fn} found"
    return _param_names(m.group(1))


def _cpu_table():
    """op name -> argument names of what csrc/cpu/register.cpp registers for it: an entry of
    csrc/cpu/kernel_tables.h or a function of register.cpp."""
    tables = (ROOT / "csrc/cpu/kernel_tables.h").read_text()
    fields = {}
    for struct, body in re.findall(r"struct (\w+) \{(.*?)\n\};", tables, re.S):
        for field, params in re.findall(r"\(\*(\w+)\)\((.*?)\);", body, re.S):
            fields[(struct, field)] = _param_names(params)
    register = (ROOT / "csrc/cpu/register.cpp").read_text()
    out = {op: fields[(struct, field)]
           for op, struct, field in re.findall(r'm\.impl\("(\w+)", FASTIQA_CPU_OP\((\w+), \w+, (\w+)\)\)', register)}
    for op, fn in re.findall(r'm\.impl\("(\w+)", &(\w+)\)', register):
        out[op] = _definition(register, fn, "register.cpp")
    return out


def _cuda_hosts():
    """op name -> argument names of the function csrc/cuda/*_host.cpp registers for it."""
    out = {}
    for path in sorted((ROOT / "csrc/cuda").glob("*_host.cpp")):
        text = path.read_text()
        for op, fn in re.findall(r'm\.impl\("(\w+)", &[\w:]*::(\w+)\)', text):
            out[op] = _definition(text, fn, path.name)
    return out


def test_schemas_parse_and_are_registered():
    for name in _kernel_schemas.SCHEMAS:
        packet = getattr(torch.ops.fastiqa_C, name)
        overloads = ["default"]
        if name in _kernel_schemas.WITH_PYTHON_BACKENDS:
            overloads += list(_kernel_schemas.PYTHON_BACKENDS)
        assert sorted(packet.overloads()) == sorted(overloads), name
        for overload in overloads:
            schema = getattr(packet, overload)._schema
            assert [a.name for a in schema.arguments] == _kernel_schemas.argument_names(name), (name, overload)


@pytest.mark.parametrize("op", _kernel_schemas.WITH_PYTHON_BACKENDS)
def test_fakes_and_autograd_on_every_overload(op):
    """The fake kernel's argument names are the schema's; every overload has the fake kernel, a
    kernel for CPU and CUDA tensors (compiled or Python) and, for forward ops, the autograd formula."""
    import fastiqa.ops  # noqa: F401  (registers the families)
    from fastiqa.ops import _registry

    assert list(inspect.signature(_registry.FAKES[op]).parameters) == _kernel_schemas.argument_names(op)
    has_autograd = op in _registry.AUTOGRAD
    for overload in _registry.OVERLOADS:
        qualname = f"fastiqa_C::{op}" + ("" if overload == "default" else f".{overload}")
        assert torch._library.simple_registry.singleton.find(qualname).fake_impl.kernel is not None, qualname
        for key in ("CPU", "CUDA") if overload == "default" else ("CompositeExplicitAutograd",):
            assert torch._C._dispatch_has_kernel_for_dispatch_key(qualname, key), (qualname, key)
        assert torch._C._dispatch_has_kernel_for_dispatch_key(qualname, "Autograd") == has_autograd, qualname


def test_cpu_kernel_table_names_match_schemas():
    table = _cpu_table()
    assert set(table) == set(OPS) - {"release_cpu_buffers"} - set(_kernel_schemas.PYTHON_ONLY), \
        "register.cpp must register every CPU kernel (but PYTHON_ONLY's)"
    for op, names in table.items():
        assert names == _kernel_schemas.argument_names(op), f"csrc/cpu/kernel_tables.h entry of {op}"


def test_cuda_host_names_match_schemas():
    hosts = _cuda_hosts()
    assert hosts, "no CUDA host registrations found"
    for op, names in hosts.items():
        assert names == _kernel_schemas.argument_names(op), f"CUDA host of {op}"


@pytest.mark.parametrize("op", OPS)
def test_python_backend_names_match_schemas(op):
    expected = _kernel_schemas.argument_names(op)
    checked = 0
    backends = [reference]
    try:
        backends += [importlib.import_module(f"fastiqa.backends.triton.{m}") for m in ("pixel", "ssim", "psnr", "gram",
                                                                                              "perceptual",
                                                                                              "ssim_masked")]
    except ImportError:  # triton absent: the reference alone
        pass
    for module in backends:
        fn = getattr(module, op, None)
        if fn is None:
            continue
        assert list(inspect.signature(fn).parameters) == expected, f"{module.__name__}.{op}"
        checked += 1
    if op not in ("ssim_y", "y_mse"):  # CPU-only evaluation kernels: no Python twin
        assert checked, f"no Python backend implements {op}"


@pytest.mark.skipif(not _ext.LOADED, reason="compiled kernels not built")
def test_cpp_types_checked_by_dispatcher():
    """A schema whose types disagree with the registered C++ kernel is refused at import."""
    source = str(ROOT / "fastiqa/_kernel_schemas.py")
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('fastiqa._kernel_schemas', {source!r})\n"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
        "m.SCHEMAS['gram_fwd'] = '(Tensor feat, int scale) -> Tensor'\n"  # the C++ kernel takes a float
        "sys.modules['fastiqa._kernel_schemas'] = m\n"
        "import fastiqa\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode != 0, "a schema disagreeing with the C++ kernel was accepted"
    assert "gram_fwd" in r.stderr and "schema" in r.stderr.lower(), r.stderr[-2000:]
