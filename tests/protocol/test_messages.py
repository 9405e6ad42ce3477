"""Schemas at the boundary: each refusal names the field and says what is allowed."""
from __future__ import annotations

import msgpack
import numpy as np
import pytest

from avatarforge.protocol import (
    REQUEST_TYPES, SCHEMAS, ErrorCode, ProtocolError, decode, encode, make, make_error, validate)
from avatarforge.protocol.messages import MAX_ID_LEN, MAX_NAME_LEN, MAX_PARAM_DEPTH

from .test_codec import SAMPLES

REPLY_TYPES = sorted(set(SCHEMAS) - REQUEST_TYPES)


def refusal(msg, requests_only=True) -> ProtocolError:
    with pytest.raises(ProtocolError) as err:
        validate(msg, requests_only=requests_only)
    assert err.value.message
    return err.value


def nested(depth, make_level=lambda inner: {"k": inner}):
    value = 1
    for _ in range(depth):
        value = make_level(value)
    return value


def sample(type_, **changes):
    msg = make(type_, msg_id="x", **SAMPLES[type_])
    msg.update(changes)
    return msg


@pytest.mark.parametrize("msg, code, field", [
    ({"v": 1, "type": "teleport", "id": "x"}, ErrorCode.UNSUPPORTED, "type"),
    ({"v": 1, "type": 5, "id": "x"}, ErrorCode.UNSUPPORTED, "type"),
    ({"v": 1, "type": ["ping"], "id": "x"}, ErrorCode.UNSUPPORTED, "type"),
    ({"v": 1, "id": "x"}, ErrorCode.UNSUPPORTED, "type"),
    ({"v": 1, "type": "pong", "id": "x"}, ErrorCode.UNSUPPORTED, "type"),          # a reply, sent as a request
    ({"v": 1, "type": "ping"}, ErrorCode.BAD_REQUEST, "id"),
    ({"v": 1, "type": "ping", "id": ""}, ErrorCode.BAD_REQUEST, "id"),
    ({"v": 1, "type": "ping", "id": 7}, ErrorCode.BAD_REQUEST, "id"),
    ({"v": 1, "type": "ping", "id": "x" * (MAX_ID_LEN + 1)}, ErrorCode.BAD_REQUEST, "id"),
    ({"v": 1, "type": "ping", "id": "x", "re": 5}, ErrorCode.BAD_REQUEST, "re"),
    ({"v": 1, "type": "ping", "id": "x", "re": "r" * (MAX_ID_LEN + 1)}, ErrorCode.BAD_REQUEST, "re"),
    ({"v": 1, "type": "ping", "id": "x", "extra": 1}, ErrorCode.BAD_REQUEST, "extra"),
    ({"v": 1, "type": "hello", "id": "x", "client": "c" * (MAX_NAME_LEN + 1)}, ErrorCode.BAD_REQUEST, "client"),
    ({"v": 1, "type": "submit", "id": "x"}, ErrorCode.BAD_REQUEST, "job"),
    ({"v": 1, "type": "submit", "id": "x", "job": 3}, ErrorCode.BAD_REQUEST, "job"),
    ({"v": 1, "type": "submit", "id": "x", "job": ""}, ErrorCode.BAD_REQUEST, "job"),
    ({"v": 1, "type": "submit", "id": "x", "job": b"body"}, ErrorCode.BAD_REQUEST, "job"),
    ({"v": 1, "type": "submit", "id": "x", "job": "body", "tier": None}, ErrorCode.BAD_REQUEST, "tier"),
    ({"v": 1, "type": "submit", "id": "x", "job": "body", "params": [1]}, ErrorCode.BAD_REQUEST, "params"),
    ({"v": 1, "type": "submit", "id": "x", "job": "body", "params": np.zeros(3)}, ErrorCode.BAD_REQUEST, "params"),
    ({"v": 1, "type": "submit", "id": "x", "job": "body", "parms": {}}, ErrorCode.BAD_REQUEST, "parms"),
    ({"v": 1, "type": "cancel", "id": "x"}, ErrorCode.BAD_REQUEST, "job_id"),
    ({"v": 1, "type": "status", "id": "x", "job_id": "j" * (MAX_ID_LEN + 1)}, ErrorCode.BAD_REQUEST, "job_id"),
])
def test_requests_are_refused_with_the_field_named(msg, code, field):
    err = refusal(msg)
    assert err.code == code and err.field == field
    assert field in err.message


@pytest.mark.parametrize("type_", sorted(REQUEST_TYPES))
def test_every_request_type_is_accepted_as_a_request(type_):
    assert validate(sample(type_), requests_only=True)["type"] == type_


@pytest.mark.parametrize("type_", REPLY_TYPES)
def test_every_reply_type_is_refused_as_a_request_and_accepted_as_a_reply(type_):
    err = refusal(sample(type_), requests_only=True)
    assert err.code == ErrorCode.UNSUPPORTED and "reply" in err.message and "submit" in err.message
    validate(sample(type_), requests_only=False)


@pytest.mark.parametrize("type_, field", [(t, f) for t, schema in sorted(SCHEMAS.items())
                                          for f, (required, _) in sorted(schema.items()) if required])
def test_every_required_field_is_required(type_, field):
    msg = sample(type_)
    del msg[field]
    err = refusal(msg, requests_only=False)
    assert err.code == ErrorCode.BAD_REQUEST and err.field == field and "required" in err.message


