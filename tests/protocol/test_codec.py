"""The array codec and message framing: round trips, zero copy, limits, every refusal."""
from __future__ import annotations

import math

import msgpack
import numpy as np
import pytest
import zmq

from avatarforge.protocol import (
    OUT_OF_BAND_BYTES, PROTOCOL_VERSION, SCHEMAS, ErrorCode, Limits, ProtocolError, decode, encode, make, validate)
from avatarforge.protocol.codec import EXT_ARRAY_FRAME, EXT_ARRAY_INLINE, EXT_BYTES_FRAME

DTYPES = ["bool", "uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64",
          "float16", "float32", "float64"]
V = PROTOCOL_VERSION


def assert_same(got, want):
    """Deep equality where arrays must match in dtype, shape and values and
    tuples travel as lists."""
    if isinstance(want, np.ndarray):
        assert isinstance(got, np.ndarray)
        assert got.dtype == want.dtype.newbyteorder("<") or got.dtype == want.dtype
        assert got.shape == want.shape
        np.testing.assert_array_equal(got, want)
    elif isinstance(want, dict):
        assert isinstance(got, dict) and set(got) == set(want)
        for k in want:
            assert_same(got[k], want[k])
    elif isinstance(want, (list, tuple)):
        assert isinstance(got, list) and len(got) == len(want)
        for g, w in zip(got, want):
            assert_same(g, w)
    elif isinstance(want, (bytearray, memoryview)):
        assert got == bytes(want)
    elif isinstance(want, float) and math.isnan(want):
        assert isinstance(got, float) and math.isnan(got)
    else:
        assert type(got) is type(want) and got == want


def roundtrip(msg, **kw):
    return decode(encode(msg, **kw))


def refusal(frames, limits=Limits()) -> ProtocolError:
    with pytest.raises(ProtocolError) as err:
        decode(frames, limits)
    assert err.value.message   # every refusal says something a person can read
    return err.value


def code_of(frames, limits=Limits()) -> ErrorCode:
    return refusal(frames, limits).code


# -- round trips -------------------------------------------------------------------------

# One sample per message type; arrays and bytes where a schema lets arbitrary data through.
SAMPLES = {
    "hello": dict(client="test", client_version="1.2"),
    "submit": dict(job="body", tier="anny",
                   params={"a": [1, 2.5, None, True], "s": "x", "arr": np.arange(6, dtype=np.float32).reshape(2, 3),
                           "big": np.ones(50_000, np.float32), "blob": b"\x00\x01", "nested": {"k": {"k": -3}}}),
    "cancel": dict(job_id="j"), "status": dict(job_id="j"), "list": {}, "fetch": dict(job_id="j"), "ping": {},
    "welcome": dict(server="s", server_version="1", pipelines={"body": {"tiers": ["anny"]}}, devices=["cpu"],
                    session="x"),
    "accepted": dict(job_id="j", job="body", cached=False, state="queued"),
    "progress": dict(job_id="j", fraction=0.5, stage="shaping", message="halfway"),
    "result": dict(job_id="j", cached=True, stats={"s": 1.5},
                   artifacts=[{"kind": "x", "a": np.ones((3, 4)), "png": bytes(100_000)}]),
    "error": dict(code="BAD_REQUEST", message="m", field="f", job_id="j", details={"id": "abc"}),
    "state": dict(job_id="j", state="running", fraction=0.1, job="body", stage="s", error=None, created=1.0,
                  finished=2.0),
    "jobs": dict(jobs=[{"job_id": "j", "state": "done"}]),
    "pong": dict(time=1.0),
}


def test_samples_cover_every_message_type():
    assert set(SAMPLES) == set(SCHEMAS)


@pytest.mark.parametrize("type_", sorted(SCHEMAS))
def test_every_message_type_round_trips_and_validates(type_):
    msg = make(type_, re="r1", **SAMPLES[type_])
    out = validate(decode(encode(msg)))
    assert_same(out, msg)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(), (0,), (7,), (3, 4), (2, 3, 4), (1, 1, 1, 1, 1, 1, 1, 2), (70_000,)])
