"""What the backend's code and files are, as digests: the ground of component
identity (DESIGN §7). An identity is derived from the bytes that make a result,
never typed by hand: the source of a module and of every backend module it
imports (followed through lazy imports too, read with `ast`), the data files it
reads and the weights it loads.

Also the one reader of the backend's import graph: tests/backend/test_layers.py
checks the layers with the same edges.
"""
from __future__ import annotations

import ast
import hashlib
import importlib.metadata
import os
import threading
from functools import lru_cache
from pathlib import Path
from typing import Iterable, NamedTuple

PACKAGE = "avatarforge"                     # installed namespace of backend/ and protocol/
BACKEND_ROOT = Path(__file__).resolve().parents[1]
ROOT_NAME = "backend"                        # module names below are "backend.x.y" (without the namespace)
_CHUNK = 1 << 20


class ImportEdge(NamedTuple):
    """One `import` of a backend module by another: what, which name (empty when
    the module itself is imported) and on which line."""
    target: str
    name: str
    line: int


def module_path(module: str) -> Path:
    """The file of a backend module named "backend.x.y"."""
    rel = Path(*module.split(".")[1:])
    package = BACKEND_ROOT / rel / "__init__.py"
    return package if package.is_file() else (BACKEND_ROOT / rel).with_suffix(".py")


def all_modules() -> list[str]:
    """Every backend module, as "backend.x.y"."""
    out = []
    for path in sorted(BACKEND_ROOT.rglob("*.py")):
        parts = (ROOT_NAME,) + path.relative_to(BACKEND_ROOT).with_suffix("").parts
        out.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return out


def _resolve(module: str, node: ast.ImportFrom) -> str | None:
    """The backend module a `from ... import` names, or None when it is outside the backend."""
    if node.level:
        base = module.split(".")
        if module_path(module).name != "__init__.py":
            base = base[:-1]
        base = base[:len(base) - (node.level - 1)]
        return ".".join(base + ([node.module] if node.module else []))
    prefix = f"{PACKAGE}.{ROOT_NAME}"
    if node.module and (node.module == prefix or node.module.startswith(prefix + ".")):
        return node.module[len(PACKAGE) + 1:]
    return None


def _is_module(name: str) -> bool:
    return module_path(name).is_file()


@lru_cache(maxsize=None)
def import_edges(module: str) -> tuple[ImportEdge, ...]:
    """Every import of a backend module by `module`, lazy ones inside functions included."""
    tree = ast.parse(module_path(module).read_bytes(), str(module_path(module)))
    edges = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            target = _resolve(module, node)
            if target is None:
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                edges.append(ImportEdge(sub, "", node.lineno) if _is_module(sub)
                             else ImportEdge(target, alias.name, node.lineno))
        elif isinstance(node, ast.Import):
            prefix = f"{PACKAGE}.{ROOT_NAME}"
            edges += [ImportEdge(a.name[len(PACKAGE) + 1:], "", node.lineno) for a in node.names
                      if a.name == prefix or a.name.startswith(prefix + ".")]
    return tuple(edges)


def source_closure(modules: Iterable[str], boundary: frozenset[str] = frozenset()) -> tuple[str, ...]:
    """`modules` and every backend module they import, directly or not (sorted).
    A package's `__init__` counts for its submodules, as Python runs it first.
    Imports of a module in `boundary` (one another component owns: it counts that
    module when it runs) are not followed, unless it is one of `modules`."""
    seen: set[str] = set()
    todo = list(modules)
    stop = boundary - set(todo)
    while todo:
        module = todo.pop()
        if module in seen or module in stop:
            continue
        if not _is_module(module):
            raise ValueError(f"{module!r} is not a backend module")
        seen.add(module)
        todo += [e.target for e in import_edges(module)]
        parts = module.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]
    return tuple(sorted(seen))


@lru_cache(maxsize=None)
def module_digest(module: str) -> str:
    """sha256 of one backend module's source, read once per process: a running
    backend runs the code it loaded, even when the file changes under it."""
    return file_digest(module_path(module))


@lru_cache(maxsize=None)
def loaded_module_identity(module: str) -> str | None:
    """The source digest of a loaded module named as Python names it
    ("avatarforge.backend.x.y") and all it imports; None outside the backend."""
    name = module.removeprefix(f"{PACKAGE}.")
    if not (name == ROOT_NAME or name.startswith(ROOT_NAME + ".")) or not _is_module(name):
        return None
    return source_digest([name])


def source_digest(modules: Iterable[str], boundary: frozenset[str] = frozenset()) -> str:
    """sha256 of the source of `modules` and everything they import from the
    backend, up to `boundary` (see source_closure)."""
    h = hashlib.sha256()
    for module in source_closure(modules, boundary):
        h.update(f"{module}\0{module_digest(module)}\0".encode())
    return h.hexdigest()


_fingerprints: dict[tuple[str, int, int], str] = {}
_fingerprint_lock = threading.Lock()


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes; remembered per (path, size, mtime) so large
    weights are read once per process."""
    st = os.stat(path)
    key = (str(Path(path).resolve()), st.st_size, st.st_mtime_ns)
    with _fingerprint_lock:
        if key in _fingerprints:
            return _fingerprints[key]
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    digest = h.hexdigest()
    with _fingerprint_lock:
        _fingerprints[key] = digest
    return digest


def files_digest(paths: Iterable[Path], root: Path | None = None) -> str:
    """sha256 over files (each named relative to `root` when given, so a moved
    install keeps its identity). A folder counts as all the files below it."""
    files: list[tuple[str, Path]] = []
    for path in paths:
        path = Path(path)
        found = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        files += [(str(p.relative_to(root)) if root else p.name, p) for p in found]
    h = hashlib.sha256()
    for name, p in sorted(files):
        h.update(f"{name}\0{file_digest(p)}\0".encode())
    return h.hexdigest()


def distribution_version(name: str) -> str:
    """The installed version of a Python distribution, or "absent"."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def distribution_files(name: str) -> list[Path]:
    """The files an installed distribution brought (its RECORD) that are there,
    without compiled bytecode (written later, by whichever Python ran it); empty
    when it is not installed."""
    try:
        dist = importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        return []
    paths = (Path(dist.locate_file(f)) for f in dist.files or ()
             if f.suffix != ".pyc" and "__pycache__" not in f.parts)
    return [p for p in paths if p.is_file()]


def digest_of(*parts: str) -> str:
    """One short digest of several digests or names (an identity)."""
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]
