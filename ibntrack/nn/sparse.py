"""Model-level control of sparse instance normalization: sparsity, stream reset/refresh, stream state.

Every function walks ``model.modules()`` and acts on each :class:`~ibntrack.nn.norm.IBN` layer (also
inside a folded model). Only eval mode is affected: training always uses exact IN.

Runners that are not torch modules (e.g. :class:`ibntrack.export.OnnxModel`) take part by duck typing:
an object with a ``sparse_control`` attribute is driven through it — ``set_sparsity(s)``,
``reset_stream()``, ``force_refresh()``, ``stream_stats() -> dict``, ``get_stream_state()``,
``set_stream_state(state)`` (see :class:`SparseControl`).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from torch import nn

from ibntrack.nn.norm import IBN, StreamState, _check_sparsity

__all__ = [
    "SparseControl",
    "force_refresh",
    "get_stream_state",
    "ibn_layers",
    "reset_stream",
    "set_sparsity",
    "set_stream_state",
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

    def set_stream_state(self, state: tuple[StreamState, ...]) -> None: ...


def _control(model: Any) -> SparseControl | None:
    """``model.sparse_control`` of a non-module runner, else None (torch modules: walk the IBN layers)."""
    if isinstance(model, nn.Module):
        return None
    control = getattr(model, "sparse_control", None)
    if control is None:
        raise ValueError(f"model must be an nn.Module or have a sparse_control, got {type(model).__name__}")
    return control


def ibn_layers(model: nn.Module) -> list[IBN]:
    """The IBN layers of ``model`` in module order."""
    return [m for m in model.modules() if isinstance(m, IBN)]


def set_sparsity(model: nn.Module, s: int) -> None:
    """Set the sparsity factor ``s`` (int ≥ 1; 1 = exact IN) of every IBN layer.

    Raises:
        ValueError: ``s`` is not an int ≥ 1.
    """
    s = _check_sparsity(s)
    control = _control(model)
    if control is not None:
        control.set_sparsity(s)
        return
    for layer in ibn_layers(model):
        layer.sparsity = s


def reset_stream(model: nn.Module) -> None:
    """Start a new stream: clear the cached IN statistics and the frame counters."""
    control = _control(model)
    if control is not None:
        control.reset_stream()
        return
    for layer in ibn_layers(model):
        layer.reset_stream()


def force_refresh(model: nn.Module) -> None:
    """The next eval frame recomputes IN statistics and the refresh schedule restarts from it."""
    control = _control(model)
    if control is not None:
        control.force_refresh()
        return
    for layer in ibn_layers(model):
        layer.force_refresh()


def stream_stats(model: nn.Module) -> dict[str, int]:
    """Counters of the current stream at the first IBN layer.

    Returns:
        ``{"frames": frames seen in eval mode, "refreshes": frames whose IN statistics were computed}``
        since the last reset (zeros for a model without IBN layers).
    """
    control = _control(model)
    if control is not None:
        return dict(control.stream_stats())
    layers = ibn_layers(model)
    if not layers:
        return {"frames": 0, "refreshes": 0}
    state = layers[0].stream_state
    return {"frames": state.frames, "refreshes": state.refreshes}


def get_stream_state(model: nn.Module) -> tuple[StreamState, ...]:
    """Snapshot of every IBN layer's stream state, in module order (immutable, safe to keep).

    A snapshot of a model can be restored into its folded copy and vice versa (same layer order).
    """
    control = _control(model)
    if control is not None:
        return tuple(control.get_stream_state())
    return tuple(layer.stream_state for layer in ibn_layers(model))


def set_stream_state(model: nn.Module, state: tuple[StreamState, ...]) -> None:
    """Restore a snapshot from :func:`get_stream_state`, e.g. to switch one model between streams.

    Raises:
        ValueError: ``state`` does not match the model's IBN layers.
    """
    control = _control(model)
    if control is not None:
        control.set_stream_state(tuple(state))
        return
    layers = ibn_layers(model)
    state = tuple(state)
    if len(state) != len(layers):
        raise ValueError(f"state holds {len(state)} layer states, model has {len(layers)} IBN layers")
    for layer, layer_state in zip(layers, state, strict=True):
        layer.stream_state = layer_state