def test_arrays_of_every_dtype_and_shape_round_trip(dtype, shape):
    arr = (np.arange(int(np.prod(shape))) % 100).astype(dtype).reshape(shape)
    frames = encode({"v": V, "a": arr})
    # Large arrays leave the msgpack body; small ones, empty and 0-d stay in it.
    assert len(frames) == (2 if arr.nbytes >= OUT_OF_BAND_BYTES else 1)
    assert_same(decode(frames)["a"], arr)


def test_extreme_values_survive():
    arrs = {"f": np.array([np.nan, np.inf, -np.inf, -0.0, np.finfo(np.float64).tiny]),
            "i": np.array([np.iinfo(np.int64).min, np.iinfo(np.int64).max]),
            "u": np.array([0, np.iinfo(np.uint64).max], np.uint64),
            "h": np.array([np.finfo(np.float16).max, np.nan], np.float16)}
    out = roundtrip({"v": V, **arrs})
    for k, a in arrs.items():
        assert out[k].dtype == a.dtype and out[k].tobytes() == a.tobytes()   # bit-exact, NaN included


def test_non_contiguous_and_big_endian_inputs():
    base = np.arange(100, dtype=np.float64).reshape(10, 10)
    inputs = {
        "transposed": base.T, "strided": base[::2, 1::3], "reversed": base[::-1], "fortran": np.asfortranarray(base),
        "big_endian": np.arange(5, dtype=">i4"), "big_endian_2d": np.arange(12, dtype=">f8").reshape(3, 4).T,
        "big_endian_large": np.arange(40_000, dtype=">f4"), "strided_large": np.arange(80_000, dtype=np.int32)[::2],
    }
    out = roundtrip({"v": V, **inputs})
    for k, a in inputs.items():
        np.testing.assert_array_equal(out[k], a)
        assert out[k].dtype == a.dtype.newbyteorder("<") and out[k].shape == a.shape


def test_inline_out_of_band_threshold_is_exact():
    below = np.zeros(OUT_OF_BAND_BYTES - 1, np.uint8)
    at = np.zeros(OUT_OF_BAND_BYTES, np.uint8)
    assert len(encode({"v": V, "a": below})) == 1
    assert len(encode({"v": V, "a": at})) == 2
    assert len(encode({"v": V, "a": bytes(OUT_OF_BAND_BYTES - 1)})) == 1
    assert len(encode({"v": V, "a": bytes(OUT_OF_BAND_BYTES)})) == 2
    # The threshold is a parameter; 0 sends every array and byte string as a frame, even empty ones.
    msg = {"v": V, "a": np.float32(1.5) * np.ones(3, np.float32), "z": np.array(7), "e": np.zeros(0), "b": b""}
    frames = encode(msg, out_of_band_bytes=0)
    assert len(frames) == 5
    assert_same(decode(frames), msg)


def test_large_bytes_go_out_of_band_from_any_bytes_like():
    big = bytes(range(256)) * 1024
    msg = {"v": V, "b": big, "ba": bytearray(big), "mv": memoryview(big), "small_mv": memoryview(b"abc"),
           "in_list": [big, b"x"]}
    frames = encode(msg)
    assert len(frames) == 5
    assert frames[0].__len__() < 1000          # the 256 KB strings are not in the header
    out = decode(frames)
    assert out["b"] == out["ba"] == out["mv"] == out["in_list"][0] == big
    assert out["small_mv"] == b"abc" and out["in_list"][1] == b"x"


def test_numpy_scalars_and_tuples_encode_as_plain_values():
    out = roundtrip({"v": V, "i": np.int16(3), "f": np.float32(0.5), "b": np.bool_(True), "t": (1, 2)})
    assert out == {"v": V, "i": 3, "f": 0.5, "b": True, "t": [1, 2]}
    assert type(out["i"]) is int and type(out["b"]) is bool


