"""The refresh schedule of sparse instance normalisation: one per stream, the only copy of the rule.

With sparsity factor ``s`` the IN statistics of a stream are computed on frames ``t = 0, s, 2s, …``
(``t`` counted from the last reset or forced refresh) and every other frame reuses the statistics of the
nearest preceding computed frame. ``s = 1`` is exact IN. A frame also refreshes when the stream has just
started, when a refresh was forced (:meth:`RefreshSchedule.force`), or when no statistics are cached.

:class:`RefreshSchedule` holds the counters of one stream and answers, for the next ``n`` frames, which
of them compute statistics (:meth:`RefreshSchedule.plan`). Whoever runs the network owns the schedule of
its stream: the torch backend binds it to every IBN layer of its model (the layers then read the plan of
the frame batch they are in through :meth:`RefreshSchedule.plan_for`), the ONNX Runtime backend reads
the plan to choose between its refresh and cached graphs.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

__all__ = ["Plan", "RefreshSchedule", "ScheduleState", "check_sparsity"]


def check_sparsity(s: object) -> int:
    """``s`` itself when it is an int ≥ 1.

    Raises:
        ValueError: ``s`` is not an int ≥ 1 (a bool, a float or a string included).
    """
    if isinstance(s, bool) or not isinstance(s, int) or s < 1:
        raise ValueError(f"sparsity must be an int >= 1, got {s!r}")
    return s


@dataclasses.dataclass(frozen=True)
class Plan:
    """Which images of a frame batch compute their own IN statistics.

    Attributes:
        selected: batch indices whose statistics are computed (in order).
        source: per image, the row of the statistics table it uses: rows ``0 … len(selected) − 1`` are the
            computed statistics in order, row ``len(selected)`` the statistics cached before the batch.
    """

    selected: tuple[int, ...]
    source: tuple[int, ...]

    @property
    def exact(self) -> bool:
        """Every image uses its own statistics (exact IN)."""
        return len(self.selected) == len(self.source)

    @property
    def flags(self) -> tuple[bool, ...]:
        """Per image of the batch, whether it computes its own statistics."""
        chosen = set(self.selected)
        return tuple(i in chosen for i in range(len(self.source)))


_ONE_REFRESH = Plan(selected=(0,), source=(0,))  # a one-frame batch that computes its statistics
_ONE_CACHED = Plan(selected=(), source=(0,))  # a one-frame batch that reuses the cache


@dataclasses.dataclass(frozen=True)
class ScheduleState:
    """A snapshot of a :class:`RefreshSchedule`'s counters.

    Attributes:
        frames: frames planned since the last reset.
        refreshes: of those, frames that computed their statistics.
        since: frames since the last refresh frame (the refresh frame itself counts as 0).
        force: the next frame refreshes and the schedule restarts from it.
    """

    frames: int = 0
    refreshes: int = 0
    since: int = 0
    force: bool = False


class RefreshSchedule:
    """The sparse-IN refresh schedule of one stream.

    Args:
        sparsity: the sparsity factor ``s`` (int ≥ 1).

    Attributes:
        sparsity: ``s``; settable (validated).
        state: the counters as a :class:`ScheduleState`; assign a saved one to switch streams.
    """

    def __init__(self, sparsity: int = 1) -> None:
        self._sparsity = check_sparsity(sparsity)
        self._frames = 0
        self._refreshes = 0
        self._since = 0
        self._force = False
        self._batch: Plan | None = None  # the plan of the frame batch in flight (see plan_for)
        self._members: set[int] = set()  # ids of the layers that read it

    # ------------------------------------------------------------------------------------------ settings
    @property
    def sparsity(self) -> int:
        """Sparsity factor ``s``: statistics are computed on every ``s``-th frame."""
        return self._sparsity

    @sparsity.setter
    def sparsity(self, s: int) -> None:
        self._sparsity = check_sparsity(s)

    @property
    def state(self) -> ScheduleState:
        return ScheduleState(self._frames, self._refreshes, self._since, self._force)

    @state.setter
    def state(self, state: ScheduleState) -> None:
        if not isinstance(state, ScheduleState):
            raise ValueError(f"state must be a ScheduleState, got {type(state).__name__}")
        self._frames, self._refreshes = int(state.frames), int(state.refreshes)
        self._since, self._force = int(state.since), bool(state.force)
        self._end_batch()

    def stats(self) -> dict[str, int]:
        """``{"frames", "refreshes"}`` since the last reset."""
        return {"frames": self._frames, "refreshes": self._refreshes}

    def reset(self) -> None:
        """A new stream: zero the counters (its first frame refreshes)."""
        self.state = ScheduleState()

    def force(self) -> None:
        """The next frame refreshes and the schedule restarts from it."""
        self._force = True
        self._end_batch()

    def __repr__(self) -> str:
        return f"RefreshSchedule(sparsity={self._sparsity}, {self.state})"

    def __deepcopy__(self, memo: dict[int, Any]) -> RefreshSchedule:
        """A copy with the same sparsity and counters and no frame batch in flight."""
        out = copy.copy(self)
        out._end_batch()
        memo[id(self)] = out
        return out

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_batch"], state["_members"] = None, set()
        return state

    # ---------------------------------------------------------------------------------------- planning
    def plan(self, n: int, cached: bool = True) -> Plan:
        """Advance the stream by ``n`` frames and say which of them compute their statistics.

        Args:
            n: frames in the batch (≥ 1), in stream order.
            cached: statistics of an earlier frame are cached; False makes the first frame refresh.
        """
        if n != 1:
            return self._plan_general(n, cached)
        # the hot path of streaming inference (one frame per call): no lists, one branch
        refresh = self._force or self._frames == 0 or not cached or self._since >= self._sparsity
        self._frames += 1
        self._refreshes += refresh
        self._since = 1 if refresh else self._since + 1
        self._force = False
        return _ONE_REFRESH if refresh else _ONE_CACHED

    def _plan_general(self, n: int, cached: bool) -> Plan:
        """:meth:`plan` for any ``n`` (the one-frame fast path must agree with it, see the tests)."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be an int >= 1, got {n!r}")
        force = self._force or self._frames == 0 or not cached
        since = self._since
        selected: list[int] = []
        source: list[int] = []
        for i in range(n):
            if force or since >= self._sparsity:
                selected.append(i)
                since = 0
                force = False
            source.append(len(selected) - 1)
            since += 1
        cached_row = len(selected)
        self._frames += n
        self._refreshes += len(selected)
        self._since = since
        self._force = force
        return Plan(tuple(selected), tuple(cached_row if r < 0 else r for r in source))

    def plan_for(self, member: object, n: int, cached: bool = True) -> Plan:
        """The plan of the frame batch ``member`` (one of the IBN layers sharing this schedule) is in.

        The first member to ask starts a batch (:meth:`plan`); the others get the same plan; a member
        asking a second time, or with another ``n``, starts the next batch. In a network every IBN layer
        runs once per forward pass, so one forward pass is one batch of the stream.
        """
        key = id(member)
        if self._batch is None or key in self._members or len(self._batch.source) != n:
            self._batch = self.plan(n, cached)
            self._members = set()
        self._members.add(key)
        return self._batch

    def end_batch(self) -> None:
        """End the frame batch in flight: the next layer to ask starts the next batch.

        For a runner that switches between two copies of a network (whose layers are other members)
        between frames, e.g. the torch backend after test-time BN adaptation.
        """
        self._end_batch()

    def _end_batch(self) -> None:
        self._batch = None
        self._members = set()
