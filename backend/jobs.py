"""Jobs and the workers that run them.

Workers are threads, one queue per device: a long job never blocks the
server's socket loop, which keeps answering `ping` and `status`. Workers never
touch the ROUTER socket (ZeroMQ sockets are not thread-safe): they post events
to a queue and wake the loop through an inproc socket.
"""
from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import zmq

from avatarforge.protocol import ErrorCode, ProtocolError

from .config import BackendConfig
from .core.files import atomic_write
from .pipelines import JobCancelled, JobContext, Pipeline, record_components
from .store import ResultStore, StoredRequest, read_request, write_request

log = logging.getLogger("avatarforge.jobs")
WAKE_ADDRESS = "inproc://avatarforge-wake"
MAX_PREVIEW_BYTES = 64 * 1024
PROGRESS_INTERVAL_S = 0.05   # at most 20 progress events a second, stage changes always go out
JOURNAL_COMPACT_LINES = 1000  # rewrite the journal with its live records past this many lines


@dataclass
class Job:
    id: str
    job: str
    tier: str
    params: dict[str, Any]
    components: dict[str, dict[str, str]]   # slot -> role, name, identity (core.components.used_components)
    seed: int = 0
    state: str = "queued"
    fraction: float = 0.0
    stage: str = "queued"
    error: dict[str, Any] | None = None
    created: float = field(default_factory=time.time)
    finished: float | None = None
    subscribers: set[bytes] = field(default_factory=set)
    last_sent: float = 0.0   # time.monotonic() of the last event broadcast to subscribers
    cancel_event: threading.Event = field(default_factory=threading.Event)
    journaled: bool = False   # on disk: "accepted" may be said, a restart re-queues it
    accepts: list[tuple[bytes, str]] = field(default_factory=list)   # (peer, request id) told once journaled

    def end(self, state: str) -> None:
        """Mark the job finished (done, failed, cancelled) and let go of its
        uploads: a finished job stays listed for a while, and a 100 MB file it
        was given must not stay in memory with it."""
        self.state, self.finished = state, time.time()
        self.params = params_without_buffers(self.params)

    def state_fields(self) -> dict[str, Any]:
        out = {"job_id": self.id, "state": self.state, "job": self.job, "fraction": self.fraction,
               "stage": self.stage, "created": self.created, "finished": self.finished}
        if self.error:
            out["error"] = self.error
        return out


