"""The server as users meet it: a real `avatarforge serve` process over real ZeroMQ."""
from __future__ import annotations

import signal
import sys
import time

import msgpack
import numpy as np
import pytest
import zmq

from avatarforge.protocol import ErrorCode, ProtocolError, RiggedAvatar, encode, make
from avatarforge.backend.jobs import Job
from avatarforge.protocol.client import Client
from tests.support.server import BackendProcess


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    models = tmp_path_factory.mktemp("models")   # empty: no SMPL files, no CLIP checkpoint
    with BackendProcess(tmp_path_factory.mktemp("store"), "--models-dir", str(models),
                        "--clip-dir", str(models / "clip")) as proc:
        yield proc


@pytest.fixture
def client(backend):
    with Client(backend.address, timeout_s=20) as c:
        c.connect()
        yield c


def unique(**params):
    """Params that no other test submits (the store would answer them)."""
    return dict(params, seed=time.monotonic_ns() % (2 ** 31))


def raw_exchange(address: str, frames: list[bytes], timeout_s: float = 10) -> dict:
    """Send frames as they are; return the decoded reply."""
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(address)
    try:
        sock.send_multipart(frames)
        assert sock.poll(int(timeout_s * 1000)), "no reply to a malformed message"
        reply = sock.recv_multipart()
        return msgpack.unpackb(reply[0], raw=False)
    finally:
        sock.close(0)


def test_welcome_lists_pipelines_tiers_and_devices(client):
    welcome = client.welcome
    assert welcome["type"] == "welcome"
    assert {"body", "steps", "text_avatar", "text_motion", "motion_import"} <= set(welcome["pipelines"])
    gpu = welcome["pipelines"]["steps"]["tiers"]["gpu"]
    assert (gpu["available"], gpu["reason"]) == (False, "test tier without a GPU")
    assert gpu["components"]["device"] == {"role": "device", "name": "gpu", "identity": None}
    assert welcome["pipelines"]["body"]["tiers"]["anny"]["available"] is True
    assert welcome["pipelines"]["body"]["phenotypes"]["age"] == pytest.approx(2 / 3, abs=0.01)   # UI defaults
    assert "cpu" in welcome["devices"]


def test_welcome_lists_each_tiers_components_and_why_a_tier_cannot_run(client):
    """The test backend's models folder is empty: no SMPL files, no CLIP checkpoint."""
    pipelines = client.welcome["pipelines"]
    anny = pipelines["body"]["tiers"]["anny"]
    assert anny["embedded"] is True and "reason" not in anny
    assert {slot: (c["role"], c["name"]) for slot, c in anny["components"].items()} == {
        "pipeline": ("pipeline", "body"), "body_model": ("body_model", "anny"), "painter": ("painter", "skin")}
    assert all(len(c["identity"]) == 16 for c in anny["components"].values())
    smpl = pipelines["body"]["tiers"]["smpl"]
    assert smpl["available"] is False and "SMPL_NEUTRAL" in smpl["reason"]
    assert smpl["components"]["body_model"]["identity"] is None
    assert smpl["components"]["painter"] == anny["components"]["painter"]      # one component, one identity
    text = pipelines["text_avatar"]["tiers"]
    assert text["minilm"]["available"] is True and text["clip"]["available"] is False
    assert "CLIP" in text["clip"]["reason"] and text["clip"]["components"]["encoder"]["identity"] is None
    assert text["clip"]["components"]["painter"]["name"] == text["minilm"]["components"]["painter"]["name"]
    assert text["clip"]["components"]["word_encoder"] == text["minilm"]["components"]["encoder"]
    assert text["minilm"]["components"]["body_model"] == anny["components"]["body_model"]
    motion = pipelines["text_motion"]["tiers"]["minilm"]["components"]
    assert {"pipeline", "encoder", "motion_generator", "retargeter"} <= set(motion)


def test_results_record_the_components_that_made_them(client):
    (avatar,) = client.run("steps", unique(steps=1))
    cpu = client.welcome["pipelines"]["steps"]["tiers"]["cpu"]["components"]
    assert avatar.provenance["components"] == cpu


