"""ibntrack: one-shot multi-object tracking with instance-batch normalization.

One network (ResNet with parallel instance + batch normalization in the first stage of each block) feeds
a detection branch and a ReID branch; a tracker turns detections plus embeddings into tracks; a sparsity
factor set from scene relevance decides how often instance-norm statistics are recomputed.

Public entry points::

    model = ibntrack.build_model("resnet18-ibn", num_classes=1, emb_dim=128)
    tracker = ibntrack.Tracker.from_checkpoint("model.pt", scene="winter, snow")
    cfg = ibntrack.InferenceConfig().replace(runtime={"weights": "model.pt"}, stream={"sparsity": 3})
    tracker = ibntrack.Tracker(cfg)                      # the same, from one config
    tracks = tracker.update(frame_bgr)
    ibntrack.track("video.mp4", weights="model.pt", out_dir="runs/track", save_video=True)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ibntrack.version import __version__

__all__ = [
    "build_model",
    "InferenceConfig",
    "Tracker",
    "track",
    "track_many",
    "MultiObjectTracker",
    "Detections",
    "__version__",
]

_LAZY = {
    "build_model": ("ibntrack.nn", "build_model"),
    "InferenceConfig": ("ibntrack.config", "InferenceConfig"),
    "Tracker": ("ibntrack.engine.tracker", "Tracker"),
    "track": ("ibntrack.engine.infer", "track"),
    "track_many": ("ibntrack.distributed", "track_many"),
    "MultiObjectTracker": ("ibntrack.tracking", "MultiObjectTracker"),
    "Detections": ("ibntrack.structures", "Detections"),
}

if TYPE_CHECKING:  # pragma: no cover
    from ibntrack.config import InferenceConfig
    from ibntrack.distributed import track_many
    from ibntrack.engine.infer import track
    from ibntrack.engine.tracker import Tracker
    from ibntrack.nn import build_model
    from ibntrack.structures import Detections
    from ibntrack.tracking import MultiObjectTracker


def __getattr__(name: str) -> Any:
    """Imports the heavy parts (torch, OpenCV) only when they are first used."""
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ibntrack' has no attribute {name!r}")
