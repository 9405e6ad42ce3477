"""The add-on's link to the backend: a worker thread that owns the ZeroMQ
DEALER socket (through the shared blocking `protocol.client.Client`).

The main thread never touches the socket. It sends commands (submit, cancel,
reconnect) through a queue and drains `LinkEvent`s from another queue on a
`bpy.app.timers` tick (see jobs.py), so `bpy` is only touched on the main
thread and a slow or missing backend never freezes Blender.

The worker reconnects on its own: when the backend stops answering it retries
every `retry_s`, and once it is back (same process or a restarted one) it
re-attaches to every job it was following by id; a job the restarted backend
no longer knows is submitted again (job ids are content addresses, so the
same request finds its stored result or runs once more).

This module does not import bpy, so it can be exercised without Blender.
"""
from __future__ import annotations

import itertools
import queue
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

from .protocol import ErrorCode, ProtocolError
from .protocol.client import BackendUnavailable, Client

# Link states, as shown in the UI.
DISCONNECTED = "disconnected"   # not started, or stopped by the user
CONNECTING = "connecting"       # trying to reach the backend
CONNECTED = "connected"
UNREACHABLE = "unreachable"     # tried and failed; retrying every retry_s
INCOMPATIBLE = "incompatible"   # the backend refused us (e.g. VERSION_MISMATCH); not retried

MAX_RESUMES = 3   # how often a job stopped by the backend is submitted again

_local_ids = itertools.count(1)


@dataclass
class LinkEvent:
    """Something the main thread should know. `kind` is one of: state
    (link state changed; data: state, message, welcome), accepted, progress,
    result, error, job_state (backend job events, by job_id), submit_failed,
    cancel_failed (by local_id / job_id)."""
    kind: str
    job_id: str | None = None
    local_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Request:
    local_id: str
    job: str
    params: dict[str, Any]
    tier: str | None
    queued_at: float