def params_without_buffers(value: Any) -> Any:
    """A copy of `value` with each byte string and array replaced by a short
    description of it (what it was, how big), so what is kept stays small."""
    if isinstance(value, dict):
        return {k: params_without_buffers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [params_without_buffers(v) for v in value]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"<{len(value)} bytes, released>"
    if isinstance(value, np.ndarray):
        return f"<{value.dtype} array {list(value.shape)}, released>"
    return value


@dataclass
class JobEvent:
    kind: str                 # started | progress | done | failed | cancelled
    job_id: str
    fraction: float = 0.0
    stage: str = ""
    artifacts: list[dict[str, Any]] | None = None
    error: ProtocolError | None = None
    message: dict[str, Any] | None = None     # progress only: e.g. {"preview": PNG bytes, "frame": i}


Continuation = Callable[[], None]   # work handed back to the socket thread (it owns the socket)


class SideThread:
    """One thread for the disk work the socket thread must not wait on (reading and
    checking a stored result, journaling an upload). Tasks run in submission order;
    a task hands what the socket thread must then do (send, queue) to `post`."""

    def __init__(self, ctx: zmq.Context, name: str, events: "queue.SimpleQueue[Any]") -> None:
        self.events = events
        self._ctx = ctx
        self._tasks: "queue.Queue[Callable[[], None] | None]" = queue.Queue()
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._wake: zmq.Socket | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._tasks.put(None)
        self._thread.join(timeout_s)

    def submit(self, task: Callable[[], None]) -> None:
        self._tasks.put(task)

    def post(self, continuation: Continuation) -> None:
        """From a task: run `continuation` on the socket thread."""
        assert self._wake is not None and threading.current_thread() is self._thread
        self.events.put(continuation)
        try:
            self._wake.send(b"", zmq.NOBLOCK)
        except zmq.Again:
            pass  # the loop is already awake with a backlog

    def _work(self) -> None:
        self._wake = self._ctx.socket(zmq.PUSH)
        self._wake.setsockopt(zmq.LINGER, 0)
        self._wake.connect(WAKE_ADDRESS)
        try:
            while (task := self._tasks.get()) is not None:
                try:
                    task()
                except Exception:  # a bug in a task must not stop the thread
                    log.exception("side task crashed", extra={"fields": {"thread": self._thread.name}})
        finally:
            self._wake.close(0)


class Journal:
    """Accepted jobs on disk, so a backend killed mid-job runs them again after a restart.

    `jobs.log` holds one JSON line per event, appended and fsync'd: {"op": "accepted",
    "id", "job", "tier", "t"} and {"op": "ended", "id"}. Each accepted job's whole
    request (normalised params, uploads included) is in `requests/<id>.afr`, written
    first; a done job's request moves into its store entry, others are deleted. When
    no job is left unfinished the log is emptied, and past JOURNAL_COMPACT_LINES it is
    rewritten with the unfinished jobs' lines only. Used from one thread at a time."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.log_path = self.folder / "jobs.log"
        (self.folder / "requests").mkdir(parents=True, exist_ok=True)
        self.live: dict[str, dict[str, Any]] = {}
        self._lines = 0
        for record in self._records():
            self._lines += 1
            if record.get("op") == "accepted":
                self.live[record["id"]] = record
            elif record.get("op") == "ended":
                self.live.pop(record["id"], None)

    def _records(self) -> list[dict[str, Any]]:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return []
        records = []
        for line in text.splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue   # the last line of a log whose writer was killed mid-append
            if isinstance(record, dict) and isinstance(record.get("id"), str):
                records.append(record)
        return records

    def request_path(self, job_id: str) -> Path:
        return self.folder / "requests" / f"{job_id}.afr"

    def accept(self, job_id: str, request: StoredRequest) -> None:
        """Journal an accepted job: its request file, then its line (fsync'd)."""
        write_request(self.request_path(job_id), request)
        record = {"op": "accepted", "id": job_id, "job": request.job, "tier": request.tier, "t": time.time()}
        self._append(record)
        self.live[job_id] = record

    def end(self, job_id: str) -> None:
        """The job finished (done, failed or cancelled): it needs no re-run."""
        self.request_path(job_id).unlink(missing_ok=True)
        if self.live.pop(job_id, None) is None:
            return
        if not self.live or self._lines >= JOURNAL_COMPACT_LINES:
            self._compact()
        else:
            self._append({"op": "ended", "id": job_id})

    def unfinished(self) -> list[dict[str, Any]]:
        """The accepted jobs that never ended, in the order they were accepted."""
        return list(self.live.values())

    def request(self, job_id: str) -> StoredRequest:
        """An unfinished job's request; ValueError saying why it cannot be read."""
        return read_request(self.request_path(job_id), job_id)

    def _append(self, record: dict[str, Any]) -> None:
        with open(self.log_path, "ab") as f:
            f.write(json.dumps(record).encode() + b"\n")
            f.flush()
            os.fsync(f.fileno())
        self._lines += 1

    def _compact(self) -> None:
        atomic_write(self.log_path, [json.dumps(r).encode() + b"\n" for r in self.live.values()])
        self._lines = len(self.live)


class WorkerPool:
    """Threads that take jobs from a queue and run their pipelines."""

    def __init__(self, ctx: zmq.Context, config: BackendConfig, pipelines: dict[str, Pipeline],
                 store: ResultStore, events: "queue.SimpleQueue[Any]", journal: Journal | None = None) -> None:
        self.config = config
        self.pipelines = pipelines
        self.store = store
        self.journal = journal
        self.events = events
        self.queue: "queue.Queue[Job | None]" = queue.Queue()
        self.running: dict[str, Job] = {}
        self._ctx = ctx
        self._threads = [threading.Thread(target=self._work, name=f"worker-{config.device}-{i}", daemon=True)
                         for i in range(max(1, config.workers))]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Cancel what runs, let workers finish their current step, join them."""
        for job in list(self.running.values()):
            job.cancel_event.set()
        for _ in self._threads:
            self.queue.put(None)
        deadline = time.monotonic() + timeout_s
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))

    def _work(self) -> None:
        wake = self._ctx.socket(zmq.PUSH)
        wake.setsockopt(zmq.LINGER, 0)
        wake.connect(WAKE_ADDRESS)
        try:
            while (job := self.queue.get()) is not None:
                # Params before the cancel check: the loop sets the cancel flag
                # before it releases a cancelled job's params, so params read
                # here are whole whenever the flag below is still clear.
                params = job.params
                if job.cancel_event.is_set():
                    continue  # cancelled while queued; the loop already answered
                self.running[job.id] = job
                # Tells the loop the queue moved, so the jobs still waiting learn their new place.
                self._post(wake, JobEvent("started", job.id))
                try:
                    self._post(wake, self._run(job, params, lambda e: self._post(wake, e)))
                finally:
                    self.running.pop(job.id, None)
        finally:
            wake.close(0)

    def _post(self, wake: zmq.Socket, event: JobEvent) -> None:
        self.events.put(event)
        try:
            wake.send(b"", zmq.NOBLOCK)
        except zmq.Again:
            pass  # the loop is already awake with a backlog

    def _run(self, job: Job, params: dict[str, Any], post: Callable[[JobEvent], None]) -> JobEvent:
        pipeline = self.pipelines[job.job]
        last = {"t": 0.0, "stage": ""}

        def on_progress(fraction: float, stage: str) -> None:
            now = time.monotonic()
            last["fraction"] = fraction
            if stage != last["stage"] or now - last["t"] >= PROGRESS_INTERVAL_S or fraction >= 1.0:
                last.update(t=now, stage=stage)
                post(JobEvent("progress", job.id, fraction, stage))

        def on_preview(png: bytes, info: dict[str, Any]) -> None:
            if len(png) <= MAX_PREVIEW_BYTES:      # a preview is a glance, never a payload
                post(JobEvent("progress", job.id, job_fraction(), last["stage"] or "working",
                              message={"preview": png, **info}))

        def job_fraction() -> float:
            return float(last.get("fraction", 0.0))

        ctx = JobContext(config=self.config, device=self.config.device, seed=job.seed,
                         on_progress=on_progress, cancel_event=job.cancel_event, on_preview=on_preview)
        t0 = time.perf_counter()
        log.info("job started", extra={"fields": {"job_id": job.id, "job": job.job, "tier": job.tier}})
        try:
            ctx.progress(0.0, "starting")
            artifacts = [a.to_wire() for a in record_components(pipeline.run(params, ctx), job.components)]
            ctx.check_cancelled()
        except JobCancelled:
            log.info("job cancelled", extra={"fields": {"job_id": job.id}})
            return JobEvent("cancelled", job.id)
        except ProtocolError as exc:
            log.warning("job failed", extra={"fields": {"job_id": job.id, "error": str(exc)}})
            return JobEvent("failed", job.id, error=exc)
        except MemoryError:
            return JobEvent("failed", job.id, error=ProtocolError(
                ErrorCode.OUT_OF_MEMORY, f"the backend ran out of memory running '{job.job}': "
                "lower the resolution or size parameters, or free memory on the backend machine"))
        except Exception as exc:  # a bug or a model failure: report it, keep serving
            if type(exc).__name__ == "OutOfMemoryError":  # torch.cuda.OutOfMemoryError, without importing torch
                return JobEvent("failed", job.id, error=ProtocolError(
                    ErrorCode.OUT_OF_MEMORY, f"the GPU ran out of memory running '{job.job}': {exc}. "
                    "Lower the size parameters or use another device (--device)."))
            log.error("job crashed", extra={"fields": {"job_id": job.id, "traceback": traceback.format_exc()}})
            return JobEvent("failed", job.id, error=ProtocolError(
                ErrorCode.INTERNAL, f"'{job.job}' failed inside the backend: {type(exc).__name__}: {exc}. "
                "The backend log has the traceback."))
        elapsed = time.perf_counter() - t0
        meta = {"job": job.job, "tier": job.tier, "params": params, "components": job.components,
                "created": job.created, "finished": time.time(), "seconds": elapsed}
        try:
            self.store.put(job.id, meta, artifacts,
                           request_file=self.journal.request_path(job.id) if self.journal else None)
            self.store.evict(keep=(job.id,))   # past the cap: the least recently used go, never this one
        except OSError as exc:  # the result still goes to the clients; say it was not kept
            log.error("result not stored", extra={"fields": {"job_id": job.id, "error": str(exc)}})
        log.info("job done", extra={"fields": {"job_id": job.id, "seconds": round(elapsed, 3)}})
        return JobEvent("done", job.id, 1.0, "done", artifacts=artifacts)
