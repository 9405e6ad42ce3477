"""The array codec and message framing: round trips, limits, every refusal."""
from __future__ import annotations

import msgpack
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from avatarforge.protocol import (
    OUT_OF_BAND_BYTES, PROTOCOL_VERSION, SCHEMAS, ErrorCode, Limits, ProtocolError, decode, encode, make, validate)
from avatarforge.protocol.codec import EXT_ARRAY_FRAME, EXT_ARRAY_INLINE, EXT_BYTES_FRAME

DTYPES = ["bool", "uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64",
          "float16", "float32", "float64"]


def roundtrip(msg, **kw):
    return decode(encode(msg, **kw), **({"limits": kw.pop("limits")} if "limits" in kw else {}))


def code_of(frames, limits=Limits()) -> ErrorCode:
    with pytest.raises(ProtocolError) as err:
        decode(frames, limits)
    assert err.value.message   # every refusal says something a person can read
    return err.value.code


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(), (0,), (7,), (3, 4), (2, 3, 4), (70_000,)])
def test_arrays_of_every_dtype_and_shape_round_trip(dtype, shape):
    arr = (np.arange(int(np.prod(shape))) % 100).astype(dtype).reshape(shape)
    out = roundtrip(make("ping", msg_id="a") | {"a": arr})["a"]
    assert out.dtype == arr.dtype and out.shape == arr.shape
    np.testing.assert_array_equal(out, arr)


def test_non_contiguous_and_big_endian_inputs():
    base = np.arange(100, dtype=np.float64).reshape(10, 10)
    big_endian = np.arange(5, dtype=">i4")
    out = roundtrip({"v": PROTOCOL_VERSION, "t": base.T, "s": base[::2, 1::3], "be": big_endian})
    np.testing.assert_array_equal(out["t"], base.T)
    np.testing.assert_array_equal(out["s"], base[::2, 1::3])
    np.testing.assert_array_equal(out["be"], big_endian)
    assert out["be"].dtype == np.dtype("<i4")


