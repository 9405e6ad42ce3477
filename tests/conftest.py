"""Shared test set-up.

Anny builds a ~800 MB cache on first use (~50 s): every test and every backend
subprocess shares one, so it is built once per machine, not once per test.
"""
from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("ANNY_CACHE_DIR", str(Path.home() / ".cache" / "avatarforge-tests" / "anny"))

REPO = Path(__file__).resolve().parents[1]
