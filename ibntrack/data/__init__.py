"""Data: MOTChallenge I/O, the synthetic cross-domain world, transforms and the training dataset.

Submodules: :mod:`~ibntrack.data.mot` (sequences, gt and result files), :mod:`~ibntrack.data.identities`
(global identity labels), :mod:`~ibntrack.data.synth` (synthetic sequences; styles in
:mod:`~ibntrack.data.styles`), :mod:`~ibntrack.data.transforms` (letterbox, tensors, augmentation),
:mod:`~ibntrack.data.dataset` (``MOTDataset``). Names are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = [
    "Annotations",
    "DOMAINS",
    "IdentityMap",
    "MOTDataset",
    "MOTFormatError",
    "Sequence",
    "Style",
    "assign_global_ids",
    "frame_path",
    "generate_dataset",
    "generate_sequence",
    "iter_frames",
    "letterbox",
    "load_sequence",
    "load_sequences",
    "load_style",
    "read_results",
    "to_tensor",
    "write_gt",
    "write_results",
]

_LAZY = {
    "Annotations": "ibntrack.data.mot",
    "MOTFormatError": "ibntrack.data.mot",
    "Sequence": "ibntrack.data.mot",
    "frame_path": "ibntrack.data.mot",
    "iter_frames": "ibntrack.data.mot",
    "load_sequence": "ibntrack.data.mot",
    "load_sequences": "ibntrack.data.mot",
    "read_results": "ibntrack.data.mot",
    "write_gt": "ibntrack.data.mot",
    "write_results": "ibntrack.data.mot",
    "IdentityMap": "ibntrack.data.identities",
    "assign_global_ids": "ibntrack.data.identities",
    "DOMAINS": "ibntrack.data.styles",
    "Style": "ibntrack.data.styles",
    "load_style": "ibntrack.data.styles",
    "generate_dataset": "ibntrack.data.synth",
    "generate_sequence": "ibntrack.data.synth",
    "letterbox": "ibntrack.data.transforms",
    "to_tensor": "ibntrack.data.transforms",
    "MOTDataset": "ibntrack.data.dataset",
}

if TYPE_CHECKING:  # pragma: no cover
    from ibntrack.data.dataset import MOTDataset
    from ibntrack.data.identities import IdentityMap, assign_global_ids
    from ibntrack.data.mot import (
        Annotations,
        MOTFormatError,
        Sequence,
        frame_path,
        iter_frames,
        load_sequence,
        load_sequences,
        read_results,
        write_gt,
        write_results,
    )
    from ibntrack.data.styles import DOMAINS, Style, load_style
    from ibntrack.data.synth import generate_dataset, generate_sequence
    from ibntrack.data.transforms import letterbox, to_tensor


def __getattr__(name: str) -> Any:
    """Imports a submodule (torch, OpenCV) only when one of its names is first used."""
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ibntrack.data' has no attribute {name!r}")