class BackendLink:
    """One backend connection on its own thread. Thread-safe public methods;
    results come back through `drain()`."""

    def __init__(self, address: str, connect_timeout_s: float = 3.0, request_timeout_s: float = 10.0,
                 heartbeat_s: float = 2.0, retry_s: float = 2.0, client_version: str = "0.1.0",
                 client_factory: Callable[..., Client] = Client) -> None:
        self.address = address
        self.connect_timeout_s = connect_timeout_s
        self.request_timeout_s = request_timeout_s
        self.heartbeat_s = heartbeat_s
        self.retry_s = retry_s
        self.client_version = client_version
        self._client_factory = client_factory
        self._commands: "queue.SimpleQueue[tuple[str, Any]]" = queue.SimpleQueue()
        self._events: "queue.SimpleQueue[LinkEvent]" = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Read by the main thread; written only by the worker (plain attribute
        # assignment is atomic in CPython).
        self.state = DISCONNECTED
        self.message = ""
        self.welcome: dict[str, Any] | None = None
        # Worker-thread state.
        self._held: list[_Request] = []              # submits waiting for a connection
        self._requests: dict[str, _Request] = {}     # job_id -> what made it, to resubmit after a restart
        self._session: str | None = None
        self._last_heard = 0.0
        self._cancel_requested: set[str] = set()     # jobs the user cancelled
        self._interrupted: set[str] = set()           # jobs the backend stopped without being asked
        self._resumes: dict[str, int] = {}            # job_id -> how often we submitted it again

    # -- main-thread API ----------------------------------------------------
    def start(self) -> "BackendLink":
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="avatarforge-link", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self._thread = None
        self.state, self.message = DISCONNECTED, "disconnected"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def submit(self, job: str, params: dict[str, Any], tier: str | None = None) -> str:
        """Queue a job; returns a local id that the events for it carry until
        the backend gives it a job id (`accepted`)."""
        local_id = f"local-{next(_local_ids)}"
        self._commands.put(("submit", _Request(local_id, job, dict(params), tier, time.monotonic())))
        return local_id

    def cancel(self, job_id: str) -> None:
        self._commands.put(("cancel", job_id))

    def reconnect(self) -> None:
        self._commands.put(("reconnect", None))

    def drain(self, limit: int = 1000) -> list[LinkEvent]:
        out: list[LinkEvent] = []
        while len(out) < limit:
            try:
                out.append(self._events.get_nowait())
            except queue.Empty:
                break
        return out

    # -- worker thread ------------------------------------------------------
    def _emit(self, kind: str, job_id: str | None = None, local_id: str | None = None, **data: Any) -> None:
        self._events.put(LinkEvent(kind, job_id, local_id, data))

    def _set_state(self, state: str, message: str) -> None:
        if (state, message) != (self.state, self.message):
            self.state, self.message = state, message
            self._emit("state", state=state, message=message, welcome=self.welcome)

    def _run(self) -> None:
        client: Client | None = None
        try:
            client = self._client_factory(self.address, timeout_s=self.request_timeout_s,
                                          client_name="avatarforge-blender", client_version=self.client_version)
            while not self._stop.is_set():
                try:
                    self._step(client)
                except BackendUnavailable as exc:
                    self._lost(client, exc)
                except Exception as exc:  # a bug here must not kill the link silently
                    self._emit("link_error", message=f"{type(exc).__name__}: {exc}",
                               traceback=traceback.format_exc())
                    time.sleep(0.5)
        except Exception as exc:
            self._set_state(INCOMPATIBLE, f"cannot open a socket to {self.address}: {exc}")
        finally:
            if client is not None:
                client.close()

    def _step(self, client: Client) -> None:
        if self.state not in (CONNECTED,):
            if self.state == INCOMPATIBLE:
                self._serve_commands(client, connected=False)
                self._stop.wait(0.1)
                return
            if not self._connect(client):
                self._serve_commands(client, connected=False)
                self._stop.wait(self.retry_s)
                return
        self._serve_commands(client, connected=True)
        msg = client.poll(0.05)
        while msg is not None:
            self._last_heard = time.monotonic()
            self._forward(client, msg)
            msg = client.poll(0.0)
        if self._interrupted:
            self._reattach(client, only=list(self._interrupted))
        if time.monotonic() - self._last_heard > self.heartbeat_s:
            self._heartbeat(client)

    def _connect(self, client: Client) -> bool:
        self._set_state(CONNECTING, f"connecting to {self.address}")
        try:
            welcome = client.connect(timeout_s=self.connect_timeout_s)
        except BackendUnavailable:
            client.reset()  # drop the queued hello so a late backend does not get stale requests
            self._set_state(UNREACHABLE, f"no AvatarForge backend answers at {self.address}; start it "
                                         "(Preferences > Add-ons > AvatarForge > Start local backend, or "
                                         f"`avatarforge serve --bind {self.address}`). Retrying every "
                                         f"{self.retry_s:g} s.")
            return False
        except ProtocolError as exc:
            self._set_state(INCOMPATIBLE, f"the backend at {self.address} refused this add-on: {exc.message}")
            return False
        self._last_heard = time.monotonic()
        self.welcome = welcome
        self._session = welcome.get("session")
        self._set_state(CONNECTED, f"connected to {welcome.get('server', 'backend')} "
                                   f"{welcome.get('server_version', '?')} at {self.address}")
        self._reattach(client)
        return True

    def _lost(self, client: Client, exc: BackendUnavailable) -> None:
        client.reset()
        self._set_state(UNREACHABLE, f"lost the backend at {self.address} ({exc.message}); "
                                     f"retrying every {self.retry_s:g} s; running jobs resume when it is back")

    def _heartbeat(self, client: Client) -> None:
        """A `hello` round trip: proves the backend is alive and tells us if it
        restarted (a new session), in which case it no longer streams our jobs."""
        welcome = client.connect(timeout_s=self.connect_timeout_s)
        self._last_heard = time.monotonic()
        self.welcome = welcome
        if welcome.get("session") != self._session:
            self._session = welcome.get("session")
            self._reattach(client)

    def _reattach(self, client: Client, only: list[str] | None = None) -> None:
        """Follow every job we were following again: fetch it (result from the
        store, or progress from now on), or submit it again if the backend
        forgot it (it restarted while the job ran) or stopped it without us
        asking (it was shutting down)."""
        for job_id in sorted(client.pending if only is None else only):
            try:
                state = client.status(job_id, timeout_s=self.connect_timeout_s)
            except BackendUnavailable:
                raise
            except ProtocolError as exc:
                if exc.code == ErrorCode.NOT_FOUND and job_id in self._requests:
                    self._resubmit(client, job_id)
                    continue
                self._drop(client, job_id)
                self._emit("error", job_id=job_id, code=exc.code.value, message=exc.message)
                continue
            if state.get("state") in ("cancelled", "failed") and job_id in self._interrupted:
                self._resubmit(client, job_id)
                continue
            self._interrupted.discard(job_id)
            client.fetch(job_id)

    def _resubmit(self, client: Client, job_id: str) -> None:
        request = self._requests.pop(job_id)
        self._interrupted.discard(job_id)
        client.pending.discard(job_id)
        try:
            self._submit(client, request, resubmitted_from=job_id, hold=False)
        except BackendUnavailable:
            # Gone again: remember it and try once more after the next reconnect.
            self._requests[job_id] = request
            self._interrupted.add(job_id)
            client.pending.add(job_id)
            raise

    def _drop(self, client: Client, job_id: str) -> None:
        client.pending.discard(job_id)
        self._requests.pop(job_id, None)
        self._interrupted.discard(job_id)
        self._cancel_requested.discard(job_id)

    def _serve_commands(self, client: Client, connected: bool) -> None:
        while True:
            try:
                command, arg = self._commands.get_nowait()
            except queue.Empty:
                break
            if command == "submit":
                self._held.append(arg)
            elif command == "cancel":
                self._cancel(client, arg, connected)
            elif command == "reconnect":
                client.reset()
                self.state = DISCONNECTED
                return
        held, self._held = self._held, []
        for request in held:
            if connected:
                self._submit(client, request)
            elif time.monotonic() - request.queued_at > self.connect_timeout_s or self.state == INCOMPATIBLE:
                self._emit("submit_failed", local_id=request.local_id, code="UNAVAILABLE",
                           message=f"not submitted: {self.message}")
            else:
                self._held.append(request)  # keep it until the first connection attempt is done

    def _submit(self, client: Client, request: _Request, resubmitted_from: str | None = None,
                hold: bool = True) -> None:
        try:
            accepted = client.submit(request.job, request.params, request.tier)
        except BackendUnavailable:
            if hold:
                self._held.append(request)
            raise
        except ProtocolError as exc:
            self._emit("submit_failed", local_id=request.local_id, code=exc.code.value, message=exc.message,
                       field=exc.field)
            return
        job_id = accepted["job_id"]
        self._requests[job_id] = request
        self._emit("accepted", job_id=job_id, local_id=request.local_id, cached=bool(accepted.get("cached")),
                   state=accepted.get("state", "queued"), resubmitted_from=resubmitted_from)

    def _cancel(self, client: Client, job_id: str, connected: bool) -> None:
        if not connected:
            self._emit("cancel_failed", job_id=job_id, message=f"cannot cancel: {self.message}")
            return
        self._cancel_requested.add(job_id)
        try:
            state = client.cancel(job_id, timeout_s=self.request_timeout_s)
        except BackendUnavailable:
            raise
        except ProtocolError as exc:
            self._emit("cancel_failed", job_id=job_id, message=exc.message)
            return
        self._emit("job_state", job_id=job_id,
                   **{k: v for k, v in state.items() if k not in ("v", "id", "re", "type", "job_id")})

    def _forward(self, client: Client, msg: dict[str, Any]) -> None:
        """A backend job event, passed to the main thread."""
        kind, job_id = msg["type"], msg.get("job_id")
        if kind == "error" and job_id and msg.get("code") == ErrorCode.CANCELLED.value \
                and job_id not in self._cancel_requested and job_id in self._requests \
                and self._resumes.get(job_id, 0) < MAX_RESUMES:
            # Nobody here asked: the backend is shutting down (or another client
            # cancelled the shared job). Keep following it; resume when we can.
            self._interrupted.add(job_id)
            self._resumes[job_id] = self._resumes.get(job_id, 0) + 1
            self._emit("interrupted", job_id=job_id,
                       message="the backend stopped this job; it resumes when the backend is back")
            return
        if kind in ("result", "error") and job_id:
            self._drop(client, job_id)
        if kind == "result":
            self._emit("result", job_id=job_id, artifacts=msg["artifacts"], cached=bool(msg.get("cached")),
                       stats=msg.get("stats") or {})
        elif kind == "progress":
            self._emit("progress", job_id=job_id, fraction=float(msg["fraction"]), stage=str(msg["stage"]))
        elif kind == "error":
            self._emit("error", job_id=job_id, code=msg.get("code", "INTERNAL"), message=str(msg.get("message")))
        elif kind == "accepted":
            self._emit("accepted", job_id=job_id, cached=bool(msg.get("cached")), state=msg.get("state"))
        elif kind == "state":
            self._emit("job_state", job_id=job_id, state=msg.get("state"), fraction=msg.get("fraction"),
                       stage=msg.get("stage"))
