"""Model-level control of sparse instance normalization: one schedule per stream, stream state.

The IBN layers of a model share one :class:`~ibntrack.nn.schedule.RefreshSchedule` (the stream's):
:func:`bind_schedule` puts a given one in every layer, :func:`stream_schedule` returns the shared one
(binding the first layer's to all of them when they do not share one yet). The other functions act on
it and on each layer's cached statistics (also inside a folded model). Only eval mode is affected:
training always uses exact IN.

Runners that are not torch modules (the runtime backends, e.g. :class:`ibntrack.runtime.OnnxBackend`)
take part through a ``sparse_control`` attribute speaking :class:`SparseControl`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from torch import nn

from ibntrack.nn.norm import IBN, StreamState
from ibntrack.nn.schedule import RefreshSchedule, check_sparsity

__all__ = [
    "SparseControl",
    "SparseRunner",
    "Streamable",
    "bind_schedule",
    "force_refresh",
    "get_stream_state",
    "ibn_layers",
    "reset_stream",
    "set_sparsity",
    "set_stream_state",
    "stream_schedule",
    "stream_stats",
]


@runtime_checkable
class SparseControl(Protocol):
    """Sparse-IN control of a runner that is not an ``nn.Module`` (reached as ``model.sparse_control``)."""

    def set_sparsity(self, s: int) -> None: ...

    def reset_stream(self) -> None: ...

    def force_refresh(self) -> None: ...

    def stream_stats(self) -> dict[str, int]: ...

    def get_stream_state(self) -> tuple[StreamState, ...]: ...

    def set_stream_state(self, state: Sequence[StreamState]) -> None: ...


class SparseRunner(Protocol):
    """A runner that is not a torch module and takes part through its ``sparse_control``."""

    @property
    def sparse_control(self) -> SparseControl: ...


Streamable = nn.Module | SparseRunner
"""What the model-level functions accept: a torch module (its IBN layers) or a runner."""


def _control(model: Any) -> SparseControl:
    """``model.sparse_control`` of a runner that is not a torch module."""
    control = getattr(model, "sparse_control", None)
    if control is None:
        raise ValueError(f"model must be an nn.Module or have a sparse_control, got {type(model).__name__}")
    return control


def ibn_layers(model: nn.Module) -> list[IBN]:
    """The IBN layers of ``model`` in module order."""
    return [m for m in model.modules() if isinstance(m, IBN)]


def bind_schedule(model: nn.Module, schedule: RefreshSchedule) -> RefreshSchedule:
    """Make ``schedule`` the refresh schedule of every IBN layer of ``model`` (one stream, one schedule).

    Returns:
        ``schedule``.
    """
    if not isinstance(schedule, RefreshSchedule):
        raise ValueError(f"schedule must be a RefreshSchedule, got {type(schedule).__name__}")
    for layer in ibn_layers(model):
        layer.schedule = schedule
    return schedule


def stream_schedule(model: nn.Module) -> RefreshSchedule | None:
    """The schedule shared by the IBN layers of ``model`` (None without IBN layers).

    Layers that do not share one yet (e.g. loose layers in an ``nn.Sequential``) are bound to the first
    layer's.
    """
    layers = ibn_layers(model)
    if not layers:
        return None
    schedule = layers[0].schedule
    if any(layer.schedule is not schedule for layer in layers):
        bind_schedule(model, schedule)
    return schedule


def set_sparsity(model: Streamable, s: int) -> None:
    """Set the sparsity factor ``s`` (int ≥ 1; 1 = exact IN) of the model's stream.

    Raises:
        ValueError: ``s`` is not an int ≥ 1.
    """
    s = check_sparsity(s)
    if not isinstance(model, nn.Module):
        control = _control(model)
        control.set_sparsity(s)
        return
    schedule = stream_schedule(model)
    if schedule is not None:
        schedule.sparsity = s


def reset_stream(model: Streamable) -> None:
    """Start a new stream: clear the cached IN statistics and the frame counters."""
    if not isinstance(model, nn.Module):
        control = _control(model)
        control.reset_stream()
        return
    stream_schedule(model)
    for layer in ibn_layers(model):
        layer.reset_stream()


def force_refresh(model: Streamable) -> None:
    """The next eval frame recomputes IN statistics and the refresh schedule restarts from it."""
    if not isinstance(model, nn.Module):
        control = _control(model)
        control.force_refresh()
        return
    schedule = stream_schedule(model)
    if schedule is not None:
        schedule.force()


def stream_stats(model: Streamable) -> dict[str, int]:
    """Counters of the model's stream.

    Returns:
        ``{"frames": frames seen in eval mode, "refreshes": frames whose IN statistics were computed}``
        since the last reset (zeros for a model without IBN layers).
    """
    if not isinstance(model, nn.Module):
        control = _control(model)
        return dict(control.stream_stats())
    schedule = stream_schedule(model)
    return {"frames": 0, "refreshes": 0} if schedule is None else schedule.stats()


def get_stream_state(model: Streamable) -> tuple[StreamState, ...]:
    """Snapshot of every IBN layer's statistics with the stream's counters, in module order.

    Immutable, safe to keep. A snapshot of a model can be restored into its folded copy, into an ONNX
    Runtime backend of the same export and vice versa (same layer order).
    """
    if not isinstance(model, nn.Module):
        control = _control(model)
        return tuple(control.get_stream_state())
    stream_schedule(model)
    return tuple(layer.stream_state for layer in ibn_layers(model))


def set_stream_state(model: Streamable, state: Sequence[StreamState]) -> None:
    """Restore a snapshot from :func:`get_stream_state`, e.g. to switch one model between streams.

    Raises:
        ValueError: ``state`` does not match the model's IBN layers.
    """
    if not isinstance(model, nn.Module):
        control = _control(model)
        control.set_stream_state(tuple(state))
        return
    stream_schedule(model)
    layers = ibn_layers(model)
    state = tuple(state)
    if len(state) != len(layers):
        raise ValueError(f"state holds {len(state)} layer states, model has {len(layers)} IBN layers")
    for layer, layer_state in zip(layers, state, strict=True):
        layer.stream_state = layer_state