def test_encoding_does_not_copy_large_arrays():
    large = np.arange(OUT_OF_BAND_BYTES, dtype=np.float32)
    frames = encode({"v": V, "large": large})
    assert np.shares_memory(np.frombuffer(frames[1], np.float32), large)


def test_decoded_large_arrays_are_views_of_their_frame():
    large = np.arange(OUT_OF_BAND_BYTES, dtype=np.float32)
    header, data = encode({"v": V, "large": large})
    frame = bytearray(data)
    view = decode([header, frame])["large"]
    assert np.shares_memory(view, np.frombuffer(frame, np.uint8))
    frame[0:4] = np.float32(42).tobytes()   # a write to the frame shows through: no copy was made
    assert view[0] == 42


def test_zero_copy_through_real_zmq_frames():
    # What the backend and the add-on do: send with copy=False, receive zmq.Frame objects.
    ctx = zmq.Context()
    a, b = ctx.socket(zmq.PAIR), ctx.socket(zmq.PAIR)
    try:
        a.bind("inproc://codec-test")
        b.connect("inproc://codec-test")
        large = np.random.default_rng(0).random((1000, 64), dtype=np.float32)
        a.send_multipart(encode(make("submit", msg_id="z", job="j", params={"x": large, "s": "y"})), copy=False)
        frames = b.recv_multipart(copy=False)
        assert all(isinstance(f, zmq.Frame) for f in frames) and len(frames) == 2
        out = validate(decode(frames), requests_only=True)
        np.testing.assert_array_equal(out["params"]["x"], large)
        assert np.shares_memory(out["params"]["x"], np.frombuffer(frames[1].buffer, np.uint8))
    finally:
        a.close(0)
        b.close(0)
        ctx.term()


def test_decode_accepts_every_frame_type():
    data = np.arange(OUT_OF_BAND_BYTES, dtype=np.uint8)
    frames = encode({"v": V, "a": data})
    for conv in (bytes, bytearray, memoryview, lambda f: memoryview(bytes(f))):
        np.testing.assert_array_equal(decode([conv(f) for f in frames])["a"], data)


# -- envelope refusals -------------------------------------------------------------------

def test_envelope_refusals():
    assert code_of([]) == ErrorCode.BAD_REQUEST
    assert code_of([b""]) == ErrorCode.BAD_REQUEST                             # empty header
    assert code_of([b"\xc1"]) == ErrorCode.BAD_REQUEST                         # never-used msgpack byte
    assert code_of([msgpack.packb({"v": V}) + b"\x00"]) == ErrorCode.BAD_REQUEST   # trailing bytes
    assert code_of([msgpack.packb({"v": V, "s": "abc"})[:-1]]) == ErrorCode.BAD_REQUEST   # truncated
    not_utf8 = b"\x82" + msgpack.packb("v") + msgpack.packb(V) + msgpack.packb("s") + b"\xa2\xff\xfe"
    assert code_of([not_utf8]) == ErrorCode.BAD_REQUEST                        # a str that is not UTF-8
    for not_a_map in ([1, 2], "ping", 5, None, b"x"):
        err = refusal([msgpack.packb(not_a_map)])
        assert err.code == ErrorCode.BAD_REQUEST and "map" in err.message
    assert code_of([msgpack.packb({1: 2})]) == ErrorCode.BAD_REQUEST           # non-string keys
    assert code_of([msgpack.packb({"v": V, "p": {b"k": 1}})]) == ErrorCode.BAD_REQUEST   # bytes keys, nested


@pytest.mark.parametrize("v", ["missing", True, "1", 1.0, None, [1]])
def test_missing_or_malformed_version_is_a_bad_request(v):
    msg = {"type": "ping", "id": "abc"} | ({} if v == "missing" else {"v": v})
    err = refusal([msgpack.packb(msg)])
    assert err.code == ErrorCode.BAD_REQUEST and err.field == "v" and err.details["id"] == "abc"
    assert "integer" in err.message


