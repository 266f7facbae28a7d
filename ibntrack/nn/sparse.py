"""Model-level control of sparse instance normalization: sparsity, stream reset/refresh, stream state.

Every function walks ``model.modules()`` and acts on each :class:`~ibntrack.nn.norm.IBN` layer (also
inside a folded model). Only eval mode is affected: training always uses exact IN.
"""

from __future__ import annotations

from torch import nn

from ibntrack.nn.norm import IBN, StreamState, _check_sparsity

__all__ = [
    "force_refresh",
    "get_stream_state",
    "ibn_layers",
    "reset_stream",
    "set_sparsity",
    "set_stream_state",
    "stream_stats",
]


def ibn_layers(model: nn.Module) -> list[IBN]:
    """The IBN layers of ``model`` in module order."""
    return [m for m in model.modules() if isinstance(m, IBN)]


def set_sparsity(model: nn.Module, s: int) -> None:
    """Set the sparsity factor ``s`` (int ≥ 1; 1 = exact IN) of every IBN layer.

    Raises:
        ValueError: ``s`` is not an int ≥ 1.
    """
    s = _check_sparsity(s)
    for layer in ibn_layers(model):
        layer.sparsity = s


def reset_stream(model: nn.Module) -> None:
    """Start a new stream: clear the cached IN statistics and the frame counters."""
    for layer in ibn_layers(model):
        layer.reset_stream()


def force_refresh(model: nn.Module) -> None:
    """The next eval frame recomputes IN statistics and the refresh schedule restarts from it."""
    for layer in ibn_layers(model):
        layer.force_refresh()


def stream_stats(model: nn.Module) -> dict[str, int]:
    """Counters of the current stream at the first IBN layer.

    Returns:
        ``{"frames": frames seen in eval mode, "refreshes": frames whose IN statistics were computed}``
        since the last reset (zeros for a model without IBN layers).
    """
    layers = ibn_layers(model)
    if not layers:
        return {"frames": 0, "refreshes": 0}
    state = layers[0].stream_state
    return {"frames": state.frames, "refreshes": state.refreshes}


def get_stream_state(model: nn.Module) -> tuple[StreamState, ...]:
    """Snapshot of every IBN layer's stream state, in module order (immutable, safe to keep).

    A snapshot of a model can be restored into its folded copy and vice versa (same layer order).
    """
    return tuple(layer.stream_state for layer in ibn_layers(model))


def set_stream_state(model: nn.Module, state: tuple[StreamState, ...]) -> None:
    """Restore a snapshot from :func:`get_stream_state`, e.g. to switch one model between streams.

    Raises:
        ValueError: ``state`` does not match the model's IBN layers.
    """
    layers = ibn_layers(model)
    state = tuple(state)
    if len(state) != len(layers):
        raise ValueError(f"state holds {len(state)} layer states, model has {len(layers)} IBN layers")
    for layer, layer_state in zip(layers, state, strict=True):
        layer.stream_state = layer_state
