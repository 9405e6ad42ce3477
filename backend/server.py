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
from typing import Any, Callable

import zmq

from avatarforge.protocol import (
    ErrorCode, Limits, ProtocolError, decode, encode, make, make_error, validate)
from avatarforge.protocol.codec import answerable_id

from . import __version__
from .config import BackendConfig
from .core.components import registered, used_components
from .jobs import WAKE_ADDRESS, Job, JobEvent, Journal, SideThread, WorkerPool
from .pipelines import Pipeline, load_pipelines
from .store import DamagedEntry, ResultStore, StoredRequest, request_key

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
        self.store = ResultStore(config.store_dir, max_bytes=config.store_max_bytes)
        self.journal = Journal(self.store.root / "journal")
        self.session = uuid.uuid4().hex
        self.jobs: dict[str, Job] = {}
        # Jobs not finished, kept apart from `jobs` so a job's place in the queue is
        # an index here, never a walk over every job remembered.
        self.waiting: dict[str, Job] = {}   # submission order = the workers' queue order
        self.running: dict[str, Job] = {}
        self._next_keepalive = 0.0
        # Worker events, and continuations the side threads hand back (callables).
        self.events: "queue.SimpleQueue[JobEvent | Callable[[], None]]" = queue.SimpleQueue()
        self._stop = threading.Event()
        self._ctx = zmq.Context()
        self.sock = self._ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        # A frame far beyond the message limit drops the peer before we buffer it.
        self.sock.setsockopt(zmq.MAXMSGSIZE, config.max_message_bytes + (1 << 20))
        self.sock.setsockopt(zmq.SNDHWM, 10000)
        self.wake = self._ctx.socket(zmq.PULL)
        self.wake.bind(WAKE_ADDRESS)
        self.workers = WorkerPool(self._ctx, config, self.pipelines, self.store, self.events, self.journal)
        # Disk work off the socket thread: reading and checking stored results; journaling
        # accepted jobs (a large upload takes a while to write) and their ends, in order.
        self.reader = SideThread(self._ctx, "store-reader", self.events)
        self.journal_writer = SideThread(self._ctx, "journal", self.events)
        self.endpoint = ""
        # Describing a pipeline may import its model libraries (torch...), and an
        # identity reads its files once per version of them (weights, a motion
        # library): do both before listening, so the first `hello` and `submit`
        # are answered at once.
        self.describe_pipelines()
        for component in registered():
            if component.available(config).available:
                component.identity(config)
        self.recover_jobs()

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
        self.reader.start()
        self.journal_writer.start()
        self.reader.submit(self.store.evict)   # a store over a lowered cap shrinks now, not at the next result
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
            for job in list(self.waiting.values()):   # not started: the workers skip them, a restart runs them
                job.cancel_event.set()
                self._finish(job, "cancelled", error=self._shutdown_error(), journal_end=False)
            self.workers.stop()
            self.reader.stop()
            self.journal_writer.stop()
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
        request = StoredRequest(name, tier.name, params, used)
        key = request.key()
        job = self.jobs.get(key)
        if job is not None and job.state in ("queued", "running"):
            self._attach(peer, job, re=msg["id"])
        elif (job is not None and job.state == "done") or self.store.has(key):
            self._serve_stored(peer, msg["id"], key, "submit", request)
        else:
            self._accept(request, peer, msg["id"])

    def _on_fetch(self, peer: bytes, msg: dict[str, Any]) -> None:
        job_id = msg["job_id"]
        job = self.jobs.get(job_id)
        if job is not None and job.state in ("queued", "running"):
            self._attach(peer, job, re=msg["id"])
        elif self._is_stored(job_id):
            self._serve_stored(peer, msg["id"], job_id, "fetch")
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
        if job is not None and job.state != "done":
            self._send(peer, make("state", re=msg["id"], **job.state_fields()))
        elif self._is_stored(msg["job_id"]):   # "done" only once its checksums are checked
            self._serve_stored(peer, msg["id"], msg["job_id"], "status")
        elif job is not None:
            self._send(peer, make("state", re=msg["id"], **job.state_fields()))
        else:
            raise self._unknown_job(msg["job_id"])

    def _on_list(self, peer: bytes, msg: dict[str, Any]) -> None:
        """Stored entries are read on the reader thread (a store of thousands of entries
        took 0.3-0.5 s to scan, stalling ping); the jobs in memory join them on the
        socket thread when the answer goes out."""
        reader, re = self.reader, msg["id"]

        def read() -> None:
            try:
                stored = {m["key"]: self._stored_state(m["key"], m) for m in self.store.entries(limit=200)
                          if m.get("key")}
            except Exception:   # a disk error: list what is in memory, say it in the log
                log.exception("stored entries not listed")
                stored = {}
            reader.post(lambda: self._listed(peer, re, stored))

        reader.submit(read)

    def _listed(self, peer: bytes, re: str, stored: dict[str, dict[str, Any]]) -> None:
        listed = {**stored, **{j.id: j.state_fields() for j in self.jobs.values()}}
        jobs = sorted(listed.values(), key=lambda s: s.get("created") or 0, reverse=True)
        self._send(peer, make("jobs", re=re, jobs=jobs))

    # -- jobs ---------------------------------------------------------------
    def _attach(self, peer: bytes, job: Job, re: str) -> None:
        """Make `peer` a subscriber of an unfinished job: accepted, then where it stands."""
        if not job.journaled:
            job.accepts.append((peer, re))   # answered once it is on disk (_journaled)
            return
        job.subscribers.add(peer)
        self._send(peer, make("accepted", re=re, job_id=job.id, job=job.job, cached=False, state=job.state))
        # Running: how far it got; queued: its place in the queue.
        self._send(peer, make("progress", job_id=job.id, fraction=job.fraction, stage=job.stage))

    def _accept(self, request: StoredRequest, peer: bytes | None, re: str | None) -> Job:
        """A new job: journaled by the journal thread, which then queues it; `peer` is
        told "accepted" once it is on disk, so an accepted job survives a crash."""
        key = request.key()
        job = Job(id=key, job=request.job, tier=request.tier, params=request.params, components=request.components,
                  seed=int(request.params.get("seed") or 0))
        if peer is not None and re is not None:
            job.accepts.append((peer, re))
        self._remember(job)
        self.waiting[job.id] = job
        writer = self.journal_writer

        def journal_then_queue() -> None:
            params = job.params   # before the cancel check, as the workers read them
            if not job.cancel_event.is_set():
                try:
                    self.journal.accept(job.id, StoredRequest(job.job, job.tier, params, job.components))
                except Exception as exc:   # a full disk: run it all the same, only a crash would lose it
                    log.error("job not journaled", extra={"fields": {"job_id": job.id,
                                                                     "error": f"{type(exc).__name__}: {exc}"}})
            writer.post(lambda: self._journaled(job))
            self.workers.queue.put(job)   # after the post: "accepted" reaches the loop before "started"

        writer.submit(journal_then_queue)
        log.info("job queued", extra={"fields": {"job_id": key, "job": request.job, "tier": request.tier}})
        return job

    def _journaled(self, job: Job) -> None:
        job.journaled = True
        accepts, job.accepts = job.accepts, []
        for peer, re in accepts:
            self._send(peer, make("accepted", re=re, job_id=job.id, job=job.job, cached=False,
                                  state=job.state if job.state in ("queued", "running") else "queued"))
            if job.finished:   # cancelled while it was being journaled
                self._send(peer, make("error", job_id=job.id, **(job.error or {})))
        self._queue_moved()   # its place, to the clients already told
        for peer, re in accepts:
            if not job.finished:
                job.subscribers.add(peer)
                if job.stage != "queued":   # a place in the queue ("queued" alone: a worker is free for it)
                    self._send(peer, make("progress", job_id=job.id, fraction=job.fraction, stage=job.stage))
        job.last_sent = time.monotonic()

    def _serve_stored(self, peer: bytes, re: str, key: str, purpose: str,
                      request: StoredRequest | None = None) -> None:
        """Answer from the store once the reader thread has checked the entry:
        `purpose` submit (accepted + result), fetch (result) or status (state).
        A damaged entry is quarantined and recomputed from `request` (the submit's)
        or the request kept beside it."""
        reader = self.reader

        def read() -> None:
            outcome: Any
            try:
                if purpose == "status":
                    outcome = self.store.check(key)
                else:
                    stored = self.store.get(key)
                    # Encoded here, off the socket thread; the entry may be evicted once it is in memory.
                    outcome = None if stored is None else encode(make(
                        "result", job_id=key, artifacts=stored.artifacts, cached=True))
            except DamagedEntry as damage:
                outcome = damage
            except Exception as exc:   # a disk error, or a bug: the client still hears about it
                log.exception("stored result not read", extra={"fields": {"job_id": key}})
                outcome = ProtocolError(ErrorCode.INTERNAL, f"the backend could not read the stored result of "
                                        f"job {key}: {type(exc).__name__}: {exc}")
            reader.post(lambda: self._stored_read(peer, re, key, purpose, outcome, request))

        reader.submit(read)

    def _stored_read(self, peer: bytes, re: str, key: str, purpose: str, outcome: Any,
                     request: StoredRequest | None) -> None:
        job = self.jobs.get(key)
        if job is not None and job.state in ("queued", "running"):   # already being recomputed
            if purpose == "status":
                self._send(peer, make("state", re=re, **job.state_fields()))
            else:
                self._attach(peer, job, re)
            return
        if isinstance(outcome, ProtocolError):
            self._send(peer, make_error(outcome, re=re, job_id=key))
            return
        if isinstance(outcome, dict):                     # status: whole
            self._send(peer, make("state", re=re, **self._stored_state(key, outcome)))
            return
        if isinstance(outcome, list):                     # frames of the result
            if purpose == "submit":
                assert request is not None
                self._send(peer, make("accepted", re=re, job_id=key, job=request.job, cached=True, state="done"))
            self._send_frames(peer, outcome)
            return
        damage = outcome if isinstance(outcome, DamagedEntry) else None
        request = request or (damage.request if damage else None)
        refusal = self._rerun_refusal(request, key) if request is not None else None
        if request is not None and refusal is None:
            job = self._accept(request, None if purpose == "status" else peer, re)
            if purpose == "status":
                self._send(peer, make("state", re=re, **job.state_fields()))
            return
        if damage is None:                                 # evicted between the check and the read
            error = self._unknown_job(key)
        else:
            why = refusal.message if refusal else "the request was not kept with it"
            error = ProtocolError(ErrorCode.NOT_FOUND,
                                  f"the stored result of job {key} was damaged ({damage.reason}) and has been "
                                  f"quarantined; it cannot be recomputed here: {why}. Submit the request again",
                                  field="job_id", reason="damaged")
        self._send(peer, make_error(error, re=re, job_id=key))

    def _rerun_refusal(self, request: StoredRequest, key: str) -> ProtocolError | None:
        """Why `request` cannot run again here under `key`, or None when it can: its
        pipeline or tier is gone, or a component changed (a new key, another result)."""
        pipeline = self.pipelines.get(request.job)
        if pipeline is None:
            return ProtocolError(ErrorCode.UNSUPPORTED, f"this backend no longer serves '{request.job}'")
        try:
            tier = pipeline.choose_tier(request.tier, {}, self.config)
            used = used_components(pipeline.components(tier, request.params, self.config), self.config)
        except ProtocolError as exc:
            return exc
        if request_key(request.job, tier.name, request.params, used) != key:
            return ProtocolError(ErrorCode.NOT_FOUND, "the backend's components changed since it was accepted, "
                                 "so the same request now has another job id")
        return None

    def recover_jobs(self) -> None:
        """Re-queue the jobs a killed backend had accepted and not finished (the
        journal), under their job ids; those that cannot run again are kept as
        failed, with the reason, for a client that re-attaches."""
        for record in self.journal.unfinished():
            key = record["id"]
            if self._is_stored(key):   # finished as the backend died
                self.journal.end(key)
                continue
            try:
                request = self.journal.request(key)
                refusal = self._rerun_refusal(request, key)
            except ValueError as exc:
                request, refusal = None, ProtocolError(ErrorCode.NOT_FOUND, str(exc))
            if request is not None and refusal is None:
                job = Job(id=key, job=request.job, tier=request.tier, params=request.params,
                          components=request.components, seed=int(request.params.get("seed") or 0), journaled=True)
                job.created = float(record.get("t") or job.created)
                self._remember(job)
                self.waiting[key] = job
                self.workers.queue.put(job)
                log.info("job recovered", extra={"fields": {"job_id": key, "job": request.job}})
                continue
            assert refusal is not None
            job = Job(id=key, job=str(record.get("job")), tier=str(record.get("tier")), params={}, components={})
            job.end("failed")
            job.error = ProtocolError(
                refusal.code, f"the backend stopped while job {key} was queued or running, and it cannot run "
                f"again: {refusal.message}. Submit the request again", reason="restart").to_fields()
            job.stage = "failed"
            self._remember(job)
            self.journal.end(key)
            log.warning("job not recovered", extra={"fields": {"job_id": key, "reason": refusal.message}})

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
            if callable(event):   # a side thread's continuation
                try:
                    event()
                except Exception:  # a bug there must not stop the server
                    log.exception("continuation crashed")
                continue
            job = self.jobs.get(event.job_id)
            if job is None:
                continue
            if event.kind == "started":
                self._started(job)
            elif event.kind == "progress":
                job.state, job.fraction, job.stage = "running", event.fraction, event.stage
                extra = {"message": event.message} if event.message else {}
                self._broadcast(job, make("progress", job_id=job.id, fraction=event.fraction, stage=event.stage,
                                          **extra))
            elif event.kind == "done":
                self._finish(job, "done", artifacts=event.artifacts)
            elif event.kind == "cancelled" and self._stop.is_set():
                self._finish(job, "cancelled", error=self._shutdown_error(), journal_end=False)
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

    @staticmethod
    def _shutdown_error() -> ProtocolError:
        # Not the user's cancel: say so. The job stays journaled and runs again at the next start.
        return ProtocolError(ErrorCode.CANCELLED, "the backend shut down before this job finished; it runs again "
                             "when the backend restarts on the same store (fetch it then), or submit it again",
                             reason="shutdown")

    def _finish(self, job: Job, state: str, artifacts: list[dict[str, Any]] | None = None,
                error: ProtocolError | None = None, journal_end: bool = True) -> None:
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
        if journal_end:
            self.journal_writer.submit(lambda: self.journal.end(job.id))
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
