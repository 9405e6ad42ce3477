"""The backend's layers (DESIGN §2), checked on the source: imports go one way,
domain areas do not import each other, no cycles, private names stay private.

Read from the files with `ast` (every import counts, also those inside
functions), so a lazy import cannot hide an upward dependency.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

BACKEND = Path(__file__).resolve().parents[2] / "backend"

# Lowest first. A module may import its own layer (within its own area) or lower ones.
CORE = 0       # core/, config, logs, the package itself (its version)
MODELS = 1
DOMAIN = 2     # text, motion, render, formats, fitting, ...: each area on its own
PIPELINES = 3
SPINE = 4      # server, jobs, store, cli

CORE_MODULES = {"backend", "backend.config", "backend.logs"}
SPINE_MODULES = {"backend.server", "backend.jobs", "backend.store", "backend.cli"}


def module_name(path: Path) -> str:
    parts = path.relative_to(BACKEND.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def area(module: str) -> str:
    """The top-level folder (or module) of backend a module belongs to."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def layer(module: str) -> int:
    if module in CORE_MODULES or area(module) == "core":
        return CORE
    if module in SPINE_MODULES:
        return SPINE
    return {"models": MODELS, "pipelines": PIPELINES}.get(area(module), DOMAIN)


def _modules() -> dict[str, ast.Module]:
    return {module_name(p): ast.parse(p.read_text(encoding="utf-8"), str(p)) for p in sorted(BACKEND.rglob("*.py"))}


MODULES = _modules()


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> list[tuple[str, str]]:
    """(imported module, imported name) pairs of one `from ... import` inside backend."""
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[:len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    elif node.module and node.module.startswith("avatarforge.backend"):
        target = node.module[len("avatarforge."):]
    else:
        return []
    out = []
    for alias in node.names:
        sub = f"{target}.{alias.name}"
        out.append((sub, "") if sub in MODULES else (target, alias.name))
    return out


def imports() -> dict[str, set[tuple[str, str, int]]]:
    """module -> {(imported module, name, line)} for every import of a backend module."""
    out: dict[str, set[tuple[str, str, int]]] = {}
    for module, tree in MODULES.items():
        is_package = (BACKEND.parent / module.replace(".", "/") / "__init__.py").is_file()
        edges = out.setdefault(module, set())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                edges.update((t, n, node.lineno) for t, n in _resolve(module, is_package, node))
            elif isinstance(node, ast.Import):
                edges.update((a.name[len("avatarforge."):], "", node.lineno) for a in node.names
                             if a.name.startswith("avatarforge.backend"))
    return out


IMPORTS = imports()


def test_the_checker_sees_the_backend():
    assert "backend.pipelines.body" in MODULES and "backend.core" in MODULES
    assert any(t == "backend.config" for t, _, _ in IMPORTS["backend.server"])


def test_no_upward_imports():
    bad = [f"{m}:{line} imports {t} (layer {layer(m)} -> {layer(t)})"
           for m, edges in IMPORTS.items() for t, _, line in edges if layer(t) > layer(m)]
    assert not bad, "upward imports (DESIGN §2: pipelines -> domain -> models -> core):\n" + "\n".join(sorted(bad))


def test_domain_areas_do_not_import_each_other():
    bad = [f"{m}:{line} imports {t}" for m, edges in IMPORTS.items() for t, _, line in edges
           if layer(m) == DOMAIN and layer(t) == DOMAIN and area(m) != area(t)]
    assert not bad, "domain areas share data types through the core, not each other:\n" + "\n".join(sorted(bad))


def _cycles() -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    graph = {m: sorted({t for t, _, _ in edges if t in MODULES and t != m}) for m, edges in IMPORTS.items()}
    # A package's __init__ re-exporting its children is not a cycle of logic.
    graph = {m: [t for t in ts if not t.startswith(m + ".")] for m, ts in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles():
    cycles = _cycles()
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def test_private_names_stay_private():
    bad = [f"{m}:{line} imports {t}.{n}" for m, edges in IMPORTS.items() for t, n, line in edges
           if n and _private(n) and t != m]
    # Attribute access on an imported backend name: BodyPipeline._helper, params._bad ...
    for module, tree in MODULES.items():
        imported = {(a.asname or a.name) for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                    and (node.level or (node.module or "").startswith("avatarforge.backend")) for a in node.names}
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and _private(node.attr) and isinstance(node.value, ast.Name) \
                    and node.value.id in imported:
                bad.append(f"{module}:{node.lineno} uses {node.value.id}.{node.attr}")
    assert not bad, "private names used outside their module:\n" + "\n".join(sorted(bad))


@pytest.mark.parametrize("source, expected", [
    ("from ..motion import ops\n", ("backend.motion.ops", "")),
    ("from ..motion.ops import _x\n", ("backend.motion.ops", "_x")),
])
def test_the_checker_resolves_relative_imports(source, expected):
    node = ast.parse(source).body[0]
    assert _resolve("backend.text.shape", False, node) == [expected]
