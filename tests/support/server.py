"""Start a real `avatarforge serve` subprocess for tests (backend and Blender)."""
from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

REPO = Path(__file__).resolve().parents[2]
BACKEND_PYTHON = REPO / ".venv" / "bin" / "python"
TEST_PIPELINE = "tests.support.pipelines:StepPipeline"


class BackendProcess:
    """`avatarforge serve` on a free loopback port, with its log kept for asserts."""

    def __init__(self, store: Path, *extra: str, python: Path | None = None, plugins: bool = True,
                 start_timeout_s: float = 120.0) -> None:
        self.store = Path(store)
        self.python = Path(python or (BACKEND_PYTHON if BACKEND_PYTHON.exists() else sys.executable))
        self.extra = list(extra) + (["--pipeline", TEST_PIPELINE] if plugins else [])
        self.start_timeout_s = start_timeout_s
        self.proc: subprocess.Popen[str] | None = None
        self.address = ""
        self.log: list[str] = []

    def start(self, bind: str = "tcp://127.0.0.1:*") -> "BackendProcess":
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
                   PYTHONUNBUFFERED="1")
        cmd = [str(self.python), "-m", "avatarforge.backend.cli", "serve", "--bind", bind,
               "--store", str(self.store), *self.extra]
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        lines: "queue.Queue[str]" = queue.Queue()
        self._pump(self.proc.stdout, lines)
        self._pump(self.proc.stderr, None)
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.2)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            if line.startswith("avatarforge serving on "):
                self.address = line.split(" on ", 1)[1].strip()
                return self
        self.stop()
        raise RuntimeError("backend did not start:\n" + "\n".join(self.log[-40:]))

    def _pump(self, stream: IO[str] | None, lines: "queue.Queue[str] | None") -> None:
        def read() -> None:
            assert stream is not None
            for line in stream:
                self.log.append(line.rstrip())
                if lines is not None:
                    lines.put(line)
        threading.Thread(target=read, daemon=True).start()

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 30.0) -> int | None:
        """Signal the server and wait; returns its exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def __enter__(self) -> "BackendProcess":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