def test_small_inline_large_out_of_band_without_copies():
    small = np.zeros(10, np.float32)
    large = np.arange(OUT_OF_BAND_BYTES // 4, dtype=np.float32)
    blob = bytes(OUT_OF_BAND_BYTES)
    frames = encode({"v": PROTOCOL_VERSION, "small": small, "large": large, "blob": blob, "tiny": b"x"})
    assert len(frames) == 3
    # The out-of-band frame is a view over the caller's array, not a copy.
    assert np.shares_memory(np.frombuffer(frames[1], np.float32), large)
    out = decode(frames)
    np.testing.assert_array_equal(out["large"], large)
    assert out["blob"] == blob and out["tiny"] == b"x"
    # Decoding is zero-copy too: the array is a view of its frame.
    frame = bytearray(frames[1])
    view = decode([frames[0], frame, frames[2]])["large"]
    frame[0:4] = np.float32(42).tobytes()
    assert view[0] == 42


def test_every_message_type_round_trips_and_validates():
    samples = {
        "hello": dict(client="test", client_version="1"), "submit": dict(job="body", params={"a": [1, 2]}, tier="anny"),
        "cancel": dict(job_id="j"), "status": dict(job_id="j"), "list": {}, "fetch": dict(job_id="j"), "ping": {},
        "welcome": dict(server="s", server_version="1", pipelines={"body": {}}, devices=["cpu"], session="x"),
        "accepted": dict(job_id="j", job="body", cached=False, state="queued"),
        "progress": dict(job_id="j", fraction=0.5, stage="shaping"),
        "result": dict(job_id="j", artifacts=[{"kind": "x", "a": np.ones(3)}]),
        "error": dict(code="BAD_REQUEST", message="m", field="f"),
        "state": dict(job_id="j", state="running", fraction=0.1), "jobs": dict(jobs=[]), "pong": dict(time=1.0),
    }
    assert set(samples) == set(SCHEMAS)
    for type_, fields in samples.items():
        msg = make(type_, re="r1", **fields)
        out = validate(decode(encode(msg)))
        assert out["type"] == type_ and out["id"] == msg["id"] and out["re"] == "r1"
        assert set(out) == set(msg)


def test_envelope_refusals():
    assert code_of([]) == ErrorCode.BAD_REQUEST
    assert code_of([b"\xc1"]) == ErrorCode.BAD_REQUEST                       # never-used msgpack byte
    assert code_of([msgpack.packb([1, 2])]) == ErrorCode.BAD_REQUEST          # not a map
    assert code_of([msgpack.packb({"type": "ping", "id": "x"})]) == ErrorCode.BAD_REQUEST   # no version
    assert code_of([msgpack.packb({"v": True, "type": "ping", "id": "x"})]) == ErrorCode.BAD_REQUEST
    assert code_of([msgpack.packb({1: 2})]) == ErrorCode.BAD_REQUEST          # non-string keys
    with pytest.raises(ProtocolError) as err:
        decode([msgpack.packb({"v": PROTOCOL_VERSION + 1, "type": "ping", "id": "abc"})])
    assert err.value.code == ErrorCode.VERSION_MISMATCH and err.value.details["id"] == "abc"
    assert "update" in err.value.message


def test_size_limits():
    small = Limits(max_header_bytes=1000, max_total_bytes=5000, max_frames=3, max_container_len=10)
    header = encode({"v": PROTOCOL_VERSION, "id": "big"})[0]
    assert code_of([header, b"", b"", b""], small) == ErrorCode.TOO_LARGE        # too many frames
    with pytest.raises(ProtocolError) as err:
        decode(encode({"v": 1, "id": "big", "a": np.zeros(2000, np.float32)}, out_of_band_bytes=100), small)
    assert err.value.code == ErrorCode.TOO_LARGE and err.value.details["id"] == "big"
    assert code_of([msgpack.packb({"v": 1, "s": "x" * 2000})], small) == ErrorCode.TOO_LARGE
    assert code_of([msgpack.packb({"v": 1, "l": list(range(11))})], small) == ErrorCode.BAD_REQUEST


def ext(code, payload):
    return msgpack.packb({"v": PROTOCOL_VERSION, "a": msgpack.ExtType(code, msgpack.packb(payload))})


@pytest.mark.parametrize("frames", [
    [ext(EXT_ARRAY_INLINE, ["|O", [1], b"x" * 8])],           # object dtype would mean pickle
    [ext(EXT_ARRAY_INLINE, ["<U3", [1], b"x" * 12])],         # not plain numbers
    [ext(EXT_ARRAY_INLINE, ["<f4", [3], b"x" * 8])],          # byte count does not match the shape
    [ext(EXT_ARRAY_INLINE, ["<f4", [-1], b""])],              # negative size
    [ext(EXT_ARRAY_INLINE, ["<f4", [1] * 9, b"x" * 4])],      # too many dimensions
    [ext(EXT_ARRAY_INLINE, ["<f4", "3", b"x" * 12])],         # shape not a list
    [ext(EXT_ARRAY_INLINE, ["<f4", [1]])],                    # not [dtype, shape, data]
    [ext(EXT_ARRAY_FRAME, ["<f4", [1], 1])],                  # frame that is not there
    [ext(EXT_ARRAY_FRAME, ["<f4", [1], 0]), b"x" * 4],        # frame 0 is the header
    [ext(EXT_BYTES_FRAME, 5), b"x"],                          # out of range
    [ext(99, [1]), ],                                         # unknown extension
    [msgpack.packb({"v": 1, "a": msgpack.ExtType(1, b"\xc1")})],   # garbage payload
    [msgpack.packb({"v": 1, "a": msgpack.ExtType(EXT_BYTES_FRAME, msgpack.packb(1)),
                    "b": msgpack.ExtType(EXT_BYTES_FRAME, msgpack.packb(1))}), b"x"],  # one frame, two uses
    [msgpack.packb({"v": 1}), b"stray"],                      # a frame nothing references
])
def test_malformed_extensions_and_frames_are_refused(frames):
    assert code_of(frames) == ErrorCode.BAD_REQUEST


def test_unencodable_values_are_an_internal_error():
    with pytest.raises(ProtocolError) as err:
        encode({"v": 1, "x": object()})
    assert err.value.code == ErrorCode.INTERNAL
    with pytest.raises(ProtocolError):
        encode({"v": 1, "x": np.array(["a"], dtype=object)})


# -- fuzzing: whatever arrives, decode returns a map or raises ProtocolError ------------

FUZZ = settings(max_examples=300, deadline=1000, suppress_health_check=[HealthCheck.too_slow])


def decodes_or_refuses(frames):
    try:
        assert isinstance(decode(frames, Limits(max_header_bytes=1 << 16, max_total_bytes=1 << 20)), dict)
    except ProtocolError:
        pass


@FUZZ
@given(st.lists(st.binary(max_size=512), min_size=0, max_size=5))
def test_fuzz_arbitrary_frames(frames):
    decodes_or_refuses(frames)


VALID_FRAMES = [bytes(f) for f in encode(make(
    "submit", msg_id="fuzz", job="body", params={"a": np.arange(20_000, dtype=np.float32), "s": "x", "n": [1, 2.5]}))]


@FUZZ
@given(st.data())
def test_fuzz_mutated_valid_messages(data):
    frames = VALID_FRAMES
    header = bytearray(frames[0])
    for _ in range(data.draw(st.integers(1, 8))):
        pos = data.draw(st.integers(0, len(header) - 1))
        header[pos] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(header)))
    decodes_or_refuses([bytes(header[:cut]), *frames[1:data.draw(st.integers(1, len(frames)))]])


@FUZZ
@given(st.integers(0, 127), st.binary(max_size=64), st.lists(st.binary(max_size=64), max_size=3))
def test_fuzz_random_extension_payloads(code, payload, extra):
    decodes_or_refuses([msgpack.packb({"v": 1, "x": msgpack.ExtType(code, payload)}), *extra])
