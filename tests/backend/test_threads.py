"""single_threaded_torch: overlapping sections on several threads share one
setting of torch's process-global thread count and restore it once."""
from __future__ import annotations

import threading

import pytest
import torch

from avatarforge.backend.core.threads import single_threaded_torch

ORIGINAL = 3     # a count no section would set, so a wrong restore shows


@pytest.fixture
def thread_calls(monkeypatch):
    """Every torch.set_num_threads call (still applied), starting from ORIGINAL."""
    before = torch.get_num_threads()
    torch.set_num_threads(ORIGINAL)
    real = torch.set_num_threads
    calls: list[int] = []

    def recording(n: int) -> None:
        calls.append(n)
        real(n)

    monkeypatch.setattr(torch, "set_num_threads", recording)
    yield calls
    real(before)


def test_overlapping_sections_on_two_threads_restore_once(thread_calls):
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, int] = {}
    errors: list[BaseException] = []

    def first() -> None:          # enters first, leaves while the second still runs
        try:
            with single_threaded_torch():
                a_in.set()
                assert b_in.wait(10)
                seen["a"] = torch.get_num_threads()
            a_out.set()
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            errors.append(e)
            a_out.set()

    def second() -> None:         # enters inside the first, leaves last
        try:
            assert a_in.wait(10)
            with single_threaded_torch():
                b_in.set()
                assert a_out.wait(10)
                seen["b_after_a_left"] = torch.get_num_threads()
        except BaseException as e:  # noqa: BLE001
            errors.append(e)
            b_in.set()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert not errors, errors
    assert seen == {"a": 1, "b_after_a_left": 1}     # the first one out did not restore
    assert thread_calls == [1, ORIGINAL]             # set once, restored exactly once
    assert torch.get_num_threads() == ORIGINAL


def test_nested_and_failing_sections_restore(thread_calls):
    with pytest.raises(RuntimeError):
        with single_threaded_torch():
            with single_threaded_torch():
                assert torch.get_num_threads() == 1
            assert torch.get_num_threads() == 1
            raise RuntimeError("boom")
    assert thread_calls == [1, ORIGINAL] and torch.get_num_threads() == ORIGINAL
    with single_threaded_torch():                    # a later section saves afresh
        assert torch.get_num_threads() == 1
    assert thread_calls == [1, ORIGINAL, 1, ORIGINAL]