@pytest.mark.parametrize("v", [0, PROTOCOL_VERSION + 1, -1, 2 ** 40])
def test_other_versions_are_a_version_mismatch_that_says_what_to_do(v):
    err = refusal([msgpack.packb({"v": v, "type": "ping", "id": "abc"})])
    assert err.code == ErrorCode.VERSION_MISMATCH and err.details["id"] == "abc"
    assert str(v) in err.message and "update" in err.message.lower()


def test_frame_count_limit():
    limits = Limits(max_frames=3)
    header = msgpack.packb({"v": V, "a": msgpack.ExtType(EXT_BYTES_FRAME, msgpack.packb(1)),
                            "b": msgpack.ExtType(EXT_BYTES_FRAME, msgpack.packb(2))})
    assert decode([header, b"x", b"y"], limits)["b"] == b"y"          # exactly at the limit
    assert code_of([header, b"x", b"y", b"z"], limits) == ErrorCode.TOO_LARGE
    assert code_of([b""] * 2000) == ErrorCode.TOO_LARGE              # default limit, before any parsing


def test_header_size_limit():
    header = msgpack.packb({"v": V, "s": "x" * 1000})
    assert decode([header], Limits(max_header_bytes=len(header)))["s"] == "x" * 1000
    err = refusal([header], Limits(max_header_bytes=len(header) - 1))
    assert err.code == ErrorCode.TOO_LARGE and "frames" in err.message   # tells the sender what to do


def test_total_size_limit_is_addressed_to_the_message_id():
    frames = encode({"v": V, "id": "big", "a": np.zeros(2000, np.float32)}, out_of_band_bytes=100)
    total = sum(len(f) for f in frames)
    assert decode(frames, Limits(max_total_bytes=total))["a"].shape == (2000,)
    err = refusal(frames, Limits(max_total_bytes=total - 1))
    assert err.code == ErrorCode.TOO_LARGE and err.details["id"] == "big" and str(total) in err.message


def test_container_length_limit():
    limits = Limits(max_container_len=10)
    assert decode([msgpack.packb({"v": V, "l": list(range(10))})], limits)["l"] == list(range(10))
    assert code_of([msgpack.packb({"v": V, "l": list(range(11))})], limits) == ErrorCode.BAD_REQUEST
    assert code_of([msgpack.packb({"v": V, **{f"k{i}": i for i in range(11)}})], limits) == ErrorCode.BAD_REQUEST


def test_deep_nesting_is_refused_not_a_recursion_crash():
    deep = b"\x91" * 100_000 + b"\x00"    # [[[[...0...]]]], far deeper than any real message
    header = b"\x82" + msgpack.packb("v") + msgpack.packb(V) + msgpack.packb("x") + deep
    assert code_of([header]) == ErrorCode.BAD_REQUEST


def test_msgpack_timestamps_are_refused():
    # msgpack decodes ext type -1 itself, bypassing our extension hook.
    for where in ({"t": msgpack.Timestamp(1)}, {"l": [1, msgpack.Timestamp(1)]}):
        assert code_of([msgpack.packb({"v": V, **where})]) == ErrorCode.BAD_REQUEST


# -- extension and frame refusals --------------------------------------------------------

def ext(code, payload, **extra):
    return msgpack.packb({"v": V, "a": msgpack.ExtType(code, msgpack.packb(payload)), **extra})


def raw_ext(code: int, payload: bytes) -> bytes:
    """A map {"v": 1, "a": ext} with any type code, negative ones included
    (msgpack.ExtType refuses to build those)."""
    return (b"\x82" + msgpack.packb("v") + msgpack.packb(V) + msgpack.packb("a")
            + b"\xc7" + bytes([len(payload), code & 0xFF]) + payload)


