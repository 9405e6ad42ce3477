"""The result store: finished results on disk, content-addressed.

A result's key is a digest of the normalised request and the identities of the
components that made it (core/components.py), so a repeated request is answered
from disk and a restarted backend still has every finished result. Each entry
is a folder with `meta.json`, `result.afr` (the artifacts, encoded with our
codec's frames) and, when it was kept, `request.afr` (the request itself,
uploads included, so a damaged result can be recomputed); each is written to a
temporary name and renamed, so a crash never leaves a half-written result that
looks finished.

Disks and people damage files all the same: meta.json records the size and
sha256 of result.afr and a checksum of itself, checked on every read. A damaged
entry is moved into `quarantine/` (kept for a look, logged) and reads as
damaged, with its request when that is whole (the request hashes to the key),
so the server recomputes it. The store holds at most `max_bytes`: past that the
least recently used results go (a read marks an entry used; an entry being read
is never evicted), quarantined entries first.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from avatarforge.protocol import ProtocolError, decode, encode, make
from avatarforge.protocol.codec import Limits

from .core.files import atomic_write

log = logging.getLogger("avatarforge.store")
_MAGIC = b"AFRESULT1\n"
_LEN = struct.Struct("<Q")
META, RESULT, REQUEST = "meta.json", "result.afr", "request.afr"
QUARANTINE = "quarantine"


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


@dataclass
class StoredRequest:
    """A normalised request as a job runs it: all it takes to run it again."""
    job: str
    tier: str
    params: dict[str, Any]
    components: dict[str, dict[str, str]]

    def key(self) -> str:
        return request_key(self.job, self.tier, self.params, self.components)


class DamagedEntry(Exception):
    """A stored entry failed its checks and was moved to `moved_to` (None when it
    could not be moved). `request` is its request when that was kept and whole,
    so the entry can be recomputed under the same key."""

    def __init__(self, key: str, reason: str, request: StoredRequest | None = None,
                 moved_to: Path | None = None) -> None:
        super().__init__(f"the stored result {key} is damaged: {reason}")
        self.key, self.reason, self.request, self.moved_to = key, reason, request, moved_to


class _Damage(ValueError):
    """Why an entry failed a check (internal: the public form is DamagedEntry)."""


@dataclass
class EntryInfo:
    name: str       # the key, or a quarantined entry's folder name
    bytes: int      # every file in its folder
    used: float     # last written or read (result.afr's mtime)


@dataclass
class StoreStats:
    entries: int
    bytes: int
    quarantined: int
    quarantined_bytes: int
    least_recently_used: float | None   # unix times
    most_recently_used: float | None
    max_bytes: int | None


@dataclass
class Eviction:
    removed: list[str] = field(default_factory=list)       # keys, least recently used first
    freed_bytes: int = 0
    quarantine_removed: int = 0
    spared: list[str] = field(default_factory=list)        # would have gone, but being read


@dataclass
class Verification:
    checked: int = 0
    bytes: int = 0
    damaged: dict[str, str] = field(default_factory=dict)  # key -> why


def write_request(path: Path, request: StoredRequest) -> None:
    """Write a request (uploads as frames) atomically: the journal's copy, later the entry's."""
    msg = make("submit", job=request.job, tier=request.tier, params=request.params, components=request.components)
    atomic_write(path, _pack_frames(encode(msg)))


def read_request(path: Path, key: str, limits: Limits | None = None) -> StoredRequest:
    """The request in `path`, checked against its key (the key is its digest, so a
    request that hashes to it is whole); ValueError saying why it cannot be used."""
    try:
        msg = decode(_unpack_frames(path.read_bytes()), limits or Limits(max_total_bytes=2 ** 62))
        request = StoredRequest(str(msg["job"]), str(msg["tier"]), dict(msg["params"]), dict(msg["components"]))
    except FileNotFoundError:
        raise ValueError("its request was not kept") from None
    except (OSError, ValueError, KeyError, TypeError, struct.error, ProtocolError) as exc:
        raise ValueError(f"its request file cannot be read ({type(exc).__name__}: {exc})") from None
    if request.key() != key:
        raise ValueError("its request file is damaged (it does not hash to the job id)")
    return request


def _meta_checksum(meta: dict[str, Any]) -> str:
    text = json.dumps({k: v for k, v in meta.items() if k != "checksum"}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _is_key(name: str) -> bool:
    return len(name) == 64 and all(c in "0123456789abcdef" for c in name)


class ResultStore:
    def __init__(self, root: Path, limits: Limits | None = None, max_bytes: int | None = None) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.limits = limits or Limits(max_total_bytes=2 ** 62)
        self.max_bytes = max_bytes          # None: no cap
        self._lock = threading.Lock()       # the index and the pins; readers and writers are side threads
        self._pins: Counter[str] = Counter()
        self._index: dict[str, EntryInfo] | None = None   # built by the first eviction or stats

    def _dir(self, key: str) -> Path:
        if not _is_key(key):
            raise ValueError(f"not a store key: {key!r}")
        return self.root / key[:2] / key

    def keys(self) -> list[str]:
        """Every entry's key, whole or damaged."""
        return [d.name for d in self.root.glob("??/*") if _is_key(d.name) and d.is_dir()]

    def has(self, key: str) -> bool:
        """Whether an entry for `key` is on disk, whole or damaged (a read tells)."""
        d = self._dir(key)
        return (d / META).is_file() or (d / RESULT).is_file()

    def meta(self, key: str) -> dict[str, Any] | None:
        """The entry's metadata when its meta.json is whole (the result file is not read)."""
        try:
            return self._checked_meta(self._dir(key), key)
        except _Damage:
            return None

    # -- writing --------------------------------------------------------------
    def put(self, key: str, meta: dict[str, Any], artifacts: list[dict[str, Any]],
            request_file: Path | None = None) -> Path:
        """Write a finished result; `request_file` (the journal's copy of its request)
        moves in beside it. The meta file lands last and marks it complete."""
        d = self._dir(key)
        d.mkdir(parents=True, exist_ok=True)
        parts = _pack_frames(encode(make("result", job_id=key, artifacts=artifacts)))
        digest, size = hashlib.sha256(), 0
        for part in parts:
            digest.update(part)
            size += memoryview(part).nbytes
        atomic_write(d / RESULT, parts)
        if request_file is not None and request_file.exists():
            os.replace(request_file, d / REQUEST)
        meta = dict(meta, key=key, stored=time.time(), files={RESULT: {"bytes": size, "sha256": digest.hexdigest()}})
        meta = json.loads(json.dumps(meta, default=_json_summary))   # as meta.json holds it: its checksum is of that
        meta["checksum"] = _meta_checksum(meta)
        atomic_write(d / META, [json.dumps(meta, indent=1).encode()])
        with self._lock:
            if self._index is not None and (info := _entry_info(d)) is not None:
                self._index[key] = info
        return d

    # -- reading, checked -----------------------------------------------------
    def get(self, key: str) -> StoredResult | None:
        """The stored result, its checksums checked; None when not stored. A damaged
        entry is quarantined and raises DamagedEntry (with its request when kept)."""
        d = self._dir(key)
        with self.pinned(key):
            if not self.has(key):
                return None
            try:
                meta = self._checked_meta(d, key)
                msg = self._decoded(self._checked_result(d, meta))
            except _Damage as damage:
                raise self.quarantine(key, str(damage)) from None
            self._touch(key, d)
        return StoredResult(meta=meta, artifacts=msg["artifacts"])

    def check(self, key: str, with_request: bool = True) -> dict[str, Any] | None:
        """The entry's metadata once its checksums are checked (the result is not
        decoded); None when not stored; DamagedEntry (quarantined) when damaged."""
        d = self._dir(key)
        with self.pinned(key):
            if not self.has(key):
                return None
            try:
                meta = self._checked_meta(d, key)
                self._checked_result(d, meta)
            except _Damage as damage:
                raise self.quarantine(key, str(damage), with_request) from None
        return meta

    def _checked_meta(self, d: Path, key: str) -> dict[str, Any]:
        try:
            text = (d / META).read_bytes()
        except FileNotFoundError:
            raise _Damage("meta.json is missing") from None
        except OSError as exc:
            raise _Damage(f"meta.json cannot be read ({exc.strerror or exc})") from None
        try:
            meta = json.loads(text)
        except ValueError:
            raise _Damage("meta.json is empty" if not text.strip() else "meta.json is not JSON") from None
        if not isinstance(meta, dict) or meta.get("key") != key:
            raise _Damage("meta.json does not name this entry")
        if meta.get("checksum") != _meta_checksum(meta):
            raise _Damage("meta.json does not match its checksum" if "checksum" in meta
                          else "meta.json has no checksum (written before checksums were kept)")
        return meta

    def _checked_result(self, d: Path, meta: dict[str, Any]) -> bytes:
        expected = (meta.get("files") or {}).get(RESULT)
        if not isinstance(expected, dict):
            raise _Damage("meta.json records no checksum of result.afr")
        try:
            data = (d / RESULT).read_bytes()
        except FileNotFoundError:
            raise _Damage("result.afr is missing") from None
        except OSError as exc:
            raise _Damage(f"result.afr cannot be read ({exc.strerror or exc})") from None
        if len(data) != expected.get("bytes"):
            raise _Damage(f"result.afr is {len(data)} bytes, {expected.get('bytes')} were stored (truncated or grown)")
        if hashlib.sha256(data).hexdigest() != expected.get("sha256"):
            raise _Damage("result.afr does not match its sha256 (bytes overwritten)")
        return data

    def _decoded(self, data: bytes) -> dict[str, Any]:
        try:
            return decode(_unpack_frames(data), self.limits)
        except (ValueError, struct.error, ProtocolError) as exc:   # checksum right, content not: a writer's bug
            raise _Damage(f"result.afr cannot be decoded ({exc})") from None

    def quarantine(self, key: str, reason: str, with_request: bool = True) -> DamagedEntry:
        """Move a damaged entry into quarantine/ and log it; the DamagedEntry to raise
        carries its request when that was kept and whole (read first: it moves too)."""
        d = self._dir(key)
        request, why_not = None, ""
        if with_request:
            try:
                request = read_request(d / REQUEST, key, self.limits)
            except ValueError as exc:
                why_not = str(exc)
        moved_to: Path | None = self.root / QUARANTINE / f"{key}-{time.time_ns()}"
        try:
            moved_to.parent.mkdir(parents=True, exist_ok=True)
            os.replace(d, moved_to)
        except OSError as exc:
            log.error("damaged entry not moved", extra={"fields": {"key": key, "error": str(exc)}})
            moved_to = None
        with self._lock:
            if self._index is not None:
                self._index.pop(key, None)
        log.warning("stored result quarantined", extra={"fields": {
            "key": key, "reason": reason, "moved_to": str(moved_to), "recomputable": request is not None,
            **({"not_recomputable": why_not} if why_not else {})}})
        return DamagedEntry(key, reason, request, moved_to)

    # -- use, size, eviction --------------------------------------------------
    @contextlib.contextmanager
    def pinned(self, key: str) -> Iterator[None]:
        """While inside, eviction leaves `key` alone (a client is being sent it)."""
        with self._lock:
            self._pins[key] += 1
        try:
            yield
        finally:
            with self._lock:
                self._pins[key] -= 1
                if self._pins[key] <= 0:
                    del self._pins[key]

    def _touch(self, key: str, d: Path) -> None:
        """Mark an entry used now (its result file's mtime), for least-recently-used eviction."""
        now = time.time()
        with contextlib.suppress(OSError):
            os.utime(d / RESULT, (now, now))
        with self._lock:
            if self._index is not None and key in self._index:
                self._index[key].used = now

    def _entries_index(self) -> dict[str, EntryInfo]:
        """Size and last use of every entry, read from disk once (the lock is held)."""
        if self._index is None:
            self._index = {d.name: info for d in self.root.glob("??/*")
                           if _is_key(d.name) and (info := _entry_info(d)) is not None}
        return self._index

    def _quarantined(self) -> list[EntryInfo]:
        folder = self.root / QUARANTINE
        found = [info for d in (folder.iterdir() if folder.is_dir() else ()) if (info := _entry_info(d))]
        return sorted(found, key=lambda i: i.used)

    def stats(self) -> StoreStats:
        with self._lock:
            index = list(self._entries_index().values())
        quarantined = self._quarantined()
        used = [i.used for i in index]
        return StoreStats(entries=len(index), bytes=sum(i.bytes for i in index), quarantined=len(quarantined),
                          quarantined_bytes=sum(q.bytes for q in quarantined),
                          least_recently_used=min(used, default=None), most_recently_used=max(used, default=None),
                          max_bytes=self.max_bytes)

    def evict(self, max_bytes: int | None = None, unused_for_s: float | None = None,
              keep: tuple[str, ...] = ()) -> Eviction:
        """Remove entries until the store holds at most `max_bytes` (default: its cap)
        and, when `unused_for_s` is given, every entry unused for that long:
        quarantined entries first, then results least recently used first. Entries
        being read and those in `keep` stay."""
        limit = self.max_bytes if max_bytes is None else max_bytes
        out = Eviction()
        now = time.time()
        with self._lock:
            index = self._entries_index()
            quarantined = self._quarantined()
            total = sum(i.bytes for i in index.values()) + sum(q.bytes for q in quarantined)

            def must_go(info: EntryInfo) -> bool:
                return (limit is not None and total > limit) or (
                    unused_for_s is not None and now - info.used > unused_for_s)

            for q in quarantined:                 # they serve nobody
                if must_go(q):
                    shutil.rmtree(self.root / QUARANTINE / q.name, ignore_errors=True)
                    total -= q.bytes
                    out.freed_bytes += q.bytes
                    out.quarantine_removed += 1
            for info in sorted(index.values(), key=lambda i: i.used):
                if not must_go(info):
                    break                         # the rest were used later
                if info.name in self._pins or info.name in keep:
                    out.spared.append(info.name)
                    continue
                shutil.rmtree(self._dir(info.name), ignore_errors=True)
                del index[info.name]
                total -= info.bytes
                out.freed_bytes += info.bytes
                out.removed.append(info.name)
        if out.removed or out.quarantine_removed:
            log.info("store evicted", extra={"fields": {
                "entries": len(out.removed), "quarantined": out.quarantine_removed, "freed_bytes": out.freed_bytes,
                "bytes_left": total, "max_bytes": limit}})
        return out

    def verify(self) -> Verification:
        """Check every entry's checksums; quarantine the damaged."""
        out = Verification()
        for key in self.keys():
            out.checked += 1
            try:
                meta = self.check(key, with_request=False)
            except DamagedEntry as damage:
                out.damaged[key] = damage.reason
                continue
            if meta is not None:
                out.bytes += int(meta["files"][RESULT]["bytes"])
        return out

    def entries(self, limit: int = 100) -> Iterator[dict[str, Any]]:
        """Metadata of stored results, newest first (entries whose meta.json is not whole are left out)."""
        metas = sorted(self.root.glob("??/*/meta.json"), key=lambda p: p.stat().st_mtime, reverse=True)
        for path in metas[:limit]:
            try:
                yield json.loads(path.read_text())
            except (OSError, ValueError):
                continue


def _entry_info(d: Path) -> EntryInfo | None:
    """An entry folder's size (every file, a killed writer's temporary ones too) and
    last use (its result file's mtime, else the folder's)."""
    try:
        sizes = {f.name: f.stat() for f in d.iterdir()}
        used = sizes[RESULT].st_mtime if RESULT in sizes else d.stat().st_mtime
    except (FileNotFoundError, NotADirectoryError):
        return None
    return EntryInfo(d.name, sum(st.st_size for st in sizes.values()), used)


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
