"""Fuzzing the decoder, the schemas and the artifact checks with Hypothesis.

Whatever arrives, decode returns a map of plain data or raises ProtocolError:
never another exception, never a hang. The same holds for validate and
artifact_from_wire on whatever decode returns. Each property is bounded
(max_examples, deadline) so the file runs in seconds.
"""
from __future__ import annotations

from datetime import timedelta

import msgpack
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from avatarforge.protocol import (
    PROTOCOL_VERSION, SCHEMAS, Limits, ProtocolError, artifact_from_wire, decode, encode, make, validate)
from avatarforge.protocol.codec import _ALLOWED_DTYPES, EXT_ARRAY_FRAME, EXT_ARRAY_INLINE, EXT_BYTES_FRAME

from .test_artifacts import avatar
from .test_codec import assert_same

V = PROTOCOL_VERSION
FUZZ = settings(max_examples=300, deadline=timedelta(seconds=2),
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
# Small limits: a fuzzed size field must be refused, not allocated.
LIMITS = Limits(max_header_bytes=1 << 16, max_total_bytes=1 << 22, max_frames=16, max_container_len=10_000)
pytestmark = pytest.mark.timeout(120)   # a hang fails the test instead of stalling the suite


def assert_plain(value, depth=0):
    """What decode may return: msgpack's plain types with str keys, and arrays of the allowed dtypes."""
    assert depth < 2000
    if isinstance(value, dict):
        for k, v in value.items():
            assert type(k) is str
            assert_plain(v, depth + 1)
    elif isinstance(value, list):
        for v in value:
            assert_plain(v, depth + 1)
    elif isinstance(value, np.ndarray):
        assert value.dtype.str in _ALLOWED_DTYPES
    else:
        assert value is None or type(value) in (bool, int, float, str, bytes)


def decodes_or_refuses(frames, limits=LIMITS):
    try:
        msg = decode(frames, limits)
    except ProtocolError as err:
        assert err.code and isinstance(err.message, str) and err.message
        return None
    assert isinstance(msg, dict) and msg["v"] == V
    assert_plain(msg)
    return msg


def validates_or_refuses(msg, requests_only):
    try:
        assert validate(msg, requests_only=requests_only) is msg
    except ProtocolError as err:
        assert err.message


# -- raw bytes ---------------------------------------------------------------------------

@FUZZ
@given(st.lists(st.binary(max_size=512), min_size=0, max_size=20))
def test_arbitrary_frames(frames):
    decodes_or_refuses(frames)


@FUZZ
@given(st.binary(max_size=512), st.lists(st.binary(max_size=64), max_size=3))
def test_arbitrary_bytes_after_a_valid_start(tail, extra):
    # {"v": 1, "x": <random>...}: gets past the first byte far more often than random bytes do.
    decodes_or_refuses([b"\x82" + msgpack.packb("v") + msgpack.packb(V) + msgpack.packb("x") + tail, *extra])


# -- mutated valid messages --------------------------------------------------------------

VALID = [
    [bytes(f) for f in encode(make("submit", msg_id="fuzz", job="body", params={
        "a": np.arange(20_000, dtype=np.float32), "small": np.arange(6, dtype=np.int16).reshape(2, 3),
        "blob": bytes(70_000), "s": "x", "n": [1, 2.5, None, True]}))],
    [bytes(f) for f in encode(make("result", msg_id="r", job_id="j", artifacts=[avatar(30_000).to_wire()]))],
    [bytes(f) for f in encode(make("progress", job_id="j", fraction=0.5, stage="s"))],
]


@FUZZ
@given(st.sampled_from(VALID), st.data())
def test_bit_flips_in_the_header(frames, data):
    header = bytearray(frames[0])
    for _ in range(data.draw(st.integers(1, 8), "flips")):
        header[data.draw(st.integers(0, len(header) - 1))] ^= 1 << data.draw(st.integers(0, 7))
    validates_or_refuses(decodes_or_refuses([bytes(header), *frames[1:]]) or {}, True)


@FUZZ
@given(st.sampled_from(VALID), st.data())
def test_byte_overwrites_and_truncated_headers(frames, data):
    header = bytearray(frames[0])
    for _ in range(data.draw(st.integers(0, 4), "overwrites")):
        header[data.draw(st.integers(0, len(header) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(header)), "cut")
    decodes_or_refuses([bytes(header[:cut]), *frames[1:]])


@FUZZ
@given(st.sampled_from(VALID), st.data())
def test_data_frames_cut_grown_dropped_duplicated_or_shuffled(frames, data):
    frames = list(frames)
    op = data.draw(st.sampled_from(["cut", "grow", "drop", "duplicate", "shuffle", "swap_header"]))
    i = data.draw(st.integers(1, max(1, len(frames) - 1)))
    if op == "cut" and len(frames) > 1:
        frames[i] = frames[i][:data.draw(st.integers(0, len(frames[i])))]
    elif op == "grow" and len(frames) > 1:
        frames[i] = frames[i] + data.draw(st.binary(min_size=1, max_size=16))
    elif op == "drop" and len(frames) > 1:
        del frames[i]
    elif op == "duplicate":
        frames.insert(i, frames[min(i, len(frames) - 1)])
    elif op == "shuffle":
        frames[1:] = data.draw(st.permutations(frames[1:]))
    elif op == "swap_header" and len(frames) > 1:
        frames[0], frames[i] = frames[i], frames[0]
    decodes_or_refuses(frames)


# -- extension payloads ------------------------------------------------------------------

def ext_header(code: int, payload: bytes) -> bytes:
    """{"v": 1, "a": ext(code, payload)} with any code, negative ones included."""
    assert len(payload) < 2 ** 32
    return (b"\x82" + msgpack.packb("v") + msgpack.packb(V) + msgpack.packb("a")
            + b"\xc9" + len(payload).to_bytes(4, "big") + bytes([code & 0xFF]) + payload)


msgpack_ints = st.integers(-2 ** 63, 2 ** 64 - 1)
dtypes = st.sampled_from(sorted(_ALLOWED_DTYPES) + [">f4", "|O", "<U3", "<c8", "V4", "<M8[D]", "", "f4", "<f16"])
sizes = st.one_of(st.integers(0, 8), st.integers(-3, 2 ** 45), st.sampled_from([True, 1.0, "2", None]))
array_payloads = st.tuples(
    st.one_of(dtypes, msgpack_ints, st.none()),
    st.one_of(st.lists(sizes, max_size=10), msgpack_ints, st.text(max_size=3)),
    st.one_of(st.binary(max_size=64), st.integers(-2, 5), st.booleans(), st.none()),
).map(list)


@FUZZ
@given(st.integers(-128, 127), st.binary(max_size=64), st.lists(st.binary(max_size=64), max_size=3))
def test_random_extension_codes_and_payload_bytes(code, payload, extra):
    decodes_or_refuses([ext_header(code, payload), *extra])


@FUZZ
@given(st.sampled_from([EXT_ARRAY_INLINE, EXT_ARRAY_FRAME, EXT_BYTES_FRAME]),
       st.one_of(array_payloads, st.integers(-2, 5), st.lists(st.integers(0, 4), max_size=4)),
       st.lists(st.binary(max_size=128), max_size=3))
def test_structured_extension_payloads(code, payload, extra):
    # Well-formed msgpack inside the extension, so the checks on dtype, shape and frames are reached.
    decodes_or_refuses([ext_header(code, msgpack.packb(payload)), *extra])


# -- structured messages: decode, then validate ------------------------------------------

leaves = st.one_of(st.none(), st.booleans(), msgpack_ints, st.floats(), st.text(max_size=20),
                   st.binary(max_size=20))
values = st.recursive(leaves, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                      st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                      max_leaves=30)
field_names = st.sampled_from(sorted({f for s in SCHEMAS.values() for f in s} | {"re", "bogus"}))


@FUZZ
@given(st.one_of(st.sampled_from(sorted(SCHEMAS)), st.text(max_size=10), msgpack_ints),
       st.one_of(st.text(max_size=140), msgpack_ints),
       st.dictionaries(field_names, values, max_size=6), st.booleans())
def test_random_messages_decode_and_validate_or_refuse(type_, msg_id, fields, requests_only):
    frames = [msgpack.packb({"v": V, "type": type_, "id": msg_id, **fields})]
    msg = decodes_or_refuses(frames)
    if msg is not None:
        validates_or_refuses(msg, requests_only)


arrays = hnp.arrays(st.sampled_from(sorted(_ALLOWED_DTYPES) + [">i4", ">f8"]),
                    hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=6))
wire_values = st.recursive(st.one_of(leaves, arrays),
                           lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                   st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                           max_leaves=20)


@FUZZ
@given(st.dictionaries(st.text(max_size=8), wire_values, max_size=5), st.sampled_from([0, 16, 1 << 16]))
def test_whatever_encode_accepts_decodes_to_the_same_message(fields, threshold):
    msg = {**fields, "v": V}
    assert_same(decode(encode(msg, out_of_band_bytes=threshold)), msg)


# -- artifacts ---------------------------------------------------------------------------

AVATAR = avatar().to_wire()
ARTIFACT_PATHS = sorted([k for k in AVATAR if k != "kind"] + ["skeleton." + k for k in AVATAR["skeleton"]]
                        + ["materials.0." + k for k in AVATAR["materials"][0]])
artifact_values = st.one_of(
    values, arrays,
    hnp.arrays(st.sampled_from(["<f4", "<i4", "<i8", "<f8", "|u1", "|b1"]),
               st.tuples(st.integers(0, 5), st.sampled_from([1, 2, 3, 4])).map(tuple)),
    st.just(np.full((4, 3), np.nan, np.float32)))


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(ARTIFACT_PATHS), artifact_values), min_size=1, max_size=3))
def test_mutated_artifacts_are_rebuilt_or_refused(changes):
    d = decode(encode({"v": V, "a": AVATAR}))["a"]   # the form a client actually holds
    for path, value in changes:
        target = d
        *parents, last = path.split(".")
        for p in parents:   # an earlier change may have replaced a parent: then skip this one
            if isinstance(target, dict) and p in target:
                target = target[p]
            elif isinstance(target, list) and p.isdigit() and int(p) < len(target):
                target = target[int(p)]
            else:
                target = None
        if isinstance(target, dict):
            target[last] = value
    try:
        artifact_from_wire(d)
    except ProtocolError as err:
        assert err.message
