"""The pins `make` installs with (requirements/, `make lock`): complete, consistent
with pyproject.toml's ranges, and what the backend environment really has."""
from __future__ import annotations

import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
REQ = REPO / "requirements"


def pins(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)", line)
        assert m, f"{path.name}: not a `name==version` pin: {line!r}"
        name = canonicalize_name(m.group(1))
        assert name not in out, f"{path.name}: {name} pinned twice"
        out[name] = m.group(2)
    return out


def project_requirements(extras: tuple[str, ...] = ("backend", "test")) -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    texts = list(project["dependencies"]) + [r for e in extras for r in project["optional-dependencies"][e]]
    return [Requirement(t) for t in texts]


def test_backend_pins_cover_pyproject_within_its_ranges() -> None:
    pinned = pins(REQ / "constraints.txt")
    assert "avatarforge" not in pinned and "pip" not in pinned
    for req in project_requirements():
        name = canonicalize_name(req.name)
        assert name in pinned, f"{req.name} (pyproject.toml) has no pin in requirements/constraints.txt: make lock"
        assert req.specifier.contains(pinned[name], prereleases=True), \
            f"{req.name}=={pinned[name]} is outside pyproject.toml's {req.specifier}: make lock"


def test_blender_pins_cover_what_make_installs() -> None:
    pinned = pins(REQ / "blender.txt")
    assert "bpy" not in pinned          # one per Blender line: BPY_VERSION / BPY42_VERSION in the Makefile
    for line in (REQ / "blender.in").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            req = Requirement(line)
            name = canonicalize_name(req.name)
            assert name in pinned and req.specifier.contains(pinned[name]), (line, pinned.get(name))
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    assert makefile.count("-c $(CONSTRAINTS)") == 1 and makefile.count("-c $(BLENDER_CONSTRAINTS)") == 2


def _closure(root: str, extras: set[str]) -> set[str]:
    """Every installed distribution that `root[extras]` needs, transitively."""
    seen: set[str] = set()
    todo: list[tuple[str, set[str]]] = [(root, extras)]
    while todo:
        name, wanted = todo.pop()
        dist = metadata.distribution(name)
        for text in dist.requires or []:
            req = Requirement(text)
            env_ok = any(req.marker is None or req.marker.evaluate({"extra": e}) for e in (wanted or {""}))
            if not env_ok:
                continue
            dep = canonicalize_name(req.name)
            try:
                metadata.distribution(dep)
            except metadata.PackageNotFoundError:
                continue        # an optional dependency of a dependency that nothing installed
            if dep not in seen:
                seen.add(dep)
                todo.append((dep, set(req.extras)))
    return seen


@pytest.mark.skipif(Path(sys.prefix).resolve() != (REPO / ".venv").resolve(),
                    reason="checks the backend environment that `make` installs (.venv)")
def test_backend_environment_is_the_pinned_one() -> None:
    """What .venv has is what the pins say (a stale .venv: `make backend-env`), and
    nothing the project needs is left unpinned (`make lock`)."""
    pinned = pins(REQ / "constraints.txt")
    needed = _closure("avatarforge", {"backend", "test"}) - {"pip", "setuptools", "wheel"}   # come with the venv
    assert not sorted(needed - set(pinned)), f"installed but not pinned: {sorted(needed - set(pinned))}"
    differ = {name: (metadata.version(name), pinned[name]) for name in needed
              if metadata.version(name) != pinned[name]}
    assert not differ, f"installed vs pinned: {differ}; run `make backend-env`"
