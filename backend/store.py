"""The result store: finished results on disk, content-addressed.

A result's key is a digest of the normalised request and the identities of the
components that made it (core/components.py), so a repeated request is answered
from disk and a restarted backend still has every finished result. Each entry
is a folder with `meta.json` and `result.afr` (the artifacts, encoded with our
codec's frames); both are written to a temporary name and renamed, so a crash
never leaves a half-written result that looks finished.
"""
from __future__ import annotations

import hashlib
import json
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from avatarforge.protocol import decode, encode, make
from avatarforge.protocol.codec import Limits

from .core.files import atomic_write

_MAGIC = b"AFRESULT1\n"
_LEN = struct.Struct("<Q")


def _feed(h: "hashlib._Hash", obj: Any) -> None:
    """Hash plain data canonically: map order and container types do not
    matter, numbers do (1 and 1.0 are the same request)."""
    if isinstance(obj, dict):
        h.update(b"{")
        for k in sorted(obj, key=str):
            _feed(h, str(k))
            _feed(h, obj[k])
        h.update(b"}")
    elif isinstance(obj, (list, tuple)):
        h.update(b"[")
        for v in obj:
            _feed(h, v)
        h.update(b"]")
    elif isinstance(obj, np.ndarray):
        h.update(f"a{obj.dtype.str}{obj.shape}".encode())
        h.update(np.ascontiguousarray(obj).tobytes())
    elif isinstance(obj, (bytes, bytearray, memoryview)):
        h.update(b"b%d:" % len(obj))
        h.update(obj)
    elif isinstance(obj, bool) or obj is None:
        h.update(repr(obj).encode())
    elif isinstance(obj, (int, float, np.integer, np.floating)):
        h.update(b"n" + repr(float(obj)).encode())
    else:
        h.update(b"s" + str(obj).encode())


def _json_summary(value: Any) -> Any:
    """What meta.json says of a value JSON cannot hold: a size and digest for
    bytes (an uploaded file must not be written out again as text), shape and
    dtype for arrays."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    if isinstance(value, np.ndarray):
        return {"array": list(value.shape), "dtype": str(value.dtype)}
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def request_key(job: str, tier: str, params: dict[str, Any], components: dict[str, dict[str, str]]) -> str:
    """The store key (hex sha256) of a normalised request run by `components`
    (slot -> role, name, identity: core.components.used_components)."""
    h = hashlib.sha256()
    _feed(h, {"job": job, "tier": tier, "params": params, "components": components})
    return h.hexdigest()


@dataclass
class StoredResult:
    meta: dict[str, Any]
    artifacts: list[dict[str, Any]]   # wire form


class ResultStore:
    def __init__(self, root: Path, limits: Limits | None = None) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.limits = limits or Limits(max_total_bytes=2 ** 62)

    def _dir(self, key: str) -> Path:
        if not (len(key) == 64 and all(c in "0123456789abcdef" for c in key)):
            raise ValueError(f"not a store key: {key!r}")
        return self.root / key[:2] / key

    def has(self, key: str) -> bool:
        d = self._dir(key)
        return (d / "meta.json").is_file() and (d / "result.afr").is_file()

    def meta(self, key: str) -> dict[str, Any] | None:
        try:
            return json.loads((self._dir(key) / "meta.json").read_text())
        except (OSError, ValueError):
            return None

    def put(self, key: str, meta: dict[str, Any], artifacts: list[dict[str, Any]]) -> Path:
        """Write a finished result; the meta file lands last and marks it complete."""
        d = self._dir(key)
        d.mkdir(parents=True, exist_ok=True)
        frames = encode(make("result", job_id=key, artifacts=artifacts))
        atomic_write(d / "result.afr", _pack_frames(frames))
        meta = dict(meta, key=key, stored=time.time())
        atomic_write(d / "meta.json", [json.dumps(meta, default=_json_summary, indent=1).encode()])
        return d

    def get(self, key: str) -> StoredResult | None:
        if not self.has(key):
            return None
        d = self._dir(key)
        meta = self.meta(key)
        if meta is None:
            return None
        frames = _unpack_frames((d / "result.afr").read_bytes())
        msg = decode(frames, self.limits)
        return StoredResult(meta=meta, artifacts=msg["artifacts"])

    def entries(self, limit: int = 100) -> Iterator[dict[str, Any]]:
        """Metadata of stored results, newest first."""
        metas = sorted(self.root.glob("??/*/meta.json"), key=lambda p: p.stat().st_mtime, reverse=True)
        for path in metas[:limit]:
            try:
                yield json.loads(path.read_text())
            except (OSError, ValueError):
                continue


def _pack_frames(frames: list[Any]) -> list[Any]:
    parts: list[Any] = [_MAGIC, _LEN.pack(len(frames))]
    for f in frames:
        view = memoryview(f).cast("B")
        parts += [_LEN.pack(view.nbytes), view]
    return parts


def _unpack_frames(data: bytes) -> list[memoryview]:
    view = memoryview(data)
    if not data.startswith(_MAGIC):
        raise ValueError("not an AvatarForge result file")
    pos = len(_MAGIC)
    (n,) = _LEN.unpack_from(view, pos)
    pos += _LEN.size
    frames = []
    for _ in range(n):
        (size,) = _LEN.unpack_from(view, pos)
        pos += _LEN.size
        if pos + size > len(view):
            raise ValueError("result file is truncated")
        frames.append(view[pos:pos + size])
        pos += size
    return frames