def test_submit_streams_progress_then_result(client):
    accepted = client.submit("steps", unique(steps=6, step_s=0.05))
    assert accepted["state"] == "queued" and accepted["cached"] is False
    seen = []
    (avatar,) = client.wait(accepted["job_id"], on_progress=lambda j, f, s: seen.append((f, s)))
    assert isinstance(avatar, RiggedAvatar) and avatar.skeleton.joint_names == ["root", "tip"]
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and len(seen) >= 6
    assert "step 6 of 6" in [s for _, s in seen]
    assert client.status(accepted["job_id"])["state"] == "done"


def test_repeated_request_is_served_from_store(client):
    params = unique(steps=2, scale=2.0)
    first = client.submit("steps", params)
    (a,) = client.wait(first["job_id"])
    again = client.submit("steps", dict(reversed(list(params.items()))))  # same request, other key order
    assert again["job_id"] == first["job_id"] and again["cached"] is True
    (b,) = client.wait(again["job_id"])
    np.testing.assert_array_equal(a.vertices, b.vertices)


def test_large_arrays_travel_as_frames(client):
    (avatar,) = client.run("steps", unique(steps=1, extra_vertices=2_000_000))
    assert avatar.vertices.shape == (2_000_004, 3)
    assert avatar.skin_weights.shape == (2_000_004, 1)


def test_cancel_running_job(client):
    job_id = client.submit("steps", unique(steps=400, step_s=0.05))["job_id"]
    while client.poll(10)["type"] != "progress":
        pass
    state = client.cancel(job_id)
    assert state["state"] == "running" and state["stage"] == "cancelling"
    with pytest.raises(ProtocolError) as err:
        client.wait(job_id)
    assert err.value.code == ErrorCode.CANCELLED
    assert client.status(job_id)["state"] == "cancelled"
    client.ping()


def test_cancel_queued_job_answers_at_once(backend, client):
    blocker = client.submit("steps", unique(steps=40, step_s=0.05))["job_id"]
    queued = client.submit("steps", unique(steps=1))["job_id"]
    assert client.cancel(queued)["state"] == "cancelled"
    with pytest.raises(ProtocolError) as err:
        client.wait(queued)
    assert err.value.code == ErrorCode.CANCELLED
    client.cancel(blocker)


def test_ping_and_status_answer_while_a_job_runs(client):
    job_id = client.submit("steps", unique(steps=60, step_s=0.05))["job_id"]
    for _ in range(5):
        client.ping(timeout_s=2.0)   # would time out if the job blocked the loop
        assert client.status(job_id, timeout_s=2.0)["state"] in ("queued", "running")
    client.cancel(job_id)


def test_two_clients_at_once(backend):
    with Client(backend.address, timeout_s=20) as a, Client(backend.address, timeout_s=20) as b:
        ja = a.submit("steps", unique(steps=5, step_s=0.02, scale=3.0))["job_id"]
        jb = b.submit("steps", unique(steps=5, step_s=0.02, scale=4.0))["job_id"]
        (ra,), (rb,) = a.wait(ja), b.wait(jb)
        assert ra.vertices.max() == pytest.approx(3.0) and rb.vertices.max() == pytest.approx(4.0)


def test_same_request_from_two_clients_runs_once(backend):
    params = unique(steps=10, step_s=0.03)
    with Client(backend.address, timeout_s=20) as a, Client(backend.address, timeout_s=20) as b:
        ja = a.submit("steps", params)["job_id"]
        jb = b.submit("steps", params)["job_id"]
        assert ja == jb
        assert len(a.wait(ja)) == len(b.wait(jb)) == 1


def test_client_disconnects_and_reattaches_with_fetch(backend):
    with Client(backend.address, timeout_s=20) as first:
        job_id = first.submit("steps", unique(steps=20, step_s=0.05))["job_id"]
    # The submitting client is gone; the job goes on. A new client re-attaches.
    with Client(backend.address, timeout_s=20) as second:
        second.fetch(job_id)
        (avatar,) = second.wait(job_id)
        assert isinstance(avatar, RiggedAvatar)
        assert any(j["job_id"] == job_id and j["state"] == "done" for j in second.list_jobs())


