"""Shared test set-up: the suite's own cache folder.

No test reads a cache that a previous run left (DESIGN §8: a fresh machine is
the reference), and HOME does not matter. Everything that would otherwise be
cached under ~/.cache goes into one folder of this run:

    $AVATARFORGE_TEST_CACHE/anny    ANNY_CACHE_DIR: Anny's built model data (~1.2 GB, ~50-80 s to build)
    $AVATARFORGE_TEST_CACHE/text    AVATARFORGE_TEXT_CACHE: codebook embeddings
    $AVATARFORGE_TEST_CACHE/wheels  AVATARFORGE_WHEEL_CACHE: pyzmq/msgpack wheels for the add-on zips
    $AVATARFORGE_TEST_CACHE/store   AVATARFORGE_STORE: results of backends started without --store

`make test` creates that folder empty, shares it between its three pytest
sessions (backend, Blender 5.0, Blender 4.2: Anny is built once per run, not
three times) and removes it afterwards. A pytest run without
AVATARFORGE_TEST_CACHE makes a temporary folder of its own and removes it at
the end. These variables are set here, at import, so that every module
(anny reads ANNY_CACHE_DIR when imported) and every backend subprocess the
tests start inherits them; values from the caller's environment are replaced.

Anny's cache is built by one session fixture, `anny_cache`, before anything
loads Anny or starts a backend (a backend that built it inside a test would
spend a minute of that test's time). Its folder records the identity of what
built it (the anny distribution's files, torch, numpy, and our module that
chooses the build arguments); a folder that does not match is emptied and
rebuilt, so a folder handed in with AVATARFORGE_TEST_CACHE is only reused
when it is valid for the code and weights that read it.
"""
from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BACKEND_PYTHON = REPO / ".venv" / "bin" / "python"
ANNY_MODULE = "avatarforge.backend.models.anny_model"

_GIVEN = os.environ.get("AVATARFORGE_TEST_CACHE")
TEST_CACHE = Path(_GIVEN) if _GIVEN else Path(tempfile.mkdtemp(prefix="avatarforge-test-cache-"))
_OWN_FOLDER = not _GIVEN          # made here: removed at the end of the session
TEST_CACHE.mkdir(parents=True, exist_ok=True)

CACHE_ENV = {
    "AVATARFORGE_TEST_CACHE": str(TEST_CACHE),
    "ANNY_CACHE_DIR": str(TEST_CACHE / "anny"),
    "AVATARFORGE_TEXT_CACHE": str(TEST_CACHE / "text"),
    "AVATARFORGE_WHEEL_CACHE": str(TEST_CACHE / "wheels"),
    "AVATARFORGE_STORE": str(TEST_CACHE / "store"),
}
os.environ.update(CACHE_ENV)
if "anny.paths" in sys.modules:   # imported before this file (a plugin): point it at ours too
    sys.modules["anny.paths"].set_anny_cache_path(CACHE_ENV["ANNY_CACHE_DIR"])

_ANNY_REPORT: list[str] = []


# -- Anny's cache: built once, by the backend's Python, before anyone needs it -------

def anny_identity() -> dict[str, str]:
    """What Anny's built data depends on. anny keys its cache files only by the
    builder's arguments and its data-format number, not by its files or torch."""
    from importlib.metadata import distribution

    anny = distribution("anny")
    module = importlib.util.find_spec(ANNY_MODULE)
    return {
        "anny": anny.version,
        "anny_files": hashlib.sha256((anny.read_text("RECORD") or "").encode()).hexdigest(),
        "anny_root": os.environ.get("ANNY_ROOT_DIR", ""),
        "torch": distribution("torch").version,
        "numpy": distribution("numpy").version,
        "build_arguments": hashlib.sha256(Path(module.origin).read_bytes()).hexdigest() if module else "",
    }


def build_anny_cache(folder: Path) -> str:
    """Builds Anny's cache in `folder` unless it holds a complete build with the
    same identity; returns what it did. Runs in the backend's Python."""
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / "identity.json"
    with open(folder.parent / "anny.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)          # one builder at a time (sessions, backends)
        identity = anny_identity()
        if marker.exists() and json.loads(marker.read_text()) == identity:
            return "valid build reused"
        for child in folder.iterdir():              # absent, partial or built by something else
            shutil.rmtree(child) if child.is_dir() else child.unlink()
        start = time.perf_counter()
        from avatarforge.backend.models.anny_model import load_anny_model

        load_anny_model()
        marker.write_text(json.dumps(identity, indent=1))
        return f"built in {time.perf_counter() - start:.1f} s"


def ensure_anny_cache() -> str:
    """The session's Anny cache, built or checked in this process when it is the
    backend's Python, else through the backend environment (.venv)."""
    folder = Path(CACHE_ENV["ANNY_CACHE_DIR"])
    start = time.perf_counter()
    if importlib.util.find_spec("anny") is not None:
        what = build_anny_cache(folder)
    else:
        if not BACKEND_PYTHON.exists():
            raise RuntimeError(f"the backend environment is missing ({BACKEND_PYTHON}); create it with "
                               "`make backend-env`")
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
        done = subprocess.run([str(BACKEND_PYTHON), __file__, "build-anny-cache", str(folder)], cwd=REPO, env=env,
                              text=True, capture_output=True)
        if done.returncode != 0:
            raise RuntimeError(f"building Anny's cache failed:\n{done.stdout}\n{done.stderr}")
        what = done.stdout.strip().splitlines()[-1]
    _ANNY_REPORT.append(f"Anny cache {folder}: {what} ({time.perf_counter() - start:.1f} s in this session)")
    return str(folder)


if __name__ == "__main__":      # `python tests/conftest.py build-anny-cache DIR` (from ensure_anny_cache)
    if sys.argv[1:2] != ["build-anny-cache"] or len(sys.argv) != 3:
        sys.exit("usage: conftest.py build-anny-cache DIR")
    sys.path.remove(str(Path(__file__).resolve().parent))   # tests/ holds packages named backend, build...
    print(build_anny_cache(Path(sys.argv[2])))
    sys.exit(0)


import pytest  # noqa: E402  (not needed by the builder above)


@pytest.fixture(scope="session")
def anny_cache() -> str:
    """Anny's cache folder for this session (and every backend it starts), built once."""
    return ensure_anny_cache()


def pytest_report_header(config: pytest.Config) -> str:
    return f"avatarforge test caches: {TEST_CACHE} ({'this session' if _OWN_FOLDER else 'AVATARFORGE_TEST_CACHE'})"


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    for line in _ANNY_REPORT:
        terminalreporter.write_line(line)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _OWN_FOLDER:
        shutil.rmtree(TEST_CACHE, ignore_errors=True)
