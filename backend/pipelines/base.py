"""What every pipeline is: request in, artifacts out (DESIGN §1-2).

A pipeline normalises its params (validating every field, filling defaults) so
that equal requests have equal keys in the result store, declares its tiers
(named sets of components, DESIGN §7) and which components a request runs
(their identities are the rest of the key), and runs with a JobContext that
carries progress and cooperative cancellation.
"""
from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

from avatarforge.protocol import ErrorCode, ProtocolError

from ..config import BackendConfig
from ..core.components import Component, Tier


class JobCancelled(Exception):
    """Raised inside a pipeline at its next progress call after a cancel."""


@dataclass
class JobContext:
    config: BackendConfig
    device: str = "cpu"
    seed: int = 0
    on_progress: Callable[[float, str], None] = lambda fraction, stage: None
    cancel_event: threading.Event = field(default_factory=threading.Event)
    # A small image of the work so far (PNG bytes) and what it shows, sent with the next progress.
    on_preview: Callable[[bytes, dict[str, Any]], None] = lambda png, info: None

    def progress(self, fraction: float, stage: str) -> None:
        """Report progress in [0, 1]; raises JobCancelled once a cancel arrived."""
        self.check_cancelled()
        self.on_progress(min(max(float(fraction), 0.0), 1.0), stage)

    def preview(self, png: bytes, **info: Any) -> None:
        """Offer a small preview image (PNG bytes, a few KB) of the work so far."""
        self.on_preview(png, info)

    def check_cancelled(self) -> None:
        if self.cancel_event.is_set():
            raise JobCancelled()


class Pipeline(ABC):
    name: ClassVar[str]

    @abstractmethod
    def tiers(self) -> tuple[Tier, ...]:
        """Every tier of this job, the default (embedded) one first."""

    def tier(self, name: str) -> Tier:
        """The tier `name`; BAD_REQUEST naming the tiers there are."""
        tiers = {t.name: t for t in self.tiers()}
        if name not in tiers:
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"tier '{name}' is not a tier of '{self.name}'; "
                                f"tiers: {', '.join(tiers)}", field="tier")
        return tiers[name]

    def default_tier(self, config: BackendConfig) -> Tier:
        """The first tier that can run here; MODEL_MISSING saying why when none can."""
        reasons = []
        for tier in self.tiers():
            status = tier.available(config)
            if status.available:
                return tier
            reasons.append(f"{tier.name}: {status.reason}")
        raise ProtocolError(ErrorCode.MODEL_MISSING, f"no tier of pipeline '{self.name}' can run here ("
                            + "; ".join(reasons) + ")")

    def choose_tier(self, requested: str | None, params: dict[str, Any], config: BackendConfig) -> Tier:
        """The tier asked for, the one normalised params imply, or the default;
        BAD_REQUEST when they disagree, MODEL_MISSING (saying why) when it cannot run here."""
        implied = self.tier_of(params)
        if implied is not None and requested not in (None, implied):
            raise ProtocolError(ErrorCode.BAD_REQUEST,
                                f"tier '{requested}' contradicts the params, which run on tier '{implied}'; "
                                "leave tier out or make them agree", field="tier")
        name = requested or implied
        if name is None:
            return self.default_tier(config)
        tier = self.tier(name)
        status = tier.available(config)
        if not status.available:
            raise ProtocolError(ErrorCode.MODEL_MISSING,
                                f"tier '{name}' of '{self.name}' cannot run here: {status.reason}", field="tier")
        return tier

    @abstractmethod
    def normalise(self, params: dict[str, Any], config: BackendConfig) -> dict[str, Any]:
        """Validate `params` and return them complete and canonical.

        Raises ProtocolError(BAD_REQUEST) naming the field and its allowed
        values, or MODEL_MISSING when the request needs files that are absent.
        """

    def tier_of(self, params: dict[str, Any]) -> str | None:
        """The tier normalised params imply (e.g. the body model they name), or
        None when any available tier can serve them."""
        return None

    def components(self, tier: Tier, params: dict[str, Any], config: BackendConfig) -> dict[str, Component]:
        """Every component this request runs, by slot (their identities are part of
        its store key): the tier's, plus those its params call for (a pipeline
        whose params add one overrides this)."""
        return dict(tier.components)

    @abstractmethod
    def run(self, params: dict[str, Any], ctx: JobContext) -> list[Any]:
        """Run on normalised params; return artifacts (objects with to_wire())."""

    def describe(self, config: BackendConfig) -> dict[str, Any]:
        """This pipeline as `welcome` lists it: its tiers with their components."""
        return {"tiers": {t.name: t.describe(config) for t in self.tiers()}}


def record_components(artifacts: list[Any], used: dict[str, dict[str, str]]) -> list[Any]:
    """`artifacts`, each with the components that made it in its provenance (those that keep one)."""
    for artifact in artifacts:
        provenance = getattr(artifact, "provenance", None)
        if isinstance(provenance, dict):
            provenance["components"] = used
    return artifacts