def queue_places(stages):
    """The distinct 'N' of successive 'queued: N jobs ahead' stages (a keep-alive repeats one)."""
    places = [int(s.split()[1]) for s in stages if s.startswith("queued: ")]
    return [n for i, n in enumerate(places) if i == 0 or n != places[i - 1]]


def test_queued_jobs_report_their_place_and_never_fall_silent(tmp_path):
    """One worker, four ~1 s jobs at once, waited on last first: the last waits ~3 s,
    twice the client's silence timeout. The backend is busy, not gone: all finish."""
    with BackendProcess(tmp_path / "store", "--workers", "1") as proc, \
            Client(proc.address, timeout_s=1.5) as c:
        job_ids = [c.submit("steps", unique(steps=5, step_s=0.2, scale=float(i + 1)))["job_id"] for i in range(4)]
        stages = {job_id: [] for job_id in job_ids}
        for i, job_id in reversed(list(enumerate(job_ids))):
            (avatar,) = c.wait(job_id, on_progress=lambda j, f, s: stages[j].append((f, s)))
            assert avatar.vertices.max() == pytest.approx(i + 1)
        assert all(f == 0.0 for job_id in job_ids for f, s in stages[job_id] if s.startswith("queued"))
        places = [queue_places(s for _, s in stages[job_id]) for job_id in job_ids]
        assert places == [[], [1], [2, 1], [3, 2, 1]], places   # told when queued and as each ahead ends


def test_a_long_silent_step_still_keeps_the_client_waiting(backend):
    """Each 2 s step reports nothing while it runs: the backend repeats the job's
    progress, so a client with a shorter silence timeout does not give up."""
    with Client(backend.address, timeout_s=1.8) as c:
        seen = []
        (avatar,) = c.run("steps", unique(steps=2, step_s=2.0), on_progress=lambda j, f, s: seen.append(s))
        assert isinstance(avatar, RiggedAvatar)
        assert seen.count("step 1 of 2") >= 2   # the first step's progress, then its repeat


def test_errors_are_typed_and_the_server_keeps_serving(client):
    cases = [
        (lambda: client.submit("no-such-job", {}), ErrorCode.UNSUPPORTED, "job"),
        (lambda: client.submit("steps", {"steps": 0}), ErrorCode.BAD_REQUEST, "steps"),
        (lambda: client.submit("steps", {"colour": 1}), ErrorCode.BAD_REQUEST, "colour"),
        (lambda: client.submit("steps", {}, tier="gpu"), ErrorCode.MODEL_MISSING, "tier"),
        (lambda: client.submit("steps", {}, tier="tpu"), ErrorCode.BAD_REQUEST, "tier"),
        (lambda: client.submit("body", {"model": "anny"}, tier="smpl"), ErrorCode.BAD_REQUEST, "tier"),
        (lambda: client.status("0" * 64), ErrorCode.NOT_FOUND, "job_id"),
        (lambda: client.cancel("not-a-key"), ErrorCode.NOT_FOUND, "job_id"),
    ]
    for call, code, field in cases:
        with pytest.raises(ProtocolError) as err:
            call()
        assert err.value.code == code and err.value.field == field, str(err.value)
        assert field in err.value.message or code in (ErrorCode.NOT_FOUND, ErrorCode.MODEL_MISSING)
    client.ping()


@pytest.mark.parametrize("fail, code", [("crash", ErrorCode.INTERNAL), ("oom", ErrorCode.OUT_OF_MEMORY),
                                        ("bad_request", ErrorCode.BAD_REQUEST)])
def test_failing_job_reports_typed_error(client, fail, code):
    job_id = client.submit("steps", unique(steps=1, fail=fail))["job_id"]
    with pytest.raises(ProtocolError) as err:
        client.wait(job_id)
    assert err.value.code == code and err.value.message
    assert client.status(job_id)["state"] == "failed"
    client.ping()


def _valid_header(**fields) -> bytes:
    return encode(make("ping", msg_id="m1", **fields))[0]


