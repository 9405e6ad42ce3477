"""Backend test fixtures. Anny loads once per test session (the process keeps it:
`load_anny_model` caches it), and its disk cache is shared (tests/conftest.py)."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def anny_model():
    """The process-wide Anny body model (~1 s with a warm cache, ~50 s cold)."""
    from avatarforge.backend.models.anny_model import load_anny_model

    return load_anny_model()
