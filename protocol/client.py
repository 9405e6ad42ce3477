"""A blocking client for the AvatarForge backend.

One DEALER socket, owned by the thread that created the client (ZeroMQ sockets
are not thread-safe): the add-on runs it on its network thread, scripts and
tests call it directly. Depends on pyzmq besides msgpack and numpy.

Jobs outlive connections: the client remembers the jobs it waits on, and
`reattach()` re-fetches them after the backend came back.
"""
from __future__ import annotations

import time
from collections import deque
from typing import Any, Callable

import zmq

from .artifacts import artifact_from_wire
from .codec import Limits, decode, encode
from .errors import ErrorCode, ProtocolError
from .messages import make, validate

ProgressCallback = Callable[[str, float, str], None]  # (job_id, fraction, stage)
JOB_EVENTS = frozenset(["accepted", "progress", "result", "error", "state"])


class BackendUnavailable(ProtocolError):
    """The backend did not answer in time."""

    def __init__(self, address: str, timeout_s: float, doing: str) -> None:
        super().__init__(
            ErrorCode.INTERNAL,
            f"no answer from the AvatarForge backend at {address} within {timeout_s:g} s while {doing}. "
            "Start it (`avatarforge serve`, or 'Start local backend' in the add-on preferences) "
            "or check the address.")
        self.address = address