@pytest.mark.parametrize("frames, code", [
    ([b"\xc1garbage"], "BAD_REQUEST"),
    ([_valid_header()[:-3]], "BAD_REQUEST"),                       # truncated msgpack
    ([msgpack.packb([1, 2, 3])], "BAD_REQUEST"),                   # not a map
    ([msgpack.packb({"v": 1, "type": 5, "id": "x"})], "UNSUPPORTED"),
    ([msgpack.packb({"v": 1, "type": "submit", "id": "x", "job": 7})], "BAD_REQUEST"),
    ([msgpack.packb({"v": 1, "type": "welcome", "id": "x"})], "UNSUPPORTED"),   # a reply sent as a request
    ([msgpack.packb({"v": 99, "type": "ping", "id": "x"})], "VERSION_MISMATCH"),
    ([_valid_header(), b"stray frame"], "BAD_REQUEST"),
    ([b""], "BAD_REQUEST"),
])
def test_malformed_frames_get_an_error_and_the_server_still_answers(backend, frames, code):
    reply = raw_exchange(backend.address, frames)
    assert reply["type"] == "error" and reply["code"] == code, reply
    assert reply["message"]
    with Client(backend.address, timeout_s=5) as c:
        c.ping()


def _header_with(msg_id: str, **fields) -> bytes:
    """A submit header as a peer could write it, id before the fields."""
    return msgpack.packb({"v": 1, "type": "submit", "id": msg_id, "job": "steps", "params": fields})


def _malformed_timestamp_header(msg_id: str) -> bytes:
    """A timestamp ext (-1) of the wrong length, which msgpack itself cannot decode."""
    return _header_with(msg_id, at=msgpack.ExtType(1, b"abc"))[:-6] + b"\xc7\x03\xffabc"


@pytest.mark.parametrize("msg_id, frames, code", [
    pytest.param("many", [_header_with("many")] + [b""] * 1100, "TOO_LARGE", id="too many frames"),
    pytest.param("missing", [_header_with("missing", blob=msgpack.ExtType(3, msgpack.packb(1)))], "BAD_REQUEST",
                 id="missing frame"),
    pytest.param("ext", [_header_with("ext", blob=msgpack.ExtType(42, b"x"))], "BAD_REQUEST", id="bad extension type"),
    pytest.param("time", [_header_with("time", at=msgpack.Timestamp(1))], "BAD_REQUEST", id="timestamp"),
    pytest.param("badtime", [_malformed_timestamp_header("badtime")], "BAD_REQUEST", id="malformed timestamp"),
])
def test_refusals_answer_the_request_they_refuse(backend, msg_id, frames, code):
    reply = raw_exchange(backend.address, frames)
    assert reply["type"] == "error" and reply["code"] == code and reply["re"] == msg_id, reply


def test_a_refusal_never_names_an_id_too_long_to_answer(backend):
    """An `re` over the id limit would make the reply itself invalid to the client."""
    reply = raw_exchange(backend.address, [msgpack.packb({"v": 1, "type": "ping", "id": "x" * 200})])
    assert reply["code"] == "BAD_REQUEST" and reply.get("field") == "id" and "re" not in reply, reply


def test_client_gets_a_refusal_instead_of_waiting(backend):
    """A header over the 16 MiB limit: the client hears TOO_LARGE, not 'start the backend'."""
    with Client(backend.address, timeout_s=5) as c:
        with pytest.raises(ProtocolError) as err:
            c.submit("steps", {"note": "x" * (17 * 1024 ** 2)})
        assert err.value.code == ErrorCode.TOO_LARGE and "no answer" not in err.value.message
        c.ping()


def test_version_mismatch_says_what_to_do(backend):
    reply = raw_exchange(backend.address, [msgpack.packb({"v": 2, "type": "hello", "id": "h", "client": "x"})])
    assert reply["code"] == "VERSION_MISMATCH" and reply["re"] == "h"
    assert "update" in reply["message"].lower()


def test_oversize_message_is_refused(tmp_path):
    with BackendProcess(tmp_path / "store", "--max-message-bytes", "1000000") as small:
        big = make("submit", msg_id="big", job="steps", params={"blob": np.zeros(400_000, np.float32)})
        reply = raw_exchange(small.address, encode(big))
        assert reply["code"] == "TOO_LARGE" and reply["re"] == "big"
        with Client(small.address, timeout_s=5) as c:
            c.ping()


