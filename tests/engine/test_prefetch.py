"""Prefetcher: frames read ahead on a thread, in order, errors re-raised in place, stoppable."""

import itertools
import threading
import time

import pytest

from ibntrack.engine.prefetch import Prefetcher


def test_items_come_in_order_and_are_read_ahead():
    produced = []

    def source():
        for i in range(6):
            produced.append(i)
            yield i

    got = []
    with Prefetcher(source(), depth=2) as reader:
        for item in reader:
            if item == 0:
                deadline = time.monotonic() + 5
                while len(produced) < 4 and time.monotonic() < deadline:
                    time.sleep(0.01)
                # 0 handed over, 1 and 2 queued, 3 decoded and waiting for room
                assert produced == [0, 1, 2, 3], "the reader decodes ahead while the consumer works"
                time.sleep(0.05)
                assert len(produced) == 4, "never more than depth + 1 items ahead"
            got.append(item)
    assert got == list(range(6))


def test_a_source_error_is_raised_after_the_items_before_it():
    def source():
        yield 1
        yield 2
        raise ValueError("broken frame 3")

    got = []
    with pytest.raises(ValueError, match="broken frame 3"), Prefetcher(source()) as reader:
        for item in reader:
            got.append(item)
    assert got == [1, 2]


def test_close_stops_an_endless_source():
    stopped = threading.Event()

    def source():
        try:
            yield from itertools.count()
        finally:
            stopped.set()

    reader = Prefetcher(source(), depth=3)
    for item in reader:
        if item == 5:
            break
    reader.close()
    assert reader._thread is not None and not reader._thread.is_alive()
    with pytest.raises(ValueError, match="depth"):
        Prefetcher([], depth=0)
