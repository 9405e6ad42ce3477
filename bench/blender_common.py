"""What the Blender benchmarks share: a body avatar fetched from a backend
(a running one at `address`, or one started for the run)."""
from __future__ import annotations

import os
import tempfile
from typing import Any


def fetch_body_avatar(addon: Any, params: dict[str, Any], address: str | None = None,
                      backend_python: str | None = None) -> Any:
    """The `body` job's RiggedAvatar for `params`, from `address` or from a
    backend started with `backend_python` (stopped again before returning)."""
    af = addon.api
    backend = None
    with tempfile.TemporaryDirectory(prefix="af-bench-") as tmp:
        try:
            if address is None:
                backend = addon.backend_process.LocalBackend(backend_python, "tcp://127.0.0.1:*",
                                                             os.path.join(tmp, "store")).start()
                address = backend.wait_ready(300)
            _job_id, (avatar,) = af.run("body", params, address=address, timeout_s=600)
            return avatar
        finally:
            af.close()
            if backend is not None:
                backend.stop()
