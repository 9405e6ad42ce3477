"""Frames <-> messages.

A message is a msgpack map (frame 0). numpy arrays and byte strings inside it
travel as msgpack ext types: small ones inline, large ones as extra ZeroMQ
frames referenced by index, so a 100 MB vertex buffer is never copied into the
msgpack body and pyzmq can send it zero-copy.

Only msgpack and numpy are used: the add-on vendors this package.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import msgpack
import numpy as np

from .errors import ErrorCode, ProtocolError

PROTOCOL_VERSION = 1

EXT_ARRAY_INLINE = 1   # payload: msgpack [dtype, shape, bytes]
EXT_ARRAY_FRAME = 2    # payload: msgpack [dtype, shape, frame index]
EXT_BYTES_FRAME = 3    # payload: msgpack frame index

# Arrays and byte strings at least this large go as their own frame.
OUT_OF_BAND_BYTES = 64 * 1024

# Plain-data dtypes only: an object dtype would let a peer run pickle.
_ALLOWED_DTYPES = frozenset(
    ["|b1", "|u1", "|i1", "<u2", "<i2", "<u4", "<i4", "<u8", "<i8", "<f2", "<f4", "<f8"])
_MAX_NDIM = 8


@dataclass(frozen=True)
class Limits:
    """Bounds a decoder enforces before it allocates anything."""
    max_header_bytes: int = 16 * 1024 * 1024
    max_total_bytes: int = 2 * 1024 ** 3
    max_frames: int = 1024
    max_container_len: int = 1_000_000


DEFAULT_LIMITS = Limits()


def _dtype_str(arr: np.ndarray) -> str:
    dt = arr.dtype.newbyteorder("<") if arr.dtype.byteorder == ">" else arr.dtype
    return dt.str


def encode(msg: dict[str, Any], out_of_band_bytes: int = OUT_OF_BAND_BYTES) -> list[Any]:
    """Encode a message into frames: [msgpack header, *buffers].

    Buffers are returned as memoryviews over the caller's arrays (no copy);
    keep the arrays alive until the frames are sent.
    """
    frames: list[Any] = [b""]

    def default(obj: Any) -> Any:
        if isinstance(obj, np.ndarray):
            if obj.dtype.byteorder == ">":
                obj = obj.astype(obj.dtype.newbyteorder("<"))
            # Not np.ascontiguousarray: it turns 0-d arrays into 1-d ones.
            arr = obj if obj.flags.c_contiguous else obj.copy(order="C")
            dt = _dtype_str(arr)
            if dt not in _ALLOWED_DTYPES:
                raise ProtocolError(ErrorCode.INTERNAL, f"arrays of dtype {arr.dtype} cannot be sent")
            shape = list(arr.shape)
            if arr.nbytes >= out_of_band_bytes:
                frames.append(memoryview(arr).cast("B") if arr.nbytes else b"")
                return msgpack.ExtType(EXT_ARRAY_FRAME, msgpack.packb([dt, shape, len(frames) - 1]))
            return msgpack.ExtType(EXT_ARRAY_INLINE, msgpack.packb([dt, shape, arr.tobytes()]))
        if isinstance(obj, (np.integer,)):
            return int(obj)
        if isinstance(obj, (np.floating,)):
            return float(obj)
        if isinstance(obj, np.bool_):
            return bool(obj)
        if isinstance(obj, _Blob):
            frames.append(obj.data)
            return msgpack.ExtType(EXT_BYTES_FRAME, msgpack.packb(len(frames) - 1))
        if isinstance(obj, (tuple, set, frozenset)):
            return list(obj)
        raise TypeError(f"cannot encode {type(obj).__name__}")

    try:
        prepared = _route_large_bytes(msg, out_of_band_bytes)
        frames[0] = msgpack.packb(prepared, default=default, use_bin_type=True)
    except (TypeError, ValueError, OverflowError, RecursionError) as exc:  # unknown types, too deep, ints > 64 bit
        raise ProtocolError(ErrorCode.INTERNAL, f"message cannot be encoded: {exc}") from exc
    return frames


class _Blob:
    __slots__ = ("data",)

    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        self.data = data


def _route_large_bytes(obj: Any, limit: int) -> Any:
    """Wrap large byte strings so `default` can send them as frames (msgpack
    packs bytes itself and would never call `default` for them)."""
    if isinstance(obj, dict):
        return {k: _route_large_bytes(v, limit) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_route_large_bytes(v, limit) for v in obj]
    if isinstance(obj, (bytes, bytearray, memoryview)) and len(obj) >= limit:
        return _Blob(obj)
    if isinstance(obj, memoryview):
        return obj.tobytes()
    return obj


def _frame_bytes(frame: Any) -> memoryview:
    """A read-only view of a frame: pyzmq Frame, bytes or memoryview."""
    buf = getattr(frame, "buffer", frame)
    return memoryview(buf).cast("B") if not isinstance(buf, (bytes, bytearray)) else memoryview(buf)


def decode(frames: Sequence[Any], limits: Limits = DEFAULT_LIMITS) -> dict[str, Any]:
    """Decode frames into a message, enforcing `limits`.

    Raises ProtocolError (BAD_REQUEST, TOO_LARGE, VERSION_MISMATCH); the error's
    details carry the message `id` whenever it could be read, so the peer can be
    answered instead of left waiting.
    """
    try:
        return _decode(frames, limits)
    except ProtocolError as exc:
        if exc.details.get("id") is None and frames:
            msg_id = _peek_id(frames[0])
            if msg_id is not None:
                exc.details["id"] = msg_id
        raise


def _decode(frames: Sequence[Any], limits: Limits) -> dict[str, Any]:
    if not frames:
        raise ProtocolError(ErrorCode.BAD_REQUEST, "empty message: expected at least one frame")
    if len(frames) > limits.max_frames:
        raise ProtocolError(ErrorCode.TOO_LARGE,
                            f"message has {len(frames)} frames; at most {limits.max_frames} are accepted")
    views = [_frame_bytes(f) for f in frames]
    total = sum(v.nbytes for v in views)
    header = views[0]
    if total > limits.max_total_bytes:
        raise ProtocolError(ErrorCode.TOO_LARGE,
                            f"message is {total} bytes; this side accepts at most {limits.max_total_bytes}")
    if header.nbytes > limits.max_header_bytes:
        raise ProtocolError(ErrorCode.TOO_LARGE,
                            f"message header is {header.nbytes} bytes; at most {limits.max_header_bytes} "
                            "(send large arrays as frames)")
    used: set[int] = set()

    def ext_hook(code: int, data: bytes) -> Any:
        return _decode_ext(code, data, views, used, limits)

    n = limits.max_container_len
    try:
        msg = msgpack.unpackb(
            header, raw=False, strict_map_key=True, ext_hook=ext_hook, use_list=True,
            object_hook=_check_map, list_hook=_check_list,
            max_str_len=limits.max_header_bytes,
            max_bin_len=limits.max_header_bytes, max_array_len=n, max_map_len=n,
            max_ext_len=limits.max_header_bytes)
    except ProtocolError:
        raise
    except (ValueError, TypeError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError,
            UnicodeDecodeError, RecursionError) as exc:
        raise ProtocolError(ErrorCode.BAD_REQUEST,
                            f"message is not valid msgpack ({type(exc).__name__}: {exc})") from None
    if not isinstance(msg, dict):
        raise ProtocolError(ErrorCode.BAD_REQUEST,
                            f"message must be a msgpack map, got {type(msg).__name__}")
    msg_id = answerable_id(msg.get("id"))
    v = msg.get("v")
    if not isinstance(v, int) or isinstance(v, bool):
        raise ProtocolError(ErrorCode.BAD_REQUEST,
                            "field 'v' (the protocol version, an integer) is missing or not an integer; "
                            f"this side speaks protocol {PROTOCOL_VERSION}", field="v", id=msg_id)
    if v != PROTOCOL_VERSION:
        raise ProtocolError(ErrorCode.VERSION_MISMATCH,
                            f"peer speaks protocol {v}, this side speaks {PROTOCOL_VERSION}: "
                            "update the add-on and the backend to the same AvatarForge release",
                            field="v", id=msg_id)
    if len(used) != len(frames) - 1:
        raise ProtocolError(ErrorCode.BAD_REQUEST,
                            f"message has {len(frames) - 1} data frames but references {len(used)}",
                            id=msg_id)
    return msg


def _check_map(d: dict[Any, Any]) -> dict[Any, Any]:
    """Field names are strings (strict_map_key still lets bytes through), and no
    value is a msgpack Timestamp: msgpack decodes ext type -1 itself, without
    calling ext_hook, so this is where a foreign extension is caught."""
    for k, v in d.items():
        if type(k) is not str:
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"map keys must be strings, got {type(k).__name__}")
        if type(v) is msgpack.Timestamp:
            raise ProtocolError(ErrorCode.BAD_REQUEST,
                                f"field {k!r}: msgpack timestamps are not part of the protocol")
    return d


def _check_list(items: list[Any]) -> list[Any]:
    if msgpack.Timestamp in map(type, items):
        raise ProtocolError(ErrorCode.BAD_REQUEST, "msgpack timestamps are not part of the protocol")
    return items


# How much of a header the id is looked for in: encode() writes v, type and id
# first, so they sit in the first few bytes of any message this protocol makes.
PEEK_ID_BYTES = 64 * 1024
MAX_ID_LEN = 128    # a longer id could not be sent back as `re` (messages validates ids with it too)


def answerable_id(value: Any) -> str | None:
    """`value` if a reply may name it in `re` (a reply with an invalid `re` is
    refused by the client, which would then wait in vain), else None."""
    return value if isinstance(value, str) and 0 < len(value) <= MAX_ID_LEN else None


def _peek_id(header_frame: Any) -> str | None:
    """The id of a message that failed to decode, to address the refusal.

    Reads only the first PEEK_ID_BYTES of the header, as a stream: values other
    than `id` are skipped without being built (so no extension, timestamp or
    large container is decoded), and whatever does not fit or does not parse
    means there is no id to answer.
    """
    reader = msgpack.Unpacker(raw=False, max_buffer_size=PEEK_ID_BYTES, strict_map_key=False)
    try:
        reader.feed(_frame_bytes(header_frame)[:PEEK_ID_BYTES])
        for _ in range(reader.read_map_header()):
            key = reader.unpack()
            if key == "id":
                return answerable_id(reader.unpack())
            reader.skip()
    except Exception:  # truncated, garbage, too deep, not a map: the refusal goes out without an id
        return None
    return None


def _decode_ext(code: int, data: bytes, views: list[memoryview], used: set[int], limits: Limits) -> Any:
    try:
        payload = msgpack.unpackb(data, raw=False, max_bin_len=limits.max_header_bytes,
                                  max_array_len=_MAX_NDIM + 3)
    except Exception as exc:  # any garbage inside an ext is the peer's error
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"malformed extension payload ({exc})") from None
    if code == EXT_BYTES_FRAME:
        idx = _frame_index(payload, views, used)
        return views[idx].tobytes()
    if code not in (EXT_ARRAY_INLINE, EXT_ARRAY_FRAME):
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"unknown msgpack extension type {code}")
    if not (isinstance(payload, list) and len(payload) == 3):
        raise ProtocolError(ErrorCode.BAD_REQUEST, "array extension must be [dtype, shape, data]")
    dt, shape, data_ref = payload
    if not isinstance(dt, str) or dt not in _ALLOWED_DTYPES:
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"array dtype {dt!r} is not allowed")
    if (not isinstance(shape, list) or len(shape) > _MAX_NDIM
            or not all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 2 ** 40 for s in shape)):
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"array shape {shape!r} is not a list of sizes")
    dtype = np.dtype(dt)
    count = 1
    for s in shape:
        count *= s
    # With a zero in the shape the byte count matches whatever the other sizes
    # are, and numpy then refuses to build an array too big to index.
    span = dtype.itemsize
    for s in shape:
        span *= max(s, 1)
    if span > limits.max_total_bytes:
        raise ProtocolError(ErrorCode.TOO_LARGE, f"array shape {shape} is larger than this side accepts")
    if code == EXT_ARRAY_INLINE:
        if not isinstance(data_ref, bytes):
            raise ProtocolError(ErrorCode.BAD_REQUEST, "inline array data must be bytes")
        buf: Any = data_ref
        nbytes = len(data_ref)
    else:
        idx = _frame_index(data_ref, views, used)
        buf = views[idx]
        nbytes = buf.nbytes
    if count * dtype.itemsize != nbytes:
        raise ProtocolError(ErrorCode.BAD_REQUEST,
                            f"array of shape {shape} and dtype {dt} needs {count * dtype.itemsize} bytes, "
                            f"got {nbytes}")
    # frombuffer keeps the frame alive and does not copy; the result is read-only.
    return np.frombuffer(buf, dtype=dtype, count=count).reshape(tuple(shape))


def _frame_index(ref: Any, views: list[memoryview], used: set[int]) -> int:
    if not isinstance(ref, int) or isinstance(ref, bool) or not 1 <= ref < len(views):
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"frame reference {ref!r} is out of range")
    if ref in used:
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"frame {ref} is referenced twice")
    used.add(ref)
    return ref


def frames_nbytes(frames: Iterable[Any]) -> int:
    return sum(_frame_bytes(f).nbytes for f in frames)
