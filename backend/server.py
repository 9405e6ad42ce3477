"""The compute server: a ZeroMQ ROUTER, sessions, jobs and the result store.

One thread owns the socket and answers every message at once; pipelines run on
worker threads (jobs.py). Whatever a peer sends, it gets an answer or is
ignored: a malformed message never stops the loop.
"""
from __future__ import annotations

import logging
import os
import queue
import signal
import threading
import time
import uuid
from typing import Any

import zmq

from avatarforge.protocol import (
    ErrorCode, Limits, ProtocolError, decode, encode, make, make_error, validate)
from avatarforge.protocol.codec import answerable_id

from . import __version__
from .config import BackendConfig
from .core.components import registered, used_components
from .jobs import WAKE_ADDRESS, Job, JobEvent, WorkerPool
from .pipelines import Pipeline, load_pipelines
from .store import ResultStore, request_key

log = logging.getLogger("avatarforge.server")
MAX_JOBS_IN_MEMORY = 1000
# A client's silence timeout means "the backend is gone" (Client default: 10 s).
# A waiting job, or a pipeline step that reports nothing for a while, repeats
# its last progress this often, so a busy backend never looks gone.
KEEPALIVE_S = 1.0
KEEPALIVE_CHECK_S = 0.1


class Server:
    def __init__(self, config: BackendConfig, pipelines: dict[str, Pipeline] | None = None) -> None:
        self.config = config
        self.pipelines = pipelines if pipelines is not None else load_pipelines(config.plugins)
        self.limits = Limits(max_total_bytes=config.max_message_bytes,
                             max_header_bytes=min(16 * 1024 ** 2, config.max_message_bytes))
        self.store = ResultStore(config.store_dir)
        self.session = uuid.uuid4().hex
        self.jobs: dict[str, Job] = {}
        # Jobs not finished, kept apart from `jobs` so a job's place in the queue is
        # an index here, never a walk over every job remembered.
        self.waiting: dict[str, Job] = {}   # submission order = the workers' queue order
        self.running: dict[str, Job] = {}
        self._next_keepalive = 0.0
        self.events: "queue.SimpleQueue[JobEvent]" = queue.SimpleQueue()
        self._stop = threading.Event()
        self._ctx = zmq.Context()
        self.sock = self._ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        # A frame far beyond the message limit drops the peer before we buffer it.
        self.sock.setsockopt(zmq.MAXMSGSIZE, config.max_message_bytes + (1 << 20))
        self.sock.setsockopt(zmq.SNDHWM, 10000)
        self.wake = self._ctx.socket(zmq.PULL)
        self.wake.bind(WAKE_ADDRESS)
        self.workers = WorkerPool(self._ctx, config, self.pipelines, self.store, self.events)
        self.endpoint = ""
        # Describing a pipeline may import its model libraries (torch...), and an
        # identity reads its files once per version of them (weights, a motion
        # library): do both before listening, so the first `hello` and `submit`
        # are answered at once.
        self.describe_pipelines()
        for component in registered():
            if component.available(config).available:
                component.identity(config)

    def describe_pipelines(self) -> dict[str, Any]:
        """Each pipeline with its tiers and their components, as `welcome` lists them
        (re-read per hello: a user may add model files while the server runs)."""
        return {name: p.describe(self.config) for name, p in self.pipelines.items()}

    # -- life cycle ---------------------------------------------------------
    def bind(self) -> str:
        self.sock.bind(self.config.bind)
        self.endpoint = self.sock.getsockopt_string(zmq.LAST_ENDPOINT)
        return self.endpoint

    def stop(self) -> None:
        self._stop.set()

    def install_signal_handlers(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda signum, frame: self.stop())

    def serve_forever(self) -> None:
        if not self.endpoint:
            self.bind()
        self.workers.start()
        log.info("serving", extra={"fields": {
            "endpoint": self.endpoint, "store": str(self.store.root), "device": self.config.device,
            "pipelines": sorted(self.pipelines), "pid": os.getpid(), "version": __version__}})
        poller = zmq.Poller()
        poller.register(self.sock, zmq.POLLIN)
        poller.register(self.wake, zmq.POLLIN)
        try:
            while not self._stop.is_set():
                ready = dict(poller.poll(200))
                if self.wake in ready:
                    while self.wake.poll(0):
                        self.wake.recv()
                self._drain_events()
                self._keep_alive_if_due()
                if self.sock in ready:
                    # Bounded batch so worker events are never starved by a flood.
                    for _ in range(256):
                        try:
                            frames = self.sock.recv_multipart(zmq.NOBLOCK, copy=False)
                        except zmq.Again:
                            break
                        self._handle(frames)
        finally:
            log.info("shutting down", extra={"fields": {"running": sorted(self.workers.running)}})
            self.workers.stop()
            self._drain_events()
            self.sock.close(linger=1000)   # let the last answers (shutdown cancels) go out
            self.wake.close(0)
            self._ctx.term()
            log.info("stopped")

    # -- incoming -----------------------------------------------------------
    def _handle(self, frames: list[zmq.Frame]) -> None:
        identity = frames[0].bytes
        msg_id = job_id = None
        try:
            msg = decode(frames[1:], self.limits)
            msg_id = answerable_id(msg.get("id"))
            validate(msg, requests_only=True)
            job_id = msg.get("job_id")   # errors about a job name it, so a client knows which failed
            handler = getattr(self, f"_on_{msg['type']}")
            handler(identity, msg)
        except ProtocolError as exc:
            msg_id = msg_id or exc.details.pop("id", None)
            log.info("bad message", extra={"fields": {"peer": identity.hex(), "error": str(exc)}})
            self._send(identity, make_error(exc, re=msg_id, job_id=job_id))
        except Exception as exc:  # a bug in a handler must not stop the server
            log.exception("handler crashed")
            self._send(identity, make_error(ProtocolError(
                ErrorCode.INTERNAL, f"the backend failed handling this message: {type(exc).__name__}: {exc}"),
                re=msg_id))

    def _on_hello(self, peer: bytes, msg: dict[str, Any]) -> None:
        self._send(peer, make("welcome", re=msg["id"], server="avatarforge-backend",
                              server_version=__version__, session=self.session,
                              pipelines=self.describe_pipelines(),
                              devices=available_devices()))

    def _on_ping(self, peer: bytes, msg: dict[str, Any]) -> None:
        self._send(peer, make("pong", re=msg["id"], time=time.time()))

    def _on_submit(self, peer: bytes, msg: dict[str, Any]) -> None:
        name = msg["job"]
        pipeline = self.pipelines.get(name)
        if pipeline is None:
            raise ProtocolError(ErrorCode.UNSUPPORTED,
                                f"this backend has no '{name}' job; it serves: {', '.join(sorted(self.pipelines))}",
                                field="job")
        params = pipeline.normalise(dict(msg.get("params") or {}), self.config)
        tier = pipeline.choose_tier(msg.get("tier"), params, self.config)
        used = used_components(pipeline.components(tier, params, self.config), self.config)
        key = request_key(name, tier.name, params, used)
        job = self.jobs.get(key)
        if job is not None and job.state in ("queued", "running", "done"):
            self._attach(peer, job, re=msg["id"])
            return
        if self.store.has(key):
            self._send(peer, make("accepted", re=msg["id"], job_id=key, job=name, cached=True, state="done"))
            self._send_stored_result(peer, key)
            return
        job = Job(id=key, job=name, tier=tier.name, params=params, components=used,
                  seed=int(params.get("seed") or 0))
        job.subscribers.add(peer)
        self._remember(job)
        self._send(peer, make("accepted", re=msg["id"], job_id=key, job=name, cached=False, state="queued"))
        job.last_sent = time.monotonic()
        self.waiting[job.id] = job
        self.workers.queue.put(job)
        self._tell_place(job, len(self.waiting) - 1)
        log.info("job queued", extra={"fields": {"job_id": key, "job": name, "tier": tier.name}})

    def _on_fetch(self, peer: bytes, msg: dict[str, Any]) -> None:
        job_id = msg["job_id"]
        job = self.jobs.get(job_id)
        if job is not None and job.state in ("queued", "running"):
            self._attach(peer, job, re=msg["id"])
        elif self._is_stored(job_id):
            self._send_stored_result(peer, job_id)
        elif job is not None and job.error:
            self._send(peer, make("error", re=msg["id"], job_id=job_id, **job.error))
        else:
            raise self._unknown_job(job_id)

    def _on_cancel(self, peer: bytes, msg: dict[str, Any]) -> None:
        job = self.jobs.get(msg["job_id"])
        if job is None:
            if self._is_stored(msg["job_id"]):
                self._send(peer, make("state", re=msg["id"], **self._stored_state(msg["job_id"])))
                return
            raise self._unknown_job(msg["job_id"])
        if job.state in ("queued", "running"):
            job.cancel_event.set()
            if job.state == "queued":  # the worker will skip it; answer now
                self._finish(job, "cancelled", error=ProtocolError(ErrorCode.CANCELLED, "cancelled before it started"))
            else:
                job.stage = "cancelling"
        self._send(peer, make("state", re=msg["id"], **job.state_fields()))

    def _on_status(self, peer: bytes, msg: dict[str, Any]) -> None:
        job = self.jobs.get(msg["job_id"])
        if job is not None:
            self._send(peer, make("state", re=msg["id"], **job.state_fields()))
        elif self._is_stored(msg["job_id"]):
            self._send(peer, make("state", re=msg["id"], **self._stored_state(msg["job_id"])))
        else:
            raise self._unknown_job(msg["job_id"])

    def _on_list(self, peer: bytes, msg: dict[str, Any]) -> None:
        listed = {j.id: j.state_fields() for j in self.jobs.values()}
        for meta in self.store.entries(limit=200):
            if meta.get("key") and meta["key"] not in listed:
                listed[meta["key"]] = self._stored_state(meta["key"], meta)
        jobs = sorted(listed.values(), key=lambda s: s.get("created") or 0, reverse=True)
        self._send(peer, make("jobs", re=msg["id"], jobs=jobs))

    # -- jobs ---------------------------------------------------------------
    def _attach(self, peer: bytes, job: Job, re: str) -> None:
        if job.state == "done":
            self._send(peer, make("accepted", re=re, job_id=job.id, job=job.job, cached=True, state="done"))
            self._send_stored_result(peer, job.id)
            return
        job.subscribers.add(peer)
        self._send(peer, make("accepted", re=re, job_id=job.id, job=job.job, cached=False, state=job.state))
        # Running: how far it got; queued: its place in the queue.
        self._send(peer, make("progress", job_id=job.id, fraction=job.fraction, stage=job.stage))

    def _remember(self, job: Job) -> None:
        self.jobs[job.id] = job
        if len(self.jobs) > MAX_JOBS_IN_MEMORY:  # finished ones are on disk; forget the oldest
            for old in sorted((j for j in self.jobs.values() if j.finished), key=lambda j: j.finished or 0):
                del self.jobs[old.id]
                if len(self.jobs) <= MAX_JOBS_IN_MEMORY:
                    break

    def _drain_events(self) -> None:
        while True:
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                return
            job = self.jobs.get(event.job_id)
            if job is None:
                continue
            if event.kind == "started":
                self._started(job)
            elif event.kind == "progress":
                job.state, job.fraction, job.stage = "running", event.fraction, event.stage
                self._broadcast(job, make("progress", job_id=job.id, fraction=event.fraction, stage=event.stage))
            elif event.kind == "done":
                self._finish(job, "done", artifacts=event.artifacts)
            elif event.kind == "cancelled" and self._stop.is_set():
                # Not the user's cancel: say so, so a client can submit it again later.
                self._finish(job, "cancelled", error=ProtocolError(
                    ErrorCode.CANCELLED, "the backend shut down while this job ran; submit it again once "
                    "the backend is back", reason="shutdown"))
            elif event.kind == "cancelled":
                self._finish(job, "cancelled", error=ProtocolError(ErrorCode.CANCELLED, "cancelled while running",
                                                                   reason="user"))
            else:
                self._finish(job, "failed", error=event.error)

    def _started(self, job: Job) -> None:
        if job.state != "queued":
            return   # cancelled just as a worker took it: the cancel was answered already
        job.state, job.stage = "running", "starting"
        self.waiting.pop(job.id, None)
        self.running[job.id] = job
        self._queue_moved()

    def _jobs_ahead(self, index: int) -> int:
        """How many unfinished jobs are before the waiting job at `index`."""
        return len(self.running) + index

    def _tell_place(self, job: Job, index: int) -> None:
        """Send a waiting job's place as its progress, when that place changed."""
        ahead = self._jobs_ahead(index)
        if ahead < max(1, self.config.workers):
            return   # a worker is free for it: its "starting" follows at once
        stage = f"queued: {ahead} job{'' if ahead == 1 else 's'} ahead"
        if stage != job.stage:
            job.stage = stage
            self._broadcast(job, make("progress", job_id=job.id, fraction=0.0, stage=stage))

    def _queue_moved(self) -> None:
        """A job started or ended: each waiting job may be nearer the front."""
        for index, job in enumerate(self.waiting.values()):
            self._tell_place(job, index)

    def _keep_alive_if_due(self) -> None:
        """Repeat the last progress of each unfinished job that said nothing for
        KEEPALIVE_S (a long wait in the queue, a long step without progress)."""
        now = time.monotonic()
        if now < self._next_keepalive:
            return
        self._next_keepalive = now + KEEPALIVE_CHECK_S
        for job in [*self.running.values(), *self.waiting.values()]:
            if job.subscribers and now - job.last_sent >= KEEPALIVE_S:
                self._broadcast(job, make("progress", job_id=job.id, fraction=job.fraction, stage=job.stage))

    def _finish(self, job: Job, state: str, artifacts: list[dict[str, Any]] | None = None,
                error: ProtocolError | None = None) -> None:
        left_queue = self.waiting.pop(job.id, None) is not None or self.running.pop(job.id, None) is not None
        job.end(state)
        if state == "done":
            job.fraction, job.stage = 1.0, "done"
            self._broadcast(job, make("result", job_id=job.id, artifacts=artifacts or [], cached=False))
        else:
            assert error is not None
            job.error, job.stage = error.to_fields(), state
            self._broadcast(job, make_error(error, job_id=job.id))
        job.subscribers.clear()
        if left_queue:
            self._queue_moved()

    # -- outgoing -----------------------------------------------------------
    def _send(self, peer: bytes, msg: dict[str, Any]) -> None:
        self._send_frames(peer, encode(msg))

    def _send_frames(self, peer: bytes, frames: list[Any]) -> None:
        try:
            self.sock.send_multipart([peer, *frames], copy=len(frames) == 1)
        except zmq.ZMQError as exc:  # peer gone or queue full: nothing to answer to
            log.info("send failed", extra={"fields": {"peer": peer.hex(), "error": str(exc)}})

    def _broadcast(self, job: Job, msg: dict[str, Any]) -> None:
        if job.subscribers:
            job.last_sent = time.monotonic()
            frames = encode(msg)   # encode once, send to each subscriber
            for peer in list(job.subscribers):
                self._send_frames(peer, frames)

    def _send_stored_result(self, peer: bytes, key: str) -> None:
        stored = self.store.get(key)
        if stored is None:
            raise self._unknown_job(key)
        self._send(peer, make("result", job_id=key, artifacts=stored.artifacts, cached=True))

    def _is_stored(self, job_id: str) -> bool:
        try:
            return self.store.has(job_id)
        except ValueError:
            return False

    def _stored_state(self, key: str, meta: dict[str, Any] | None = None) -> dict[str, Any]:
        meta = meta or self.store.meta(key) or {}
        return {"job_id": key, "state": "done", "job": meta.get("job"), "fraction": 1.0, "stage": "done",
                "created": meta.get("created"), "finished": meta.get("finished")}

    @staticmethod
    def _unknown_job(job_id: str) -> ProtocolError:
        return ProtocolError(ErrorCode.NOT_FOUND,
                             f"no job '{job_id}' on this backend: it never ran here, or its store was "
                             "deleted; submit the request again", field="job_id")


def available_devices() -> list[str]:
    """'cpu' and each CUDA device torch can see."""
    devices = ["cpu"]
    try:
        import torch

        devices += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    except Exception as exc:  # no torch, or a broken CUDA install: CPU still works, but say why GPUs are absent
        log.warning("no CUDA devices listed", extra={"fields": {"error": f"{type(exc).__name__}: {exc}"}})
    return devices
