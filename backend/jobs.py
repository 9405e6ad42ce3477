"""Jobs and the workers that run them.

Workers are threads, one queue per device: a long job never blocks the
server's socket loop, which keeps answering `ping` and `status`. Workers never
touch the ROUTER socket (ZeroMQ sockets are not thread-safe): they post events
to a queue and wake the loop through an inproc socket.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import zmq

from avatarforge.protocol import ErrorCode, ProtocolError

from .config import BackendConfig
from .pipelines import JobCancelled, JobContext, Pipeline, record_components
from .store import ResultStore

log = logging.getLogger("avatarforge.jobs")
WAKE_ADDRESS = "inproc://avatarforge-wake"
PROGRESS_INTERVAL_S = 0.05   # at most 20 progress events a second, stage changes always go out


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


class WorkerPool:
    """Threads that take jobs from a queue and run their pipelines."""

    def __init__(self, ctx: zmq.Context, config: BackendConfig, pipelines: dict[str, Pipeline],
                 store: ResultStore, events: "queue.SimpleQueue[JobEvent]") -> None:
        self.config = config
        self.pipelines = pipelines
        self.store = store
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
            if stage != last["stage"] or now - last["t"] >= PROGRESS_INTERVAL_S or fraction >= 1.0:
                last.update(t=now, stage=stage)
                post(JobEvent("progress", job.id, fraction, stage))

        ctx = JobContext(config=self.config, device=self.config.device, seed=job.seed,
                         on_progress=on_progress, cancel_event=job.cancel_event)
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
            self.store.put(job.id, meta, artifacts)
        except OSError as exc:  # the result still goes to the clients; say it was not kept
            log.error("result not stored", extra={"fields": {"job_id": job.id, "error": str(exc)}})
        log.info("job done", extra={"fields": {"job_id": job.id, "seconds": round(elapsed, 3)}})
        return JobEvent("done", job.id, 1.0, "done", artifacts=artifacts)
