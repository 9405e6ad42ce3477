"""The backend's layers (DESIGN §2), checked on the source: imports go one way,
domain areas do not import each other, no cycles, private names stay private.

Read from the files with `ast` (every import counts, also those inside
functions), so a lazy import cannot hide an upward dependency.
"""
from __future__ import annotations

import ast

from avatarforge.backend.core.sources import BACKEND_ROOT, ImportEdge, all_modules, import_edges, module_path

# Lowest first. A module may import its own layer (within its own area) or lower ones.
CORE = 0       # core/, config, logs, the package itself (its version)
MODELS = 1
DOMAIN = 2     # text, motion, render, formats, fitting, ...: each area on its own
PIPELINES = 3
SPINE = 4      # server, jobs, store, cli

CORE_MODULES = {"backend", "backend.config", "backend.logs"}
SPINE_MODULES = {"backend.server", "backend.jobs", "backend.store", "backend.cli"}


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


MODULES = {m: ast.parse(module_path(m).read_text(encoding="utf-8")) for m in all_modules()}
IMPORTS: dict[str, set[ImportEdge]] = {m: set(import_edges(m)) for m in MODULES}


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


def test_the_checker_resolves_relative_and_lazy_imports():
    edges = {(e.target, e.name) for e in import_edges("backend.pipelines.body")}
    assert ("backend.config", "BackendConfig") in edges
    assert any(t.startswith("backend.models.") for t, _ in edges)
    assert BACKEND_ROOT.name == "backend"
