"""Components and tiers (DESIGN §7): the parts a job runs, and who they are.

A component is one part a pipeline composes: an encoder, a shape estimator, a
painter, a body model, a motion generator, the pipeline's own composition...
Its identity is derived, never typed: a digest of the source of its modules
(and of what they import from the backend), the data files it reads, the
weights it loads and the installed versions of the packages it runs. A tier is
a named set of components. A result's store key holds the identities of every
component that made it, so a change to any of them is a new key.

Where a component's code ends: its modules' imports are followed up to the
entry module of another registered component (that one counts the module when
it runs). So a pipeline names every component its request runs
(Pipeline.components), and then each module that ran is in the key through
exactly the components that ran it, and a module that did not run is not.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ..config import BackendConfig
from .sources import digest_of, distribution_version, files_digest, source_digest


@dataclass(frozen=True)
class Availability:
    """Whether a component (or tier) can run here, and if not, what to do about it."""
    available: bool
    reason: str = ""


AVAILABLE = Availability(True)
ShippedFiles = Callable[[], Sequence[Path]]
UserFiles = Callable[[BackendConfig], Sequence[Path]]


@dataclass(frozen=True)
class Component:
    """One part a job runs. `modules` are backend module names ("backend.x.y");
    `data` lists files shipped with the code or its packages (fixed while the
    process runs); `weights` lists the user's files from the configuration
    (re-digested when their size or mtime changes); `packages` are the
    distributions whose installed version counts."""
    role: str
    name: str
    modules: tuple[str, ...]
    data: ShippedFiles | None = None
    weights: UserFiles | None = None
    packages: tuple[str, ...] = ()
    availability: Callable[[BackendConfig], Availability] | None = None

    def available(self, config: BackendConfig) -> Availability:
        """Its packages are installed and its own check (weights present...) passes."""
        missing = [p for p in self.packages if distribution_version(p) == "absent"]
        if missing:
            return Availability(False, f"the {', '.join(repr(p) for p in missing)} package"
                                f"{'s are' if len(missing) > 1 else ' is'} not installed in the backend's Python: "
                                "pip install 'avatarforge[backend]'")
        return self.availability(config) if self.availability is not None else AVAILABLE

    def identity(self, config: BackendConfig) -> str:
        """Changes whenever its code, data, weights or packages do."""
        weights = files_digest(self.weights(config)) if self.weights is not None else ""
        return digest_of(self.role, self.name, _code_digest(self, _boundary(self)), _data_digest(self), weights)


@dataclass(frozen=True)
class Tier:
    """A named set of components, by the slot each fills in the job ("encoder",
    "painter", ...). The embedded tier runs offline on a CPU with what pip installs."""
    name: str
    components: Mapping[str, Component] = field(hash=False)
    embedded: bool = False

    def available(self, config: BackendConfig) -> Availability:
        """Available when every component is; else the first one's reason."""
        for component in self.components.values():
            status = component.available(config)
            if not status.available:
                return status
        return AVAILABLE

    def describe(self, config: BackendConfig) -> dict[str, Any]:
        """As `welcome` lists it: available (or why not), embedded, and each
        component's role, name and identity (None when it cannot run here)."""
        status = self.available(config)
        out: dict[str, Any] = {"available": status.available, "embedded": self.embedded}
        if not status.available:
            out["reason"] = status.reason
        out["components"] = {slot: {"role": c.role, "name": c.name,
                                    "identity": c.identity(config) if c.available(config).available else None}
                             for slot, c in self.components.items()}
        return out


def used_components(components: Mapping[str, Component], config: BackendConfig) -> dict[str, dict[str, str]]:
    """What a job ran, by slot: role, name and identity of each component (its store
    key holds this; its results' provenance records it)."""
    return {slot: {"role": c.role, "name": c.name, "identity": c.identity(config)}
            for slot, c in sorted(components.items())}


# -- the registry ------------------------------------------------------------------
_registry: dict[tuple[str, str], Component] = {}
_registry_lock = threading.Lock()


def register(component: Component) -> Component:
    """Declare a component (once per role and name); returns it. Its modules become
    where other components' code ends."""
    key = (component.role, component.name)
    with _registry_lock:
        known = _registry.setdefault(key, component)
    if known is not component:
        raise ValueError(f"a {component.role} component named {component.name!r} is already registered")
    return component


def registered() -> tuple[Component, ...]:
    """Every registered component."""
    with _registry_lock:
        return tuple(_registry.values())


def _boundary(component: Component) -> frozenset[str]:
    """Entry modules of every registered component (other than this one's own)."""
    return frozenset(m for c in registered() for m in c.modules) - frozenset(component.modules)


def _code_digest(component: Component, boundary: frozenset[str]) -> str:
    """Its source (up to `boundary`) and its packages' installed versions."""
    return digest_of(source_digest(component.modules, boundary),
                     *(f"{p}=={distribution_version(p)}" for p in component.packages))


@lru_cache(maxsize=None)
def _data_digest(component: Component) -> str:
    # Shipped files do not change while the process runs: digested once.
    return files_digest(component.data()) if component.data is not None else ""
