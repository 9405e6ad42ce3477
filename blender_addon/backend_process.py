"""Starting and stopping a local backend process.

The backend lives in its own Python environment (torch, models); the add-on
only knows that environment's interpreter and runs
`<python> -m avatarforge.backend.cli serve --bind ... [--store ...]`.
`start()` returns at once (the UI never waits); the server prints
"avatarforge serving on <endpoint>" when it listens, which a reader thread
picks up. Scripts that need it ready call `wait_ready()`.
"""
from __future__ import annotations

import collections
import os
import signal
import subprocess
import threading
import time
from typing import IO, Sequence

READY_PREFIX = "avatarforge serving on "


class BackendStartFailed(Exception):
    """The local backend could not be started; the message says what to fix."""


class LocalBackend:
    def __init__(self, python: str, bind: str, store: str | None = None, extra_args: Sequence[str] = (),
                 env: dict[str, str] | None = None) -> None:
        self.python = python
        self.bind = bind
        self.store = store
        self.extra_args = list(extra_args)
        self.env = env
        self.proc: subprocess.Popen[str] | None = None
        self.address = ""                                    # set when the server listens
        self.log: collections.deque[str] = collections.deque(maxlen=400)
        self._ready = threading.Event()

    def command(self) -> list[str]:
        cmd = [self.python, "-m", "avatarforge.backend.cli", "serve", "--bind", self.bind]
        if self.store:
            cmd += ["--store", self.store]
        return cmd + self.extra_args

    @property
    def state(self) -> str:
        if self.proc is None:
            return "stopped"
        if self.proc.poll() is not None:
            return f"exited ({self.proc.returncode})"
        return "running" if self._ready.is_set() else "starting"

    def start(self) -> "LocalBackend":
        if self.proc is not None and self.proc.poll() is None:
            return self
        if not self.python:
            raise BackendStartFailed("set the backend's Python interpreter in the AvatarForge preferences "
                                     "(e.g. <checkout>/.venv/bin/python) to start a local backend")
        if not (os.path.isfile(self.python) and os.access(self.python, os.X_OK)):
            raise BackendStartFailed(f"'{self.python}' is not an executable Python interpreter; point the "
                                     "preferences at the backend environment's bin/python (Scripts\\python.exe "
                                     "on Windows)")
        self._ready.clear()
        self.address = ""
        env = dict(os.environ if self.env is None else self.env, PYTHONUNBUFFERED="1")
        try:
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, text=True, env=env)
        except OSError as exc:
            raise BackendStartFailed(f"cannot run {self.python}: {exc}") from None
        self._read(self.proc.stdout, watch_ready=True)
        self._read(self.proc.stderr, watch_ready=False)
        return self

    def _read(self, stream: IO[str] | None, watch_ready: bool) -> None:
        def pump() -> None:
            assert stream is not None
            for line in stream:
                line = line.rstrip()
                self.log.append(line)
                if watch_ready and line.startswith(READY_PREFIX):
                    self.address = line[len(READY_PREFIX):].strip()
                    self._ready.set()
        threading.Thread(target=pump, name="avatarforge-backend-log", daemon=True).start()

    def wait_ready(self, timeout_s: float = 120.0) -> str:
        """Block until the server listens; returns its address."""
        deadline = time.monotonic() + timeout_s
        while not self._ready.wait(0.1):
            if self.proc is None or self.proc.poll() is not None:
                raise BackendStartFailed(self._failure("exited before listening"))
            if time.monotonic() > deadline:
                self.stop()
                raise BackendStartFailed(self._failure(f"did not listen within {timeout_s:g} s"))
        return self.address

    def _failure(self, what: str) -> str:
        tail = "\n".join(list(self.log)[-15:])
        hint = ""
        if "No module named" in tail:
            hint = " (is this the backend's environment? install it with `make backend-env`)"
        elif "Address already in use" in tail or "EADDRINUSE" in tail:
            hint = f" ({self.bind} is taken: another backend may already run there; connect to it instead)"
        return f"the local backend {what}{hint}:\n{tail}"

    def stop(self, timeout_s: float = 15.0) -> int | None:
        """SIGTERM (the server shuts down cleanly), then kill after `timeout_s`."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            if os.name == "nt":
                self.proc.terminate()
            else:
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._ready.clear()
        return self.proc.returncode


def connect_address(bind: str) -> str:
    """Where a client reaches a server bound to `bind`: a wildcard host means
    this machine. A wildcard port is only known once the server listens."""
    scheme, sep, rest = bind.partition("://")
    host, colon, port = rest.rpartition(":")
    if not sep or not colon:
        raise BackendStartFailed(f"'{bind}' is not a ZeroMQ address like tcp://127.0.0.1:5757")
    if port == "*":
        raise BackendStartFailed(f"'{bind}' has no fixed port; give the local backend one (e.g. :5757) "
                                 "so Blender knows where to connect")
    if host in ("*", "0.0.0.0", "", "[::]", "::"):
        host = "127.0.0.1"
    return f"{scheme}://{host}:{port}"


LOCAL: LocalBackend | None = None   # the backend the preferences started, if any