@pytest.mark.parametrize("frames", [
    pytest.param([ext(EXT_ARRAY_INLINE, ["|O", [1], b"x" * 8])], id="object dtype: would mean pickle"),
    pytest.param([ext(EXT_ARRAY_INLINE, ["<U3", [1], b"x" * 12])], id="unicode dtype"),
    pytest.param([ext(EXT_ARRAY_INLINE, [">f4", [1], b"x" * 4])], id="big-endian dtype: encoder swaps"),
    pytest.param([ext(EXT_ARRAY_INLINE, ["<c16", [1], b"x" * 16])], id="complex dtype"),
    pytest.param([ext(EXT_ARRAY_INLINE, ["V8", [1], b"x" * 8])], id="void dtype"),
    pytest.param([ext(EXT_ARRAY_INLINE, [4, [1], b"x" * 4])], id="dtype not a string"),
    pytest.param([ext(EXT_ARRAY_INLINE, ["<f4", [3], b"x" * 8])], id="too few bytes for the shape"),
    pytest.param([ext(EXT_ARRAY_INLINE, ["<f4", [1], b"x" * 8])], id="too many bytes for the shape"),
    pytest.param([ext(EXT_ARRAY_INLINE, ["<f4", [-1], b""])], id="negative size"),
    pytest.param([ext(EXT_ARRAY_INLINE, ["<f4", [True], b"x" * 4])], id="bool size"),
    pytest.param([ext(EXT_ARRAY_INLINE, ["<f4", [1.0], b"x" * 4])], id="float size"),
    pytest.param([ext(EXT_ARRAY_INLINE, ["<f4", [1] * 9, b"x" * 4])], id="too many dimensions"),
    pytest.param([ext(EXT_ARRAY_INLINE, ["<f4", "3", b"x" * 12])], id="shape not a list"),
    pytest.param([ext(EXT_ARRAY_INLINE, ["<f4", [1]])], id="not [dtype, shape, data]"),
    pytest.param([ext(EXT_ARRAY_INLINE, {"dtype": "<f4"})], id="payload a map"),
    pytest.param([ext(EXT_ARRAY_INLINE, ["<f4", [1], "xxxx"])], id="inline data a str"),
    pytest.param([ext(EXT_ARRAY_INLINE, ["<f4", [1], 1]), b"x" * 4], id="inline data a frame index"),
    pytest.param([ext(EXT_ARRAY_FRAME, ["<f4", [1], 1])], id="frame that is not there"),
    pytest.param([ext(EXT_ARRAY_FRAME, ["<f4", [1], 0]), b"x" * 4], id="frame 0 is the header"),
    pytest.param([ext(EXT_ARRAY_FRAME, ["<f4", [1], -1]), b"x" * 4], id="negative frame index"),
    pytest.param([ext(EXT_ARRAY_FRAME, ["<f4", [1], True]), b"x" * 4], id="bool frame index"),
    pytest.param([ext(EXT_ARRAY_FRAME, ["<f4", [1], b"\x01"]), b"x" * 4], id="frame index as bytes"),
    pytest.param([ext(EXT_ARRAY_FRAME, ["<f4", [2], 1]), b"x" * 4], id="frame too short for the shape"),
    pytest.param([ext(EXT_BYTES_FRAME, 5), b"x"], id="bytes frame out of range"),
    pytest.param([ext(EXT_BYTES_FRAME, "1"), b"x"], id="bytes frame index a str"),
    pytest.param([ext(EXT_BYTES_FRAME, 1, b=msgpack.ExtType(EXT_BYTES_FRAME, msgpack.packb(1))), b"x"],
                 id="one frame, two uses"),
    pytest.param([ext(EXT_ARRAY_FRAME, ["|u1", [1], 1], b=msgpack.ExtType(EXT_BYTES_FRAME, msgpack.packb(1))), b"x"],
                 id="one frame, used as array and bytes"),
    pytest.param([msgpack.packb({"v": V}), b"stray"], id="a frame nothing references"),
    pytest.param([ext(EXT_BYTES_FRAME, 1), b"x", b"stray"], id="one referenced, one stray"),
    pytest.param([ext(99, [1])], id="unknown extension"),
    pytest.param([ext(0, [1])], id="extension 0"),
    pytest.param([raw_ext(-5, b"abc")], id="negative extension code"),
    pytest.param([raw_ext(-1, b"abc")], id="timestamp of the wrong length"),
    pytest.param([msgpack.packb({"v": V, "a": msgpack.ExtType(1, b"\xc1")})], id="garbage payload"),
    pytest.param([msgpack.packb({"v": V, "a": msgpack.ExtType(1, b"")})], id="empty payload"),
    pytest.param([msgpack.packb({"v": V, "a": msgpack.ExtType(1, msgpack.packb(["<f4", [1], b"x" * 4]) + b"\x00")})],
                 id="payload with trailing bytes"),
])
def test_malformed_extensions_and_frames_are_refused(frames):
    assert code_of(frames) == ErrorCode.BAD_REQUEST