@pytest.mark.parametrize("type_", sorted(SCHEMAS))
def test_every_type_refuses_unknown_fields_and_lists_the_known_ones(type_):
    err = refusal(sample(type_, colour="red"), requests_only=False)
    assert err.code == ErrorCode.BAD_REQUEST and err.field == "colour"
    assert all(name in err.message for name in SCHEMAS[type_])


def test_unknown_type_lists_the_known_ones():
    assert "submit" in refusal({"v": 1, "type": "teleport", "id": "x"}).message
    assert "welcome" in refusal({"v": 1, "type": "teleport", "id": "x"}, requests_only=False).message


@pytest.mark.parametrize("fraction, ok", [
    (0, True), (0.0, True), (1, True), (1.0, True), (0.25, True),
    (-0.0001, False), (1.0001, False), (float("nan"), False), (float("inf"), False), (True, False), ("0.5", False),
    (None, False), ([0.5], False),
])
def test_progress_fraction_range(fraction, ok):
    msg = sample("progress", fraction=fraction)
    if ok:
        validate(msg)
    else:
        err = refusal(msg, requests_only=False)
        assert err.code == ErrorCode.BAD_REQUEST and err.field == "fraction"


def test_progress_needs_a_stage():
    assert refusal({"v": 1, "type": "progress", "id": "x", "job_id": "j", "fraction": 0.5},
                   requests_only=False).field == "stage"


@pytest.mark.parametrize("level", [lambda inner: {"k": inner}, lambda inner: [inner]], ids=["maps", "lists"])
def test_params_depth_limit_is_exact(level):
    validate(sample("submit", params={"p": nested(MAX_PARAM_DEPTH - 1, level)}))
    err = refusal(sample("submit", params={"p": nested(MAX_PARAM_DEPTH, level)}))
    assert err.code == ErrorCode.BAD_REQUEST and err.field.startswith("params.p")
    assert str(MAX_PARAM_DEPTH) in err.message


def test_deep_params_from_the_wire_are_refused_by_validate_not_by_recursion():
    # Built by msgpack directly: our encoder refuses nesting this deep (below).
    msg = decode([msgpack.packb(sample("submit", params={"p": nested(500)}))])
    assert refusal(msg).field.startswith("params.p.k")


def test_encoding_a_message_nested_too_deep_is_an_internal_error_not_a_recursion_crash():
    with pytest.raises(ProtocolError) as err:
        encode(sample("submit", params={"p": nested(2000)}))
    assert err.value.code == ErrorCode.INTERNAL


@pytest.mark.parametrize("value", ["sleeping", 3, None, ["queued"], {"s": 1}, np.array(["queued", "done"])])
def test_job_state_must_be_a_known_state(value):
    # An array once escaped as a ValueError from `in` (truth value of an array).
    err = refusal(sample("state", state=value), requests_only=False)
    assert err.code == ErrorCode.BAD_REQUEST and err.field == "state"


@pytest.mark.parametrize("value", ["OOPS", 3, None, ["INTERNAL"], {"c": 1}, np.array([1, 2])])
def test_error_code_must_be_a_known_code(value):
    # A list or an array once escaped as a TypeError (unhashable) from `in`.
    err = refusal(sample("error", code=value), requests_only=False)
    assert err.code == ErrorCode.BAD_REQUEST and err.field == "code"


def test_make_fills_the_envelope_and_drops_unset_fields():
    msg = make("submit", re="r", job="body", tier=None)
    assert msg == {"v": 1, "type": "submit", "id": msg["id"], "re": "r", "job": "body"}
    assert make("ping")["id"] != make("ping")["id"]
    assert make("ping", msg_id="mine")["id"] == "mine"
    with pytest.raises(ValueError):
        make("teleport")


def test_make_error_round_trips_into_the_same_error():
    err = ProtocolError(ErrorCode.TOO_LARGE, "too big: send less", field="params.x", id="m1", limit=5)
    msg = validate(decode(encode(make_error(err, re="m1", job_id="j"))))
    assert msg["re"] == "m1" and msg["job_id"] == "j" and msg["code"] == "TOO_LARGE"
    back = ProtocolError.from_fields(msg)
    assert (back.code, back.message, back.field, back.details) == (err.code, err.message, err.field, err.details)


@pytest.mark.parametrize("fields, code", [
    (dict(code="OOPS", message="m"), ErrorCode.INTERNAL),
    (dict(code=["BAD_REQUEST"], message="m"), ErrorCode.INTERNAL),            # unhashable code
    (dict(message="m"), ErrorCode.INTERNAL),
    (dict(code="CANCELLED", message="m", details={"message": "x", "code": 1, "field": 2}), ErrorCode.CANCELLED),
    (dict(code="CANCELLED", message="m", details=[1, 2]), ErrorCode.CANCELLED),
    (dict(code="CANCELLED", message=None, field=3), ErrorCode.CANCELLED),
])
def test_error_replies_from_a_peer_always_become_a_protocol_error(fields, code):
    # A client turns every error reply into an exception; a strange reply must
    # not turn into a TypeError instead (details once went in as **kwargs).
    err = ProtocolError.from_fields(fields)
    assert err.code == code and isinstance(err.message, str)
    assert err.field is None or isinstance(err.field, str)
    assert isinstance(err.details, dict)
