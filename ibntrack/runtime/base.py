"""The Backend protocol: images in, head maps out, for one stream whose refresh schedule it owns.

A backend is what :class:`ibntrack.engine.infer.Tracker` runs the network through. Whatever executes the
graph (eager PyTorch, ONNX Runtime, later bf16 or int8 variants), it

* takes ``images: Tensor[N, 3, H, W]`` float32 (ImageNet-normalised RGB, H and W multiples of 32; the
  batch axis is the frame order of one stream) and returns the maps of
  :class:`~ibntrack.nn.model.TrackerNet`, ``{"hm", "wh", "reg", "id"}``, as float32 tensors;
* owns the stream's :class:`~ibntrack.nn.schedule.RefreshSchedule` (``backend.schedule``) and speaks
  :class:`~ibntrack.nn.sparse.SparseControl`, so ``ibntrack.nn.set_sparsity / reset_stream /
  force_refresh / stream_stats / get_stream_state / set_stream_state`` drive it as they drive a model.

:class:`StreamBackend` implements the part every backend shares (sparsity, forced refresh, counters).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from ibntrack.nn.norm import StreamState
from ibntrack.nn.schedule import RefreshSchedule
from ibntrack.nn.sparse import SparseControl
from ibntrack.sizes import check_multiple

__all__ = ["MAP_NAMES", "Backend", "Maps", "StreamBackend", "check_images"]

MAP_NAMES = ("hm", "wh", "reg", "id")
"""The head maps every backend returns, in graph output order."""

Maps = dict[str, Tensor]


@runtime_checkable
class Backend(Protocol):
    """Runs the tracking network for one stream (see the module docstring).

    Attributes:
        name: the backend's name as ``--backend`` spells it (``"torch"``, ``"onnxruntime"``).
        schedule: the stream's refresh schedule.
        device: where the returned maps are.
        last_path: ``"refresh"`` when the last call computed IN statistics, ``"cached"`` when it reused
            them (``""`` before the first call).
    """

    name: str
    schedule: RefreshSchedule
    device: torch.device
    last_path: str

    def __call__(self, images: Tensor) -> Maps: ...

    @property
    def sparse_control(self) -> SparseControl: ...

    @property
    def sparsity(self) -> int: ...

    def set_sparsity(self, s: int) -> None: ...

    def reset_stream(self) -> None: ...

    def force_refresh(self) -> None: ...

    def stream_stats(self) -> dict[str, int]: ...

    def get_stream_state(self) -> tuple[StreamState, ...]: ...

    def set_stream_state(self, state: Sequence[StreamState]) -> None: ...


def check_images(images: Tensor) -> None:
    """Raise ``ValueError`` unless ``images`` is ``[N, 3, H, W]`` with H and W multiples of 32."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be [N, 3, H, W], got shape {tuple(images.shape)}")
    check_multiple(int(images.shape[2]), int(images.shape[3]))


class StreamBackend:
    """What every backend shares: its stream's schedule, the sparsity, forced refresh and counters.

    Subclasses implement ``__call__``, :meth:`reset_stream`, :meth:`get_stream_state` and
    :meth:`set_stream_state` (they hold the cached statistics).
    """

    name = ""

    def __init__(self, schedule: RefreshSchedule, device: str | torch.device = "cpu") -> None:
        if not isinstance(schedule, RefreshSchedule):
            raise ValueError(f"schedule must be a RefreshSchedule, got {type(schedule).__name__}")
        self.schedule = schedule
        self.device = torch.device(device)
        self.last_path = ""

    @property
    def sparse_control(self) -> SparseControl:
        """The object the ``ibntrack.nn`` sparse-IN functions drive (the backend itself)."""
        return self

    def __call__(self, images: Tensor) -> Maps:
        raise NotImplementedError

    def reset_stream(self) -> None:
        """Forget the cached statistics and restart the schedule."""
        raise NotImplementedError

    def get_stream_state(self) -> tuple[StreamState, ...]:
        """Per-IBN-layer snapshot (see :func:`ibntrack.nn.get_stream_state`)."""
        raise NotImplementedError

    def set_stream_state(self, state: Sequence[StreamState]) -> None:
        """Restore a snapshot from :meth:`get_stream_state`."""
        raise NotImplementedError

    @property
    def sparsity(self) -> int:
        """The sparsity factor ``s`` of the stream."""
        return self.schedule.sparsity

    def set_sparsity(self, s: int) -> None:
        """Sparsity factor ``s`` (int ≥ 1): IN statistics are computed every ``s``-th frame."""
        self.schedule.sparsity = s

    def force_refresh(self) -> None:
        """The next frame computes IN statistics and the schedule restarts from it."""
        self.schedule.force()

    def stream_stats(self) -> dict[str, int]:
        """``{"frames", "refreshes"}`` since the last reset (zeros for a network without IBN layers)."""
        return self.schedule.stats()