def test_restarted_server_serves_finished_results_from_store(tmp_path):
    store = tmp_path / "store"
    params = unique(steps=3, scale=5.0)
    with BackendProcess(store) as first, Client(first.address, timeout_s=20) as c:
        job_id = c.submit("steps", params)["job_id"]
        (before,) = c.wait(job_id)
    assert first.proc.returncode == 0
    with BackendProcess(store) as second, Client(second.address, timeout_s=20) as c:
        c.fetch(job_id)
        (after,) = c.wait(job_id)
        np.testing.assert_array_equal(before.vertices, after.vertices)
        again = c.submit("steps", params)
        assert again["cached"] is True and again["job_id"] == job_id
        assert c.status(job_id)["state"] == "done"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_clean_shutdown_on_signal_with_a_running_job(tmp_path, sig):
    proc = BackendProcess(tmp_path / "store").start()
    with Client(proc.address, timeout_s=20) as c:
        job_id = c.submit("steps", unique(steps=1000, step_s=0.05))["job_id"]
        assert c.poll(10) is not None   # running
        assert proc.stop(sig, timeout_s=20) == 0
        # The client learns its job was interrupted by the shutdown, not cancelled by a user.
        events = []
        while (event := c.poll(2)) is not None:
            events.append(event)
        last = events[-1]
        assert last["type"] == "error" and last["code"] == "CANCELLED" and last["job_id"] == job_id
        assert last["details"]["reason"] == "shutdown"
        assert job_id not in c.pending
    assert any('"event": "stopped"' in line for line in proc.log)


def _rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        kb = next(line for line in status if line.startswith("VmRSS:")).split()[1]
    return int(kb) * 1024


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_failed_uploads_do_not_stay_in_memory(backend, client):
    """Finished jobs stay listed, but not with the bytes they were given."""
    client.run("steps", unique(steps=1, payload=b"warm" * 1000))   # first-use allocations out of the measure
    before = _rss_bytes(backend.proc.pid)
    for i in range(5):
        payload = np.full(50 * 1024 ** 2, i, np.uint8).tobytes()
        job_id = client.submit("steps", unique(steps=1, step_s=0.0, fail="bad_request", payload=payload))["job_id"]
        del payload
        with pytest.raises(ProtocolError):
            client.wait(job_id)
    client.ping()
    grown = _rss_bytes(backend.proc.pid) - before
    assert grown < 60 * 1024 ** 2, f"the server kept {grown / 1024 ** 2:.0f} MB after 5 failed 50 MB uploads"


@pytest.mark.parametrize("state", ["done", "failed", "cancelled"])
def test_a_finished_job_keeps_a_summary_of_its_params_not_their_buffers(state):
    upload = b"\x00" * 1_000_000
    job = Job(id="k", job="motion_import", tier="cpu", components={},
              params={"file": upload, "frames": np.zeros((10, 3), np.float32), "nested": [{"raw": upload}],
                      "fps": 30, "name": "walk"})
    job.end(state)
    assert (job.state, job.finished is not None) == (state, True)
    assert job.params["fps"] == 30 and job.params["name"] == "walk"
    kept = [job.params["file"], job.params["frames"], job.params["nested"][0]["raw"]]
    assert all(isinstance(v, str) and len(v) < 100 for v in kept), kept
    assert job.state_fields()["state"] == state


def test_errors_about_a_job_name_it(client):
    client.fetch("f" * 64)
    event = client.poll(10)
    assert event["type"] == "error" and event["code"] == "NOT_FOUND" and event["job_id"] == "f" * 64
    assert "f" * 64 not in client.pending


def test_body_job_end_to_end(client):
    """The first real pipeline through the real server: Anny → RiggedAvatar."""
    stages = []
    (avatar,) = client.run("body", {"phenotypes": {"height": 0.3}, "texture_size": 256},
                           on_progress=lambda j, f, s: stages.append(s), timeout_s=300)
    assert isinstance(avatar, RiggedAvatar) and avatar.body_model == "anny"
    assert len(avatar.skeleton) == 104
    assert len(set(stages)) >= 3   # several named stages reached the client
    assert avatar.materials[0].role == "base_color"
    assert avatar.provenance and avatar.params["phenotypes"]["height"] == pytest.approx(0.3)
