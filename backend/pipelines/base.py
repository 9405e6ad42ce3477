"""What every pipeline is: request in, artifacts out (DESIGN §1-2).

A pipeline normalises its params (validating every field, filling defaults) so
that equal requests have equal keys in the result store, reports which tiers it
can run on this machine, and runs with a JobContext that carries progress and
cooperative cancellation.
"""
from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

from avatarforge.protocol import ErrorCode, ProtocolError

from ..config import BackendConfig


class JobCancelled(Exception):
    """Raised inside a pipeline at its next progress call after a cancel."""


@dataclass
class JobContext:
    config: BackendConfig
    device: str = "cpu"
    seed: int = 0
    on_progress: Callable[[float, str], None] = lambda fraction, stage: None
    cancel_event: threading.Event = field(default_factory=threading.Event)

    def progress(self, fraction: float, stage: str) -> None:
        """Report progress in [0, 1]; raises JobCancelled once a cancel arrived."""
        self.check_cancelled()
        self.on_progress(min(max(float(fraction), 0.0), 1.0), stage)

    def check_cancelled(self) -> None:
        if self.cancel_event.is_set():
            raise JobCancelled()


class Pipeline(ABC):
    name: ClassVar[str]
    version: ClassVar[str]

    @abstractmethod
    def tiers(self, config: BackendConfig) -> dict[str, dict[str, Any]]:
        """Tier name -> {"available": bool, "reason": str (when not), ...}."""

    def default_tier(self, config: BackendConfig) -> str:
        available = [t for t, info in self.tiers(config).items() if info.get("available")]
        if not available:
            raise ProtocolError(ErrorCode.MODEL_MISSING, f"no tier of pipeline '{self.name}' can run here")
        return available[0]

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

    def model_versions(self, params: dict[str, Any], config: BackendConfig) -> dict[str, str]:
        """Names and versions of the models a request uses (part of its store key)."""
        return {self.name: self.version}

    @abstractmethod
    def run(self, params: dict[str, Any], ctx: JobContext) -> list[Any]:
        """Run on normalised params; return artifacts (objects with to_wire())."""

    def describe(self, config: BackendConfig) -> dict[str, Any]:
        """This pipeline as `welcome` lists it."""
        return {"version": self.version, "tiers": self.tiers(config)}
