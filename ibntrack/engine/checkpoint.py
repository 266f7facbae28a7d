"""Moved to :mod:`ibntrack.nn.checkpoint` (a model and its weights file belong to the network room).

This name stays importable for code written against it; new code imports ``ibntrack.nn.checkpoint``.
"""

from ibntrack.nn.checkpoint import (
    CheckpointError,
    bn_running_stats,
    load_checkpoint,
    load_model,
    load_state_checked,
    save_checkpoint,
)

__all__ = [
    "CheckpointError",
    "bn_running_stats",
    "load_checkpoint",
    "load_model",
    "load_state_checked",
    "save_checkpoint",
]
