"""Jobs survive the backend: accepted jobs are journaled, and a backend killed
mid-job (SIGKILL) runs them again after a restart on the same store, under the
same job ids, while its clients only wait."""
from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from avatarforge.backend import jobs
from avatarforge.backend.jobs import Journal
from avatarforge.backend.store import StoredRequest
from avatarforge.protocol import ErrorCode, ProtocolError
from avatarforge.protocol.client import BackendUnavailable, Client
from tests.support.server import BackendProcess


def unique(**params):
    return dict(params, seed=time.monotonic_ns() % (2 ** 31))


def wait_through_restarts(client: Client, job_id: str, within_s: float = 180.0) -> list:
    """What a script does: wait; when the backend fell silent, ask again (fetch) and wait on."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            return client.wait(job_id, timeout_s=3)
        except BackendUnavailable:
            assert time.monotonic() < deadline, f"job {job_id} never finished"
            client.reattach()


def wait_for_stage(client: Client, job_id: str, stage: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        event = client.poll(5)
        if event and event.get("job_id") == job_id and event.get("stage") == stage:
            return
    raise AssertionError(f"job {job_id} never reached '{stage}'")


def journal_folder(store: Path) -> Path:
    return store / "journal"


def test_jobs_of_a_killed_backend_finish_after_a_restart(tmp_path):
    """One worker: a job with an upload runs, another waits behind it. SIGKILL, restart
    on the same store and address: both finish under their job ids, the upload intact."""
    store = tmp_path / "store"
    payload = np.arange(3_000_000, dtype=np.uint8).tobytes()   # an upload (3 MB), re-run from the journal
    first = BackendProcess(store, "--workers", "1").start()
    try:
        with Client(first.address, timeout_s=20) as c:
            running = c.submit("steps", unique(steps=30, step_s=0.1, scale=3.0, payload=payload))["job_id"]
            queued = c.submit("steps", unique(steps=2, scale=4.0))["job_id"]
            wait_for_stage(c, running, "step 3 of 30")
            first.stop(signal.SIGKILL)
            assert first.proc.returncode == -signal.SIGKILL
            assert not (store / running[:2] / running).exists()   # it never finished
            second = BackendProcess(store, "--workers", "1").start(bind=first.address)
            try:
                (a,) = wait_through_restarts(c, running)
                (b,) = wait_through_restarts(c, queued)
                assert a.vertices.max() == pytest.approx(3.0) and b.vertices.max() == pytest.approx(4.0)
                assert c.status(running)["state"] == "done" and c.status(queued)["state"] == "done"
                recovered = [json.loads(line)["job_id"] for line in second.log if '"job recovered"' in line]
                assert recovered == [running, queued]
                # The upload came back whole: the result's request hashes to the job id.
                from avatarforge.backend.store import read_request
                request = read_request(store / running[:2] / running / "request.afr", running)
                assert request.params["payload"] == payload
                # Compaction: nothing left unfinished, nothing left in the journal.
                time.sleep(0.5)
                assert (journal_folder(store) / "jobs.log").read_text() == ""
                assert list((journal_folder(store) / "requests").iterdir()) == []
            finally:
                second.stop()
    finally:
        first.stop()


def test_a_job_stopped_by_a_clean_shutdown_runs_again_at_the_next_start(tmp_path):
    store = tmp_path / "store"
    with BackendProcess(store) as first, Client(first.address, timeout_s=20) as c:
        job_id = c.submit("steps", unique(steps=100, step_s=0.05, scale=6.0))["job_id"]
        wait_for_stage(c, job_id, "step 2 of 100")
        assert first.stop(signal.SIGTERM) == 0
        while (event := c.poll(5)) is not None and event["type"] != "error":
            pass
        assert event is not None and event["details"]["reason"] == "shutdown", event
        assert "runs again when the backend restarts" in event["message"]
        second = BackendProcess(store).start(bind=first.address)   # started once: not also a `with`
        try:
            c.fetch(job_id)
            (avatar,) = wait_through_restarts(c, job_id)
            assert avatar.vertices.max() == pytest.approx(6.0)
            assert any('"job recovered"' in line and job_id in line for line in second.log)
        finally:
            second.stop()


def test_a_job_that_cannot_run_again_is_reported_with_the_reason(tmp_path):
    store = tmp_path / "store"
    with BackendProcess(store) as first, Client(first.address, timeout_s=20) as c:
        job_id = c.submit("steps", unique(steps=200, step_s=0.05))["job_id"]
        wait_for_stage(c, job_id, "step 2 of 200")
        first.stop(signal.SIGKILL)
    (journal_folder(store) / "requests" / f"{job_id}.afr").write_bytes(b"AFRESULT1\n garbled")
    with BackendProcess(store) as second, Client(second.address, timeout_s=20) as c:
        state = c.status(job_id)
        assert state["state"] == "failed" and state["error"]["details"]["reason"] == "restart"
        assert "cannot run again" in state["error"]["message"] and "request file" in state["error"]["message"]
        c.fetch(job_id)
        with pytest.raises(ProtocolError) as err:
            c.wait(job_id)
        assert err.value.code == ErrorCode.NOT_FOUND and "Submit the request again" in err.value.message
    assert Journal(journal_folder(store)).unfinished() == []


# -- the journal itself ------------------------------------------------------------
def request(i: int, upload_bytes: int = 1000) -> StoredRequest:
    return StoredRequest("steps", "cpu", {"steps": i, "payload": bytes([i]) * upload_bytes},
                         {"pipeline": {"identity": "x"}})


def test_the_journal_keeps_unfinished_jobs_across_instances(tmp_path):
    journal = Journal(tmp_path)
    keys = [request(i).key() for i in range(3)]
    for i, key in enumerate(keys):
        journal.accept(key, request(i))
    journal.end(keys[1])
    reopened = Journal(tmp_path)
    assert [r["id"] for r in reopened.unfinished()] == [keys[0], keys[2]]
    assert reopened.request(keys[2]) == request(2)
    assert not reopened.request_path(keys[1]).exists()


def test_a_torn_last_line_is_ignored(tmp_path):
    journal = Journal(tmp_path)
    key = request(1).key()
    journal.accept(key, request(1))
    with open(journal.log_path, "ab") as f:
        f.write(b'{"op": "ended", "id": "' + key[:10].encode())   # killed mid-append
    assert [r["id"] for r in Journal(tmp_path).unfinished()] == [key]


def test_the_journal_is_compacted(tmp_path, monkeypatch):
    monkeypatch.setattr(jobs, "JOURNAL_COMPACT_LINES", 40)   # each line is fsync'd: keep the test short
    journal = Journal(tmp_path)
    keep = request(0).key()
    journal.accept(keep, request(0))
    for i in range(1, 40):
        key = request(i).key()
        journal.accept(key, request(i))
        journal.end(key)
    lines = journal.log_path.read_text().splitlines()
    assert len(lines) < 40 and [r["id"] for r in Journal(tmp_path).unfinished()] == [keep]
    journal.end(keep)
    assert journal.log_path.read_text() == ""


def test_a_damaged_request_file_is_refused_with_a_reason(tmp_path):
    journal = Journal(tmp_path)
    key = request(1, 200_000).key()
    journal.accept(key, request(1, 200_000))             # the upload travels as its own frame, last
    data = bytearray(journal.request_path(key).read_bytes())
    data[-10] ^= 0xFF                                    # a byte of the upload
    journal.request_path(key).write_bytes(bytes(data))
    with pytest.raises(ValueError, match="does not hash to the job id"):
        journal.request(key)
