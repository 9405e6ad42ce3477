"""Typed errors shared by the backend and the add-on (DESIGN §4)."""
from __future__ import annotations

from enum import Enum
from typing import Any


class ErrorCode(str, Enum):
    BAD_REQUEST = "BAD_REQUEST"
    UNSUPPORTED = "UNSUPPORTED"
    MODEL_MISSING = "MODEL_MISSING"
    OUT_OF_MEMORY = "OUT_OF_MEMORY"
    CANCELLED = "CANCELLED"
    TOO_LARGE = "TOO_LARGE"
    UNAUTHORIZED = "UNAUTHORIZED"
    VERSION_MISMATCH = "VERSION_MISMATCH"
    NOT_FOUND = "NOT_FOUND"
    INTERNAL = "INTERNAL"


class ProtocolError(Exception):
    """An error that travels: a code, a message a person can act on, and the
    field it is about (dotted path) when there is one."""

    def __init__(self, code: ErrorCode | str, message: str, field: str | None = None,
                 **details: Any) -> None:
        super().__init__(message)
        self.code = ErrorCode(code)
        self.message = message
        self.field = field
        self.details = details

    def __str__(self) -> str:
        where = f" [{self.field}]" if self.field else ""
        return f"{self.code.value}{where}: {self.message}"

    def to_fields(self) -> dict[str, Any]:
        """The fields of an `error` message for this error."""
        out: dict[str, Any] = {"code": self.code.value, "message": self.message}
        if self.field:
            out["field"] = self.field
        if self.details:
            out["details"] = self.details
        return out

    @classmethod
    def from_fields(cls, msg: dict[str, Any]) -> "ProtocolError":
        code = msg.get("code", "INTERNAL")
        if not isinstance(code, str) or code not in ErrorCode.__members__:
            code = "INTERNAL"
        field = msg.get("field")
        err = cls(code, str(msg.get("message", "")), field if isinstance(field, str) else None)
        # Set, not passed as **kwargs: a peer's details may hold keys such as
        # "message", or not be a map at all.
        details = msg.get("details")
        err.details = dict(details) if isinstance(details, dict) else {}
        return err


def bad_request(field: str, message: str) -> ProtocolError:
    return ProtocolError(ErrorCode.BAD_REQUEST, f"{field}: {message}", field=field)
