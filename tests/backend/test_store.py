"""The result store: checksums checked on read, damaged entries quarantined and
recomputed, a size cap with least-recently-used eviction, `avatarforge store`."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from avatarforge.backend.store import ResultStore
from avatarforge.protocol import ErrorCode, ProtocolError, RiggedAvatar
from avatarforge.protocol.client import Client
from tests.support.server import REPO, BackendProcess


def unique(**params):
    """Params that no other test submits (the store would answer them)."""
    return dict(params, seed=time.monotonic_ns() % (2 ** 31))


def entry_dir(store: Path, key: str) -> Path:
    return store / key[:2] / key


# -- damage, as the issue found it, through a real server -------------------------
def truncate_result(d: Path) -> None:
    data = (d / "result.afr").read_bytes()
    (d / "result.afr").write_bytes(data[: len(data) // 2])


def empty_meta(d: Path) -> None:
    (d / "meta.json").write_bytes(b"")


def overwrite_vertices(d: Path) -> None:
    """Every vertex coordinate of the stored tetrahedron becomes 1000 m."""
    data = bytearray((d / "result.afr").read_bytes())
    verts = (np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], np.float32) * 2.5).tobytes()
    at = data.find(verts)
    assert at > 0, "the vertex array is not in the result file"
    data[at:at + len(verts)] = np.full(12, 1000.0, np.float32).tobytes()
    (d / "result.afr").write_bytes(bytes(data))


def overwrite_64_bytes(d: Path) -> None:
    data = bytearray((d / "result.afr").read_bytes())
    at = len(data) // 3
    data[at:at + 64] = os.urandom(64)
    (d / "result.afr").write_bytes(bytes(data))


DAMAGE = {"truncated result": truncate_result, "emptied meta.json": empty_meta,
          "overwritten vertices": overwrite_vertices, "64 overwritten bytes": overwrite_64_bytes}


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    with BackendProcess(tmp_path_factory.mktemp("store")) as proc:
        yield proc


def stored_then_damaged(backend, damage) -> tuple[str, dict]:
    params = unique(steps=2, scale=2.5)
    with Client(backend.address, timeout_s=20) as c:
        job_id = c.submit("steps", params)["job_id"]
        (avatar,) = c.wait(job_id)
    assert avatar.vertices.max() == pytest.approx(2.5)
    DAMAGE[damage](entry_dir(backend.store, job_id))
    return job_id, params


def assert_recomputed(backend, job_id: str, avatar) -> None:
    assert isinstance(avatar, RiggedAvatar)
    np.testing.assert_array_equal(avatar.vertices[:4], np.eye(4, 3, -1, np.float32) * 2.5)
    quarantined = list((backend.store / "quarantine").glob(f"{job_id}*"))
    assert len(quarantined) == 1, quarantined
    assert any("quarantined" in line and job_id in line for line in backend.log)


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_result_fetched_again_is_recomputed(backend, damage):
    job_id, _ = stored_then_damaged(backend, damage)
    with Client(backend.address, timeout_s=20) as c:
        c.fetch(job_id)
        (avatar,) = c.wait(job_id)
        assert_recomputed(backend, job_id, avatar)
        assert c.status(job_id)["state"] == "done"
        c.fetch(job_id)                      # now whole again: served from the store
        (again,) = c.wait(job_id)
        np.testing.assert_array_equal(again.vertices, avatar.vertices)


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_result_submitted_again_is_recomputed(backend, damage):
    job_id, params = stored_then_damaged(backend, damage)
    with Client(backend.address, timeout_s=20) as c:
        accepted = c.submit("steps", params)
        assert accepted["job_id"] == job_id and accepted["cached"] is False
        (avatar,) = c.wait(job_id)
        assert_recomputed(backend, job_id, avatar)


@pytest.mark.parametrize("damage", ["truncated result", "emptied meta.json"])
def test_status_of_a_damaged_result_never_says_done_before_it_is(backend, damage):
    job_id, _ = stored_then_damaged(backend, damage)
    with Client(backend.address, timeout_s=20) as c:
        state = c.status(job_id)
        assert state["job_id"] == job_id and state["state"] in ("queued", "running"), state
        c.fetch(job_id)
        (avatar,) = c.wait(job_id)
        assert_recomputed(backend, job_id, avatar)


def test_a_damaged_result_whose_request_was_not_kept_says_so_and_names_the_job(backend):
    """Without its request the backend cannot recompute it: an error naming the job
    and what to do, never a silent timeout."""
    job_id, params = stored_then_damaged(backend, "truncated result")
    (entry_dir(backend.store, job_id) / "request.afr").unlink()
    with Client(backend.address, timeout_s=20) as c:
        c.fetch(job_id)
        with pytest.raises(ProtocolError) as err:
            c.wait(job_id)
        assert err.value.code == ErrorCode.NOT_FOUND and "damaged" in err.value.message
        assert "submit the request again" in err.value.message.lower()
        (avatar,) = c.run("steps", params)       # submitting it again recomputes it
        np.testing.assert_array_equal(avatar.vertices[:4], np.eye(4, 3, -1, np.float32) * 2.5)


# -- the store itself ---------------------------------------------------------------
def tetra_wire(scale: float, extra_vertices: int = 0) -> list[dict]:
    from tests.support.pipelines import tetra_avatar

    return [tetra_avatar(scale, extra_vertices).to_wire()]


def filled_store(root: Path, n: int, extra_vertices: int = 20_000, **kwargs) -> tuple[ResultStore, list[str]]:
    """`n` results of ~240 KB each, stored a second apart in time (oldest first)."""
    store = ResultStore(root, **kwargs)
    keys = [f"{i:02x}" * 32 for i in range(1, n + 1)]
    t0 = time.time() - 10 * n
    for i, key in enumerate(keys):
        d = store.put(key, {"job": "steps"}, tetra_wire(1.0 + i, extra_vertices))
        os.utime(d / "result.afr", (t0 + 10 * i, t0 + 10 * i))   # last used: in order
    return store, keys


def test_put_then_get_round_trips_and_records_checksums(tmp_path):
    store, (key,) = filled_store(tmp_path, 1)
    meta = json.loads((entry_dir(tmp_path, key) / "meta.json").read_text())
    size = (entry_dir(tmp_path, key) / "result.afr").stat().st_size
    assert meta["files"]["result.afr"]["bytes"] == size and len(meta["files"]["result.afr"]["sha256"]) == 64
    assert len(meta["checksum"]) == 64
    stored = store.get(key)
    assert stored.meta["key"] == key and stored.artifacts[0]["vertices"].shape == (20_004, 3)
    assert store.verify().damaged == {}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_every_damage_kind_is_detected_and_quarantined(tmp_path, damage):
    store = ResultStore(tmp_path)
    from avatarforge.backend.store import DamagedEntry, StoredRequest, write_request

    request = StoredRequest("steps", "cpu", {"steps": 2, "payload": b"x" * 100}, {"pipeline": {"identity": "a"}})
    key = request.key()
    write_request(tmp_path / "req.afr", request)
    store.put(key, {"job": "steps"}, tetra_wire(2.5), request_file=tmp_path / "req.afr")
    DAMAGE[damage](entry_dir(tmp_path, key))
    with pytest.raises(DamagedEntry) as err:
        store.get(key)
    assert err.value.key == key and err.value.reason
    assert err.value.request == request                  # kept whole: it can be recomputed
    assert not store.has(key) and err.value.moved_to.parent == tmp_path / "quarantine"
    assert (err.value.moved_to / "request.afr").is_file()
    assert store.get(key) is None


def test_a_meta_json_edited_by_hand_is_damage_too(tmp_path):
    store, (key,) = filled_store(tmp_path, 1)
    path = entry_dir(tmp_path, key) / "meta.json"
    meta = json.loads(path.read_text())
    meta["files"]["result.afr"]["bytes"] += 1             # a "fix" that would hide a truncation
    path.write_text(json.dumps(meta))
    assert store.verify().damaged == {key: "meta.json does not match its checksum"}


def test_eviction_removes_least_recently_used_first_and_reads_count_as_use(tmp_path):
    store, keys = filled_store(tmp_path, 5)
    size = store.stats().bytes // 5
    store.get(keys[0])                                    # the oldest, used just now
    eviction = store.evict(max_bytes=3 * size + 1000)     # entries differ by a few bytes of meta.json
    assert eviction.removed == keys[1:3] and abs(eviction.freed_bytes - 2 * size) < 1000
    assert [store.has(k) for k in keys] == [True, False, False, True, True]
    assert store.stats().bytes <= 3 * size + 1000


def test_eviction_never_removes_an_entry_being_read(tmp_path):
    store, keys = filled_store(tmp_path, 3)
    with store.pinned(keys[0]):
        eviction = store.evict(max_bytes=0)
    assert eviction.spared == [keys[0]] and eviction.removed == keys[1:]
    assert store.get(keys[0]) is not None


def test_quarantined_entries_are_evicted_first(tmp_path):
    store, keys = filled_store(tmp_path, 3)
    truncate_result(entry_dir(tmp_path, keys[2]))
    assert set(store.verify().damaged) == {keys[2]}
    stats = store.stats()
    assert (stats.entries, stats.quarantined) == (2, 1)
    eviction = store.evict(max_bytes=stats.bytes)
    assert (eviction.quarantine_removed, eviction.removed) == (1, [])
    assert store.stats().quarantined == 0


def test_age_prune(tmp_path):
    store, keys = filled_store(tmp_path, 4)              # last used 40, 30, 20 and 10 s ago
    eviction = store.evict(max_bytes=2 ** 62, unused_for_s=25)
    assert eviction.removed == keys[:2]


def test_a_capped_store_evicts_after_each_put(tmp_path):
    store, keys = filled_store(tmp_path, 6, max_bytes=None)
    size = store.stats().bytes // 6
    capped = ResultStore(tmp_path, max_bytes=4 * size + 1000)
    capped.put("ff" * 32, {"job": "steps"}, tetra_wire(9.0, 20_000))
    capped.evict(keep=("ff" * 32,))
    assert capped.has("ff" * 32) and [capped.has(k) for k in keys] == [False] * 3 + [True] * 3


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-m", "avatarforge.backend.cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


def test_store_cli_stats_prune_verify(tmp_path):
    store, keys = filled_store(tmp_path, 4)
    total = store.stats().bytes
    stats = json.loads(run_cli("store", "stats", "--store", str(tmp_path), "--format", "json").stdout)
    assert stats["entries"] == 4 and stats["bytes"] == total
    assert stats["least_recently_used"] < stats["most_recently_used"]
    overwrite_64_bytes(entry_dir(tmp_path, keys[3]))
    verify = run_cli("store", "verify", "--store", str(tmp_path))
    assert verify.returncode == 1 and "checked 4 results" in verify.stdout and "1 damaged" in verify.stdout
    assert keys[3] in verify.stdout and "sha256" in verify.stdout
    assert run_cli("store", "verify", "--store", str(tmp_path)).returncode == 0   # quarantined: the rest is whole
    prune = run_cli("store", "prune", "--store", str(tmp_path), "--max-bytes", str(total // 2 + 1000))
    assert prune.returncode == 0 and "evicted 1 results and 1 quarantined" in prune.stdout, prune.stdout
    assert [store.has(k) for k in keys] == [False, True, True, False]
    refused = run_cli("store", "prune", "--store", str(tmp_path))
    assert refused.returncode == 2 and "--max-bytes" in refused.stderr


def test_a_server_over_its_cap_evicts_and_keeps_serving(tmp_path):
    """~240 KB results in a 1 MB store: the least recently used go, a result
    fetched meanwhile stays, and every client still gets its result."""
    with BackendProcess(tmp_path / "store", "--store-max-bytes", "1M") as proc, \
            Client(proc.address, timeout_s=20) as c:
        first = c.submit("steps", unique(steps=1, extra_vertices=20_000))["job_id"]
        c.wait(first)
        job_ids = [first]
        for i in range(6):
            job_id = c.submit("steps", unique(steps=1, extra_vertices=20_000, scale=2.0 + i))["job_id"]
            (avatar,) = c.wait(job_id)
            assert avatar.vertices.max() == pytest.approx(2.0 + i)
            job_ids.append(job_id)
            c.fetch(first)                               # the first stays in use
            c.wait(first)
        store = ResultStore(tmp_path / "store")
        kept = [store.has(j) for j in job_ids]
        assert kept[0] and kept[-1] and not all(kept), kept
        assert store.stats().bytes <= 1024 ** 2
        assert any('"event": "store evicted"' in line for line in proc.log)


def test_list_over_a_large_store_does_not_hold_up_ping(tmp_path):
    """Issue 11, defect 10: `list` scanned every stored entry on the socket thread, so a
    ping sent right behind it waited for the whole scan. Now the scan runs on the reader
    thread and the socket thread answers the ping first: an ordering on one connection
    (the scan of 30,000 entries takes far longer than handling one ping), not a timing."""
    from avatarforge.protocol import decode, encode, make

    import zmq

    store = tmp_path / "store"
    for i in range(30_000):
        entry = store / f"{i % 256:02x}" / f"{i:064x}"
        entry.mkdir(parents=True)
        (entry / "meta.json").write_text(json.dumps({"key": f"{i:064x}", "job": "body", "created": i}))
    with BackendProcess(store, plugins=False) as proc:
        sock = zmq.Context.instance().socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(proc.address)
        try:
            sock.send_multipart(encode(make("list", id="the-list")))
            sock.send_multipart(encode(make("ping", id="the-ping")))
            order = []
            while len(order) < 2 and sock.poll(60_000):
                reply = decode(sock.recv_multipart())
                order.append((reply["type"], reply.get("re")))
        finally:
            sock.close()
    assert order == [("pong", "the-ping"), ("jobs", "the-list")]