class Client:
    def __init__(self, address: str = "tcp://127.0.0.1:5757", timeout_s: float = 10.0,
                 client_name: str = "avatarforge-client", client_version: str = "0.1.0",
                 context: zmq.Context | None = None, limits: Limits | None = None) -> None:
        self.address = address
        self.timeout_s = timeout_s
        self.client_name = client_name
        self.client_version = client_version
        self.limits = limits or Limits()
        self.welcome: dict[str, Any] | None = None
        self.pending: set[str] = set()          # jobs this client waits on
        self._ctx = context or zmq.Context.instance()
        self._inbox: deque[dict[str, Any]] = deque()  # job events read while waiting for a reply
        self._sock: zmq.Socket | None = None
        self._open()

    # -- connection ---------------------------------------------------------
    def _open(self) -> None:
        sock = self._ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        # Replies to a dead peer must not pile up forever.
        sock.setsockopt(zmq.SNDHWM, 1000)
        sock.setsockopt(zmq.RCVHWM, 1000)
        sock.setsockopt(zmq.RECONNECT_IVL, 100)
        sock.setsockopt(zmq.RECONNECT_IVL_MAX, 2000)
        sock.connect(self.address)
        self._sock = sock

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close(0)
            self._sock = None

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def reset(self) -> None:
        """Drop the socket and open a fresh one (after the backend went away,
        so stale queued requests are not replayed)."""
        self.close()
        self._inbox.clear()
        self._open()

    def connect(self, timeout_s: float | None = None) -> dict[str, Any]:
        """Say hello; return the backend's `welcome` (versions, pipelines, tiers, devices)."""
        self.welcome = self._request(make("hello", client=self.client_name,
                                          client_version=self.client_version), "welcome", timeout_s)
        return self.welcome

    def ping(self, timeout_s: float | None = None) -> float:
        """Round-trip time in seconds."""
        t0 = time.perf_counter()
        self._request(make("ping"), "pong", timeout_s)
        return time.perf_counter() - t0

    # -- jobs ---------------------------------------------------------------
    def submit(self, job: str, params: dict[str, Any] | None = None, tier: str | None = None,
               timeout_s: float | None = None) -> dict[str, Any]:
        """Submit a job; returns `accepted` (job_id, cached, state). The job's
        progress and result then arrive through `poll`/`wait`."""
        accepted = self._request(make("submit", job=job, params=params or {}, tier=tier), "accepted", timeout_s)
        self.pending.add(accepted["job_id"])
        return accepted

    def cancel(self, job_id: str, timeout_s: float | None = None) -> dict[str, Any]:
        return self._request(make("cancel", job_id=job_id), "state", timeout_s)

    def status(self, job_id: str, timeout_s: float | None = None) -> dict[str, Any]:
        return self._request(make("status", job_id=job_id), "state", timeout_s)

    def list_jobs(self, timeout_s: float | None = None) -> list[dict[str, Any]]:
        return self._request(make("list"), "jobs", timeout_s)["jobs"]

    def fetch(self, job_id: str) -> None:
        """Ask for a job's result, or to be attached to it if it still runs.
        The answer (`result`, `accepted`+progress, or `error`) comes via `poll`."""
        self.pending.add(job_id)
        self._send(make("fetch", job_id=job_id))

    def reattach(self) -> None:
        """Re-fetch every job this client waits on (after a reconnect)."""
        for job_id in sorted(self.pending):
            self._send(make("fetch", job_id=job_id))

    def poll(self, timeout_s: float = 0.0) -> dict[str, Any] | None:
        """The next job event (accepted/progress/result/error/state), or None.
        A `result` has its artifacts rebuilt as data classes."""
        if self._inbox:
            return self._inbox.popleft()
        msg = self._recv(timeout_s)
        while msg is not None and msg["type"] not in JOB_EVENTS:
            msg = self._recv(0.0)  # a late reply to a request we stopped waiting for
        if msg is not None and msg["type"] in ("result", "error"):
            self.pending.discard(msg.get("job_id"))   # finished: nothing left to re-attach to
        return msg

    def wait(self, job_id: str, on_progress: ProgressCallback | None = None,
             timeout_s: float | None = None) -> list[Any]:
        """Block until `job_id` finishes; return its artifacts or raise its error.
        `timeout_s` bounds the silence between two events, not the whole job: the
        backend repeats a waiting or running job's progress every second or so
        (a queued job's stage names its place), so silence means it is gone."""
        silence = self.timeout_s if timeout_s is None else timeout_s
        while True:
            msg = self._next_event_for(job_id, silence)
            if msg is None:
                raise BackendUnavailable(self.address, silence, f"waiting for job {job_id}")
            if msg["type"] == "progress" and on_progress:
                on_progress(job_id, msg["fraction"], msg["stage"])
            elif msg["type"] == "result":
                return msg["artifacts"]
            elif msg["type"] == "error":
                raise ProtocolError.from_fields(msg)

    def run(self, job: str, params: dict[str, Any] | None = None, tier: str | None = None,
            on_progress: ProgressCallback | None = None, timeout_s: float | None = None) -> list[Any]:
        """Submit and wait: the one call a script needs."""
        accepted = self.submit(job, params, tier)
        return self.wait(accepted["job_id"], on_progress, timeout_s)

    # -- plumbing -----------------------------------------------------------
    def _next_event_for(self, job_id: str, timeout_s: float) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout_s
        kept: list[dict[str, Any]] = []
        try:
            while True:
                msg = self.poll(max(0.0, deadline - time.monotonic()))
                if msg is None:
                    return None
                if msg.get("job_id") == job_id:
                    return msg
                kept.append(msg)  # another job's event: keep it for its reader
        finally:
            self._inbox.extendleft(reversed(kept))

    def _send(self, msg: dict[str, Any]) -> None:
        assert self._sock is not None, "client is closed"
        frames = encode(msg)
        self._sock.send_multipart(frames, copy=len(frames) == 1)

    def _recv(self, timeout_s: float) -> dict[str, Any] | None:
        assert self._sock is not None, "client is closed"
        if not self._sock.poll(int(timeout_s * 1000), zmq.POLLIN):
            return None
        frames = self._sock.recv_multipart(copy=False)
        msg = validate(decode(frames, self.limits))
        if msg["type"] == "result":
            msg["artifacts"] = [artifact_from_wire(a) for a in msg["artifacts"]]
        return msg

    def _request(self, msg: dict[str, Any], reply_type: str, timeout_s: float | None) -> dict[str, Any]:
        """Send `msg` and wait for its reply; job events seen meanwhile are kept."""
        timeout = self.timeout_s if timeout_s is None else timeout_s
        self._send(msg)
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            reply = self._recv(max(0.0, remaining)) if remaining > 0 else None
            if reply is None:
                raise BackendUnavailable(self.address, timeout, f"waiting for '{reply_type}'")
            if reply.get("re") == msg["id"]:
                if reply["type"] == "error":
                    raise ProtocolError.from_fields(reply)
                if reply["type"] != reply_type:
                    raise ProtocolError(ErrorCode.INTERNAL,
                                        f"expected '{reply_type}', backend sent '{reply['type']}'")
                return reply
            if reply["type"] in JOB_EVENTS:
                self._inbox.append(reply)

