"""Inference configuration: everything that decides what ``track``, ``tune``, ``demo``, ``eval --weights``
and the Ray engine compute, as one frozen tree (the twin of the training ``Config``)::

    runtime:     {weights: model.pt, backend: torch, device: cpu, precision: auto, fold: true, adapt_bn: 0}
    stream:      {scene: "winter, snow", sparsity: null, drift_threshold: 0.1, cmc: none}
    association: {det_thresh: 0.5, new_track_thresh: 0.6, track_buffer: 30, ...}
    decode:      {conf_thresh: null, top_k: 500}

Merge order (later wins): the defaults → the model card's calibrated tracker settings → a YAML file
(``--tracker-config``; the ``tracker:`` mapping written by ``ibntrack tune`` is read as ``association``) →
the flags. :func:`load_inference_config` checks every key and value with the loader of
:mod:`ibntrack.config.loader` (the one training uses); ``Tracker(cfg)`` builds a tracker from the result.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ibntrack.config.loader import build_config, config_to_dict, read_mapping
from ibntrack.runtime.card import ModelCard
from ibntrack.runtime.options import RuntimeConfig
from ibntrack.tracking.config import TrackerConfig

__all__ = [
    "DEFAULT_DRIFT_THRESHOLD",
    "DecodeConfig",
    "InferenceConfig",
    "StreamConfig",
    "load_inference_config",
    "tracker_settings",
]

DEFAULT_DRIFT_THRESHOLD = 0.1
"""Event-driven IN refresh threshold of a stream (:class:`ibntrack.engine.stream.StreamController`)."""

SECTIONS = ("runtime", "stream", "association", "decode")


@dataclass(frozen=True)
class StreamConfig:
    """What one stream (camera, video) is.

    Attributes:
        scene: live scene keywords (e.g. ``"winter, snow"``); their relevance to the training scene sets
            the sparsity factor (:func:`ibntrack.scene.scene_sparsity`). ``None``: each MOT sequence's
            ``sceneKeywords`` in :func:`~ibntrack.engine.infer.track`, else exact IN.
        sparsity: force the sparsity factor s of instance normalisation (1 = exact IN every frame).
        drift_threshold: event-driven IN refresh threshold (``None`` disables it).
        cmc: camera-motion compensation, ``none | sparse | ecc`` (:class:`ibntrack.tracking.gmc.GMC`).
    """

    scene: str | tuple[str, ...] | None = None
    sparsity: int | None = None
    drift_threshold: float | None = DEFAULT_DRIFT_THRESHOLD
    cmc: Literal["none", "sparse", "ecc"] = "none"

    def __post_init__(self) -> None:
        if self.sparsity is not None and (isinstance(self.sparsity, bool) or self.sparsity < 1):
            raise ValueError(f"stream.sparsity (--sparsity) must be an int >= 1, got {self.sparsity!r}")


@dataclass(frozen=True)
class DecodeConfig:
    """Head maps → detections.

    Attributes:
        conf_thresh: detections below this score are not passed to the tracker (``None``: the
            association's ``low_thresh``, so ByteTrack's second pass sees low-score boxes).
        top_k: maximum detections per frame.
    """

    conf_thresh: float | None = None
    top_k: int = 500

    def __post_init__(self) -> None:
        if self.conf_thresh is not None and not 0.0 <= self.conf_thresh <= 1.0:
            raise ValueError(f"decode.conf_thresh must be in [0, 1], got {self.conf_thresh!r}")
        if self.top_k < 1:
            raise ValueError(f"decode.top_k must be >= 1, got {self.top_k!r}")


@dataclass(frozen=True)
class InferenceConfig:
    """Everything a :class:`~ibntrack.engine.infer.Tracker` is built from.

    Attributes:
        runtime: how the network runs (:class:`~ibntrack.runtime.RuntimeConfig`).
        stream: scene, sparsity, drift refresh, camera-motion compensation.
        association: the tracker's thresholds; ``None``: the model card's calibrated ones, else
            :class:`~ibntrack.tracking.TrackerConfig`'s defaults.
        decode: score cut and detections per frame.
    """

    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    stream: StreamConfig = field(default_factory=StreamConfig)
    association: TrackerConfig | None = None
    decode: DecodeConfig = field(default_factory=DecodeConfig)

    def replace(self, **sections: Mapping[str, Any]) -> InferenceConfig:
        """A copy with fields of sections changed: ``cfg.replace(stream={"scene": "snow"})``."""
        changes: dict[str, Any] = {}
        for name, values in sections.items():
            current = getattr(self, name)
            if current is None and name == "association":
                current = TrackerConfig()
            changes[name] = dataclasses.replace(current, **values)
        return dataclasses.replace(self, **changes)


def tracker_settings(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The sections of a ``--tracker-config`` mapping: ``tracker:`` (as ``ibntrack tune`` writes it) and a
    bare mapping of :class:`~ibntrack.tracking.TrackerConfig` fields are the ``association`` section."""
    raw = dict(raw)
    if "tracker" in raw:
        if "association" in raw:
            raise ValueError("give the tracker settings once: 'tracker' or 'association', not both")
        raw["association"] = raw.pop("tracker")
    fields = {f.name for f in dataclasses.fields(TrackerConfig)}
    if raw and not set(raw) & set(SECTIONS) and set(raw) & fields:  # a typo'd section stays an error
        raw = {"association": raw}
    return raw


def load_inference_config(
    path: str | os.PathLike | None = None,
    overrides: Mapping[str, Any] | Sequence[str] = (),
    card: ModelCard | None = None,
    base: InferenceConfig | None = None,
) -> InferenceConfig:
    """The inference config: ``base`` (default :class:`InferenceConfig()`) → the ``card``'s calibrated
    tracker settings → the YAML file ``path`` → ``overrides``; later wins.

    Args:
        path: YAML with sections ``runtime``, ``stream``, ``association``, ``decode`` (or the
            ``tracker:`` mapping ``ibntrack tune`` writes).
        overrides: ``{"section.key": value}`` (the flags a user gave) or ``"section.key=value"`` strings.
        card: the model's card; its ``tracker`` entry is the association's starting point.

    Raises:
        FileNotFoundError: ``path`` does not exist. ValueError: an unknown key or a wrong value (naming the
            file or override and the key), or settings the backend does not take (an ONNX export with
            ``adapt_bn``...).
    """
    raw: dict[str, Any] = config_to_dict(base or InferenceConfig())
    source = "<defaults>"
    if card is not None and (base is None or base.association is None):
        raw["association"] = config_to_dict(TrackerConfig(**dict(card.tracker)))
    if path is not None:
        source = str(path)
        for name, values in tracker_settings(read_mapping(Path(path), "tracker config")).items():
            if name in SECTIONS and isinstance(values, Mapping):
                if raw.get(name) is None:
                    raw[name] = config_to_dict(TrackerConfig()) if name == "association" else {}
                raw[name].update(values)
            else:
                raw[name] = values  # an unknown key or a non-mapping: the loader names it
    if isinstance(overrides, Mapping):
        for key, value in overrides.items():
            section, _, name = key.partition(".")
            if not name or section not in SECTIONS:
                raise ValueError(
                    f"override {key!r}: give section.key with a section of {', '.join(SECTIONS)}"
                )
            if raw.get(section) is None:
                raw[section] = config_to_dict(TrackerConfig()) if section == "association" else {}
            raw[section][name] = config_to_dict(value)
        overrides = ()
    return build_config(InferenceConfig, raw, source, overrides)
