"""Schemas at the boundary: each refusal names the field and says what is allowed."""
from __future__ import annotations

import pytest

from avatarforge.protocol import ErrorCode, ProtocolError, make, validate
from avatarforge.protocol.messages import MAX_ID_LEN, MAX_PARAM_DEPTH


def refusal(msg, requests_only=True) -> ProtocolError:
    with pytest.raises(ProtocolError) as err:
        validate(msg, requests_only=requests_only)
    return err.value


def nested(depth):
    value = 1
    for _ in range(depth):
        value = {"k": value}
    return value


@pytest.mark.parametrize("msg, code, field", [
    ({"v": 1, "type": "teleport", "id": "x"}, ErrorCode.UNSUPPORTED, "type"),
    ({"v": 1, "type": "pong", "id": "x"}, ErrorCode.UNSUPPORTED, "type"),          # a reply, sent as a request
    ({"v": 1, "type": "ping"}, ErrorCode.BAD_REQUEST, "id"),
    ({"v": 1, "type": "ping", "id": "x" * (MAX_ID_LEN + 1)}, ErrorCode.BAD_REQUEST, "id"),
    ({"v": 1, "type": "ping", "id": "x", "re": 5}, ErrorCode.BAD_REQUEST, "re"),
    ({"v": 1, "type": "submit", "id": "x"}, ErrorCode.BAD_REQUEST, "job"),
    ({"v": 1, "type": "submit", "id": "x", "job": 3}, ErrorCode.BAD_REQUEST, "job"),
    ({"v": 1, "type": "submit", "id": "x", "job": ""}, ErrorCode.BAD_REQUEST, "job"),
    ({"v": 1, "type": "submit", "id": "x", "job": "body", "params": [1]}, ErrorCode.BAD_REQUEST, "params"),
    ({"v": 1, "type": "submit", "id": "x", "job": "body", "parms": {}}, ErrorCode.BAD_REQUEST, "parms"),
    ({"v": 1, "type": "submit", "id": "x", "job": "body", "params": nested(MAX_PARAM_DEPTH + 2)},
     ErrorCode.BAD_REQUEST, "params.k.k.k.k.k.k.k.k.k"),
    ({"v": 1, "type": "cancel", "id": "x"}, ErrorCode.BAD_REQUEST, "job_id"),
])
def test_requests_are_refused_with_the_field_named(msg, code, field):
    err = refusal(msg)
    assert err.code == code and err.field == field
    assert field.split(".")[0] in err.message


@pytest.mark.parametrize("fields, field", [
    (dict(job_id="j", fraction=1.5, stage="s"), "fraction"),
    (dict(job_id="j", fraction=True, stage="s"), "fraction"),
    (dict(job_id="j", fraction=0.5), "stage"),
])
def test_progress_is_checked(fields, field):
    msg = {"v": 1, "type": "progress", "id": "x", **fields}
    assert refusal(msg, requests_only=False).field == field


def test_replies_validate_when_not_restricted_to_requests():
    validate(make("state", job_id="j", state="done"))
    assert refusal(make("state", job_id="j", state="sleeping"), requests_only=False).field == "state"
    assert refusal(make("error", code="OOPS", message="m"), requests_only=False).field == "code"


def test_make_fills_the_envelope_and_drops_unset_fields():
    msg = make("submit", re="r", job="body", tier=None)
    assert msg["v"] == 1 and msg["type"] == "submit" and msg["re"] == "r" and "tier" not in msg
    assert make("ping")["id"] != make("ping")["id"]
    with pytest.raises(ValueError):
        make("teleport")
