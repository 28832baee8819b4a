"""The layer rules of the README's architecture section, checked on the source: no
module imports a layer above it, and `import fastiqa` stays light."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest
import torch

PACKAGE = Path(__file__).resolve().parents[1] / "fastiqa"

# layer of each module (dotted name under fastiqa, longest prefix wins), bottom first
LAYERS = {
    "base": ["_codes", "conventions", "_checks", "_ext", "_C", "_kernel_schemas", "_imageio", "testing", "_version",
             "cpu_isa", "_timing", "weights"],
    "backends": ["backends"],
    "ops": ["ops"],
    "functional": ["functional"],
    "modules": ["nn", "compat", "metrics", "meters", "evaluation"],
    "app": ["cli", "__main__", "demo", "eval_demo", "info", "selftest", "human", "cpu_tune"],
}
ORDER = list(LAYERS)
# what each layer may import besides its own layer (the layer diagram: data flows down,
# and functional never imports a backend: it goes through the op)
ALLOWED = {
    "base": {"base"},
    "backends": {"base"},
    "ops": {"base", "backends"},
    "functional": {"base", "ops"},
    "modules": {"base", "ops", "functional"},
    "app": set(ORDER),
}
# within the modules layer: compat builds on nn, never the other way
FORBIDDEN_WITHIN = {("nn", "compat")}


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join(parts)


def _layer(name: str):
    best, best_len = None, -1
    for layer, prefixes in LAYERS.items():
        for p in prefixes:
            if (name == p or name.startswith(p + ".")) and len(p) > best_len:
                best, best_len = layer, len(p)
    return best


def _imports(path: Path, name: str):
    """fastiqa-internal modules imported by the file at `path` (module `name`)."""
    tree = ast.parse(path.read_text())
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
                targets = [mod] if node.module else [".".join(base + [a.name]) for a in node.names]
            elif node.module and node.module.startswith("fastiqa"):
                targets = [node.module[len("fastiqa.") :]] if node.module != "fastiqa" else [a.name for a in node.names]
            else:
                continue
            out += [(t, node.lineno) for t in targets if t]
        elif isinstance(node, ast.Import):
            out += [(a.name[len("fastiqa.") :], node.lineno) for a in node.names if a.name.startswith("fastiqa.")]
    return out


SOURCES = sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or p.parent != PACKAGE)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_a_layer_above_it(path):
    name = _module_name(path)
    layer = _layer(name)
    assert layer is not None, f"{name} belongs to no layer: add it to LAYERS in {__file__}"
    for target, line in _imports(path, name):
        tlayer = _layer(target)
        assert tlayer is not None, f"{name}:{line} imports {target}, which belongs to no layer"
        if tlayer == layer:
            assert (name.split(".")[0], target.split(".")[0]) not in FORBIDDEN_WITHIN, (
                f"{name}:{line} imports {target} ({name.split('.')[0]} must not import {target.split('.')[0]})"
            )
            continue
        assert tlayer in ALLOWED[layer], f"{name} ({layer}):{line} imports {target} ({tlayer})"


def _resolve(target: str, modules: set):
    """The module a target names: `a.b` itself, or its package when `b` is a name in it."""
    while target and target not in modules:
        target = target.rpartition(".")[0]
    return target or None


def test_no_import_cycle():
    """No two modules import each other, directly or through others (deferred imports
    inside functions included: a cycle is a design smell wherever the import sits)."""
    modules = {_module_name(p): p for p in SOURCES}
    graph = {name: {t for t in (_resolve(t, set(modules)) for t, _ in _imports(path, name))
                    if t and t != name and not name.startswith(t + ".")}
             for name, path in modules.items()}
    state, stack, cycles = {}, [], []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_import_fastiqa_does_not_load_the_compiler_stack():
    heavy = ("torch._dynamo", "triton", "scipy", "matplotlib")
    code = f"import sys, fastiqa; print(sorted(m for m in sys.modules if m.startswith({heavy!r})))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", f"import fastiqa loaded {out.strip()}"


def test_constant_result_matches_torch_compiler_decorator():
    from fastiqa.ops import _dispatch

    def probe():
        return 0

    marked = torch.compiler.assume_constant_result(probe)
    flags = {k: v for k, v in vars(marked).items()}
    assert flags == {"_dynamo_marked_constant": True}, f"assume_constant_result now sets {flags}"
    assert vars(_dispatch.choose).get("_dynamo_marked_constant") is True
