"""Read frames ahead on a thread while the network runs on the current one.

Decoding a JPEG or a video frame (OpenCV, which releases the GIL) costs about 1 ms for a 640×352 frame on
this project's CPU, more for larger frames: time the tracking loop would otherwise spend waiting. A
:class:`Prefetcher` runs the source's iterator on a daemon thread, ``depth`` frames ahead, and hands the
frames over in order; exceptions of the source are re-raised in the consumer at the position they
happened, and closing it (or leaving its ``with`` block) stops the reader.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Generic, TypeVar

__all__ = ["Prefetcher"]

T = TypeVar("T")

_DONE = object()


class Prefetcher(Generic[T]):
    """Iterate ``items`` on a background thread, at most ``depth`` + 1 items ahead of the consumer.

    (``depth`` items queued and one decoded, waiting for room.)

    Args:
        items: any iterable (e.g. a :class:`~ibntrack.engine.sources.FrameSource`).
        depth: items read ahead (≥ 1).

    Use as ``with Prefetcher(src) as frames: for frame_id, frame in frames: ...``.
    """

    def __init__(self, items: Iterable[T], depth: int = 2) -> None:
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
            raise ValueError(f"depth must be a positive int, got {depth!r}")
        self._items = items
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        try:
            for item in self._items:
                if not self._put(("item", item)):
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            self._put(("error", exc))
            return
        self._put(("done", _DONE))

    def _put(self, entry: tuple) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[T]:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="ibntrack-reader", daemon=True)
            self._thread.start()
        while True:
            kind, value = self._queue.get()
            if kind == "item":
                yield value
            elif kind == "error":
                raise value
            else:
                return

    def close(self, timeout: float = 2.0) -> None:
        """Stop the reader thread (it finishes the frame it is decoding) and wait up to ``timeout`` s.

        A reader blocked inside the source (a stalled camera) is left behind as a daemon thread.
        """
        self._stop.set()
        if self._thread is not None:
            deadline = time.monotonic() + timeout
            while self._thread.is_alive() and time.monotonic() < deadline:
                try:  # unblock a reader waiting on a full queue
                    self._queue.get_nowait()
                except queue.Empty:
                    pass
                self._thread.join(timeout=0.05)

    def __enter__(self) -> Prefetcher[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