def test_shapes_too_large_to_index_are_refused():
    # A zero anywhere makes the byte count 0, whatever the other sizes; numpy
    # cannot build such an array, and the refusal must say so, not crash.
    frames = [ext(EXT_ARRAY_INLINE, ["<f4", [0, 2 ** 39, 2 ** 39], b""])]
    assert code_of(frames) == ErrorCode.TOO_LARGE
    assert decode([ext(EXT_ARRAY_INLINE, ["<f4", [0, 1000, 1000], b""])])["a"].shape == (0, 1000, 1000)


def test_one_bad_array_refuses_the_whole_message():
    # A good array next to a bad one: the whole message is refused.
    good = msgpack.ExtType(EXT_ARRAY_INLINE, msgpack.packb(["<f4", [1], b"x" * 4]))
    assert code_of([ext(EXT_ARRAY_INLINE, ["|O", [1], b"x" * 8], g=good)]) == ErrorCode.BAD_REQUEST


def test_unencodable_values_are_an_internal_error():
    for bad in (object(), np.array(["a"], dtype=object), np.array(["abc"]), np.array([1j]),
                np.array(["2020-01-01"], dtype="datetime64[D]")):
        with pytest.raises(ProtocolError) as err:
            encode({"v": V, "x": bad})
        assert err.value.code == ErrorCode.INTERNAL


def _with_id(msg_id: str, value) -> bytes:
    """A header whose id comes before a value that cannot be decoded."""
    return (b"\x84" + msgpack.packb("v") + msgpack.packb(V) + msgpack.packb("type") + msgpack.packb("ping")
            + msgpack.packb("id") + msgpack.packb(msg_id) + msgpack.packb("x") + value)


@pytest.mark.parametrize("frames, limits, code", [
    pytest.param([_with_id("m", msgpack.packb(1))] + [b""] * 3, Limits(max_frames=3), ErrorCode.TOO_LARGE,
                 id="too many frames"),
    pytest.param([_with_id("m", msgpack.packb("s" * 200))], Limits(max_header_bytes=100), ErrorCode.TOO_LARGE,
                 id="header too large"),
    pytest.param([_with_id("m", msgpack.packb(msgpack.ExtType(EXT_BYTES_FRAME, msgpack.packb(1))))], None,
                 ErrorCode.BAD_REQUEST, id="missing frame"),
    pytest.param([_with_id("m", msgpack.packb(msgpack.ExtType(99, b"x")))], None, ErrorCode.BAD_REQUEST,
                 id="unknown extension"),
    pytest.param([_with_id("m", msgpack.packb(msgpack.Timestamp(1)))], None, ErrorCode.BAD_REQUEST,
                 id="timestamp"),
    pytest.param([_with_id("m", b"\xc7\x03\xffabc")], None, ErrorCode.BAD_REQUEST, id="malformed timestamp"),
    pytest.param([_with_id("m", b"\xc1")], None, ErrorCode.BAD_REQUEST, id="garbage after the id"),
])
def test_refusals_carry_the_id_whenever_it_can_be_read(frames, limits, code):
    err = refusal(frames, limits or Limits())
    assert err.code == code and err.details["id"] == "m", str(err)


def test_refusals_of_unreadable_headers_carry_no_id():
    for header in (b"\xc1garbage", msgpack.packb([1, "id"]), msgpack.packb({"id": 7}),
                   msgpack.packb({"id": "x" * 1000}), b"\x81" + msgpack.packb("id")):
        assert refusal([header]).details.get("id") is None
