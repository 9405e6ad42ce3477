"""Message types and their schemas (DESIGN §4).

Every message is a map with `v` (protocol version), `type` and `id`; a reply
also carries `re`, the id of the message it answers. Each type's fields are
checked here, at the boundary, before anything acts on them.

Requests (client -> backend) and what answers them:
    hello   {client, client_version}              -> welcome
    submit  {job, params, tier?}                  -> accepted, progress*, result | error
    cancel  {job_id}                              -> state
    status  {job_id}                              -> state
    list    {}                                    -> jobs
    fetch   {job_id}                              -> result, or accepted + progress* + result | error
    ping    {}                                    -> pong
"""
from __future__ import annotations

import itertools
import os
from typing import Any, Callable

from .codec import MAX_ID_LEN, PROTOCOL_VERSION
from .errors import ErrorCode, ProtocolError

MAX_NAME_LEN = 64
MAX_PARAM_DEPTH = 8
JOB_STATES = ("queued", "running", "done", "failed", "cancelled")

Check = Callable[[Any, str], None]


def _fail(field: str, message: str) -> ProtocolError:
    return ProtocolError(ErrorCode.BAD_REQUEST, f"field '{field}' {message}", field=field)


def _str(max_len: int) -> Check:
    def check(value: Any, field: str) -> None:
        if not isinstance(value, str):
            raise _fail(field, f"must be a string, got {type(value).__name__}")
        if not value or len(value) > max_len:
            raise _fail(field, f"must be 1 to {max_len} characters long")
    return check


def _number(lo: float, hi: float) -> Check:
    def check(value: Any, field: str) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _fail(field, f"must be a number, got {type(value).__name__}")
        if not lo <= value <= hi:
            raise _fail(field, f"must be in [{lo}, {hi}], got {value}")
    return check


def _plain_data(value: Any, field: str, depth: int = 0) -> None:
    if depth > MAX_PARAM_DEPTH:
        raise _fail(field, f"nests deeper than {MAX_PARAM_DEPTH} levels")
    if isinstance(value, dict):
        for k, v in value.items():
            _plain_data(v, f"{field}.{k}", depth + 1)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _plain_data(v, f"{field}[{i}]", depth + 1)


def _map(value: Any, field: str) -> None:
    if not isinstance(value, dict):
        raise _fail(field, f"must be a map, got {type(value).__name__}")
    _plain_data(value, field)


def _any(value: Any, field: str) -> None:
    _plain_data(value, field)


def _list(value: Any, field: str) -> None:
    if not isinstance(value, list):
        raise _fail(field, f"must be a list, got {type(value).__name__}")


# isinstance first: `in` on an unhashable value (a list) or an array would raise.
def _state(value: Any, field: str) -> None:
    if not isinstance(value, str) or value not in JOB_STATES:
        raise _fail(field, f"must be one of {', '.join(JOB_STATES)}, got {value!r}")


def _code(value: Any, field: str) -> None:
    if not isinstance(value, str) or value not in ErrorCode.__members__:
        raise _fail(field, f"must be an error code, got {value!r}")


# type -> {field: (required, check)}
SCHEMAS: dict[str, dict[str, tuple[bool, Check]]] = {
    # requests
    "hello": {"client": (True, _str(MAX_NAME_LEN)), "client_version": (False, _str(MAX_NAME_LEN))},
    "submit": {"job": (True, _str(MAX_NAME_LEN)), "params": (False, _map), "tier": (False, _str(MAX_NAME_LEN))},
    "cancel": {"job_id": (True, _str(MAX_ID_LEN))},
    "status": {"job_id": (True, _str(MAX_ID_LEN))},
    "list": {},
    "fetch": {"job_id": (True, _str(MAX_ID_LEN))},
    "ping": {},
    # replies and events
    "welcome": {"server": (True, _str(MAX_NAME_LEN)), "server_version": (True, _str(MAX_NAME_LEN)),
                "pipelines": (True, _map), "devices": (True, _list), "session": (False, _str(MAX_ID_LEN))},
    "accepted": {"job_id": (True, _str(MAX_ID_LEN)), "job": (True, _str(MAX_NAME_LEN)),
                 "cached": (False, _any), "state": (False, _state)},
    "progress": {"job_id": (True, _str(MAX_ID_LEN)), "fraction": (True, _number(0.0, 1.0)),
                 "stage": (True, _str(256)), "message": (False, _any)},
    "result": {"job_id": (True, _str(MAX_ID_LEN)), "artifacts": (True, _list), "cached": (False, _any),
               "stats": (False, _map)},
    "error": {"code": (True, _code), "message": (True, _any), "field": (False, _any),
              "job_id": (False, _any), "details": (False, _any)},
    "state": {"job_id": (True, _str(MAX_ID_LEN)), "state": (True, _state), "job": (False, _any),
              "fraction": (False, _number(0.0, 1.0)), "stage": (False, _any), "error": (False, _any),
              "created": (False, _any), "finished": (False, _any)},
    "jobs": {"jobs": (True, _list)},
    "pong": {"time": (False, _any)},
}
REQUEST_TYPES = frozenset(["hello", "submit", "cancel", "status", "list", "fetch", "ping"])
ENVELOPE = frozenset(["v", "type", "id", "re"])

_counter = itertools.count()
_prefix = os.urandom(4).hex()


def new_id() -> str:
    """A message id unique to this process and run."""
    return f"{_prefix}-{next(_counter)}"


def make(type_: str, re: str | None = None, msg_id: str | None = None, **fields: Any) -> dict[str, Any]:
    """Build a message of `type_`; `re` names the message it answers."""
    if type_ not in SCHEMAS:
        raise ValueError(f"unknown message type {type_!r}")
    msg: dict[str, Any] = {"v": PROTOCOL_VERSION, "type": type_, "id": msg_id or new_id()}
    if re is not None:
        msg["re"] = re
    msg.update({k: v for k, v in fields.items() if v is not None})
    return msg


def make_error(err: ProtocolError, re: str | None = None, job_id: str | None = None) -> dict[str, Any]:
    return make("error", re=re, job_id=job_id, **err.to_fields())


def validate(msg: dict[str, Any], requests_only: bool = False) -> dict[str, Any]:
    """Check the envelope and the fields of `msg` against its type's schema.

    Unknown fields are refused too: a typo in a field name should not be
    silently ignored.
    """
    msg_type = msg.get("type")
    if not isinstance(msg_type, str) or msg_type not in SCHEMAS:
        known = ", ".join(sorted(REQUEST_TYPES if requests_only else SCHEMAS))
        raise ProtocolError(ErrorCode.UNSUPPORTED, f"unknown message type {msg_type!r}; known types: {known}",
                            field="type")
    if requests_only and msg_type not in REQUEST_TYPES:
        raise ProtocolError(ErrorCode.UNSUPPORTED,
                            f"message type '{msg_type}' is a reply; a client may send "
                            f"{', '.join(sorted(REQUEST_TYPES))}", field="type")
    _str(MAX_ID_LEN)(msg.get("id"), "id")
    if "re" in msg:
        _str(MAX_ID_LEN)(msg["re"], "re")
    schema = SCHEMAS[msg_type]
    for name, (required, check) in schema.items():
        if name in msg:
            check(msg[name], name)
        elif required:
            raise _fail(name, f"is required in a '{msg_type}' message")
    extra = set(msg) - ENVELOPE - set(schema)
    if extra:
        raise _fail(sorted(extra)[0], f"is not a field of a '{msg_type}' message "
                                      f"(fields: {', '.join(sorted(schema)) or 'none'})")
    return msg
