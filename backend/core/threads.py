"""Torch's intra-op thread count, shared safely by concurrent jobs.

Some work (motion synthesis: Adam over tensors of a few thousand numbers) runs
~30x faster on one thread than with several threads fighting over tiny
tensors. But `torch.set_num_threads` is process-global and the server runs
jobs on several worker threads at once, so a job that saves, sets and
restores the count itself races with an overlapping one (one restores the
old count while the other still optimises, or saves 1 and restores 1 forever).
Here one counter decides: the first section in saves the count and sets 1,
the last one out restores what was saved.

While any section is open, all torch work in the process runs on one thread,
including that of jobs outside a section; that is the price of a global
setting, and sections are short.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

_lock = threading.Lock()
_open_sections = 0
_saved_threads: int | None = None


@contextmanager
def single_threaded_torch() -> Iterator[None]:
    """Run the body with torch on one intra-op thread; nested and overlapping
    sections (any threads) share it, and the count from before the first one
    comes back when the last one ends (also on exceptions)."""
    global _open_sections, _saved_threads
    import torch

    with _lock:      # held only to enter and leave: sections run concurrently
        if _open_sections == 0:
            _saved_threads = torch.get_num_threads()
            torch.set_num_threads(1)
        _open_sections += 1
    try:
        yield
    finally:
        with _lock:
            _open_sections -= 1
            if _open_sections == 0:
                assert _saved_threads is not None
                torch.set_num_threads(_saved_threads)
                _saved_threads = None
