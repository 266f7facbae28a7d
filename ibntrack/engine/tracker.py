"""The per-stream tracker: frame → letterbox → backend (streaming sparse IN) → decode → association.

:class:`Tracker` (one camera, one video) is built from one :class:`~ibntrack.config.InferenceConfig`: a
:class:`~ibntrack.runtime.Backend` runs the network, the :class:`~ibntrack.runtime.ModelCard` says what the
network is, a :class:`~ibntrack.tracking.MultiObjectTracker` associates. :func:`ibntrack.engine.infer.track`
runs sources through it into sinks.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from ibntrack.config.inference import (
    DEFAULT_DRIFT_THRESHOLD,
    DecodeConfig,
    InferenceConfig,
    StreamConfig,
)
from ibntrack.data.transforms import letterbox, to_tensor
from ibntrack.engine.stream import StreamController
from ibntrack.nn.adapt import DEFAULT_ADAPT_PRIOR
from ibntrack.ops.decode import decode
from ibntrack.runtime import Backend, ModelCard, RuntimeConfig, TorchBackend, open_runtime
from ibntrack.scene import scene_sparsity
from ibntrack.sizes import check_input_size
from ibntrack.structures import Detections
from ibntrack.tracking import MultiObjectTracker, TrackerConfig
from ibntrack.tracking.gmc import GMC

__all__ = ["StageTimes", "Tracker"]


@dataclass
class StageTimes:
    """Accumulated wall time per stage, in seconds."""

    model: float = 0.0
    decode: float = 0.0
    association: float = 0.0
    frames: int = 0

    def mean_ms(self) -> dict[str, float]:
        n = max(self.frames, 1)
        return {
            "model": 1e3 * self.model / n,
            "decode": 1e3 * self.decode / n,
            "association": 1e3 * self.association / n,
        }


class Tracker:
    """Tracks objects in one stream of frames, built from one :class:`~ibntrack.config.InferenceConfig`.

    ``Tracker(cfg)`` opens ``cfg.runtime.weights`` with the backend ``cfg.runtime`` names (the registry
    :data:`ibntrack.runtime.BACKENDS`); :meth:`from_checkpoint` builds the config from keyword arguments.

    Args:
        cfg: runtime, stream, association and decode settings (default :class:`InferenceConfig()`).
        backend: a ready :class:`~ibntrack.runtime.Backend` (it owns the stream's refresh schedule), or a
            torch ``nn.Module`` wrapped in a :class:`~ibntrack.runtime.TorchBackend` with ``cfg.runtime``'s
            device, folding, precision and BN adaptation; ``None`` opens ``cfg.runtime.weights``.
        card: the model's :class:`~ibntrack.runtime.ModelCard` (input size, class names, calibrated tracker
            settings), or just the network input ``(H, W)`` (multiples of 32); with ``backend=None`` the
            opened file's card.
        frame_rate: frames per second of the stream (scales the lost-track buffer).
        class_names: class names of the heatmap channels (default: the card's).

    The sparsity factor is ``cfg.stream.sparsity`` if set; else, with a card, from the relevance of
    ``cfg.stream.scene`` to the model's training scene (:func:`ibntrack.scene.scene_sparsity`); else a
    ready backend keeps its own and a new one gets 1 (exact IN). The association settings are
    ``cfg.association``, else the card's calibrated ones, else :class:`TrackerConfig`'s defaults.

    Raises:
        ValueError: ``cfg.runtime.adapt_bn`` with a ready backend (BN adaptation is set when a backend is
            built), no weights and no backend, or a setting the backend does not take.
    """

    def __init__(
        self,
        cfg: InferenceConfig | None = None,
        backend: Backend | torch.nn.Module | None = None,
        card: ModelCard | tuple[int, int] | None = None,
        *,
        frame_rate: float = 30.0,
        class_names: Sequence[str] | None = None,
    ) -> None:
        cfg = cfg or InferenceConfig()
        rt = cfg.runtime
        if backend is None:
            backend, card = open_runtime(rt)
        runner: Backend
        if isinstance(backend, torch.nn.Module):
            runner = TorchBackend(
                backend,
                sparsity=cfg.stream.sparsity or 1,
                device=rt.device,
                fold=rt.fold,
                precision=rt.precision,
                adapt_bn=rt.adapt_bn,
                adapt_bn_prior=rt.adapt_bn_prior,
            )
        else:
            if rt.adapt_bn and getattr(backend, "adapt_bn", 0) != rt.adapt_bn:  # not built with it
                raise ValueError(
                    f"adapt_bn (--adapt-bn) is set when the backend is built: TorchBackend(model, "
                    f"adapt_bn={rt.adapt_bn!r}) or Tracker.from_checkpoint(..., adapt_bn={rt.adapt_bn!r}); "
                    "only the PyTorch backend supports it"
                )
            runner = backend
        if card is None:
            raise ValueError("Tracker: give the model's card (or its input size (H, W)) with a backend")
        self.backend = runner
        self.card = card if isinstance(card, ModelCard) else None
        sparsity = cfg.stream.sparsity
        if sparsity is None and cfg.stream.scene and self.card is not None:
            sparsity = scene_sparsity(cfg.stream.scene, self.card.train_scene, self.card.source or "model")
        if sparsity is not None:
            runner.set_sparsity(sparsity)
        size = card.require_input_size() if isinstance(card, ModelCard) else card
        self.input_size = check_input_size(size)
        self.device = runner.device
        association = cfg.association
        if association is None:
            association = TrackerConfig(**dict(self.card.tracker)) if self.card else TrackerConfig()
        self.config = dataclasses.replace(cfg, association=association)
        self.tracker_config = association
        conf = cfg.decode.conf_thresh
        self.conf_thresh = association.low_thresh if conf is None else float(conf)
        self.top_k = cfg.decode.top_k
        if class_names is None:
            class_names = self.card.class_names if self.card else ("object",)
        self.class_names = tuple(class_names)
        self.stream = StreamController(self.backend, drift_threshold=cfg.stream.drift_threshold)
        self.mot = MultiObjectTracker(association, frame_rate=frame_rate)
        self.gmc = GMC(cfg.stream.cmc) if cfg.stream.cmc != "none" else None
        self.times = StageTimes()
        self.last_detections: Detections | None = None
        self._frame_shape: tuple[int, int] | None = None  # (H, W) of this stream's frames

    @property
    def sparsity(self) -> int:
        """The stream's sparsity factor (the backend's schedule's)."""
        return self.backend.sparsity

    @property
    def checkpoint_info(self) -> dict[str, Any]:
        """``train_scene``, ``class_names``, ``num_ids``, ``model_config`` of the card (empty without)."""
        if self.card is None:
            return {}
        return {
            "train_scene": list(self.card.train_scene),
            "class_names": list(self.card.class_names),
            "num_ids": self.card.num_ids,
            "model_config": self.card.config.to_dict(),
        }

    @classmethod
    def from_checkpoint(
        cls,
        path: str | os.PathLike,
        scene: str | Sequence[str] | None = None,
        device: str = "cpu",
        sparsity: int | None = None,
        backend: str = "torch",
        tracker_overrides: Mapping[str, Any] | None = None,
        precision: str = "fp32",
        adapt_bn: int = 0,
        adapt_bn_prior: float = DEFAULT_ADAPT_PRIOR,
        *,
        fold: bool = True,
        drift_threshold: float | None = DEFAULT_DRIFT_THRESHOLD,
        cmc: str = "none",
        conf_thresh: float | None = None,
        top_k: int = 500,
        tracker_config: TrackerConfig | None = None,
        frame_rate: float = 30.0,
        class_names: Sequence[str] | None = None,
    ) -> Tracker:
        """Builds a tracker from a training checkpoint or an ONNX export: the friendly face of
        ``Tracker(cfg)``, each argument one field of the :class:`~ibntrack.config.InferenceConfig` it
        builds (``runtime``: ``path``, ``backend``, ``device``, ``precision``, ``fold``, ``adapt_bn``,
        ``adapt_bn_prior``; ``stream``: ``scene``, ``sparsity``, ``drift_threshold``, ``cmc``; ``decode``:
        ``conf_thresh``, ``top_k``; ``association``: ``tracker_config``, else the card's calibrated
        settings with ``tracker_overrides`` (field → value) on top).

        ``backend="onnxruntime"`` (or a ``.onnx`` path) runs the graphs written by ``ibntrack export`` in
        ONNX Runtime (CPU), in the format the export was written in: ``precision`` ``fp32`` or ``auto``,
        no ``adapt_bn``. ``precision`` of the torch backend: ``fp32 | bf16 | fp16 | auto``
        (:class:`~ibntrack.runtime.TorchBackend`). ``adapt_bn=K``: test-time BN adaptation over the first
        ``K`` frames of each stream (:mod:`ibntrack.nn.adapt`).

        Raises:
            ValueError: a setting the backend does not take, or an unreadable file.
        """
        runtime = RuntimeConfig(
            weights=os.fspath(path),
            backend=backend,  # type: ignore[arg-type]  # checked by RuntimeConfig
            device=str(device),
            precision=precision,  # type: ignore[arg-type]  # checked by the backend
            fold=fold,
            adapt_bn=adapt_bn,
            adapt_bn_prior=adapt_bn_prior,
        )
        stream = StreamConfig(
            scene=scene if scene is None or isinstance(scene, str) else tuple(scene),
            sparsity=sparsity,
            drift_threshold=drift_threshold,
            cmc=cmc,  # type: ignore[arg-type]  # checked by GMC
        )
        runner, card = open_runtime(runtime)
        if tracker_config is None:
            tracker_config = replace(TrackerConfig(**dict(card.tracker)), **(tracker_overrides or {}))
        cfg = InferenceConfig(runtime, stream, tracker_config, DecodeConfig(conf_thresh, top_k))
        return cls(cfg, runner, card, frame_rate=frame_rate, class_names=class_names)

    def reset(self, frame_rate: float | None = None) -> None:
        """Starts a new stream: clears tracks, ids and cached IN statistics (and restores the training BN
        statistics of a backend with ``adapt_bn``, which adapts to the new stream from its first frame)."""
        if frame_rate is not None:
            self.mot = MultiObjectTracker(self.tracker_config, frame_rate=frame_rate)
        else:
            self.mot.reset()
        if self.gmc is not None:
            self.gmc.reset()
        self.stream.reset()
        self.times = StageTimes()
        self._frame_shape = None

    def check_frame(self, frame_bgr: np.ndarray) -> None:
        """Validates one frame of this stream.

        Raises:
            ValueError: naming ``frame_bgr``: not a ``np.ndarray[H, W, 3]`` of dtype uint8 (a float image
                in [0, 1], a 16-bit or int64 image would give silently wrong detections), or a frame size
                other than the stream's first frame (call :meth:`reset` to start a new stream).
        """
        if not isinstance(frame_bgr, np.ndarray):
            raise ValueError(
                f"frame_bgr must be a numpy array [H, W, 3] uint8, got {type(frame_bgr).__name__}"
            )
        if frame_bgr.ndim != 3 or frame_bgr.shape[2] != 3 or 0 in frame_bgr.shape:
            raise ValueError(f"frame_bgr must be [H, W, 3] uint8 (BGR), got shape {list(frame_bgr.shape)}")
        if frame_bgr.dtype != np.uint8:
            hint = (
                " (multiply a [0, 1] float image by 255 and convert)" if frame_bgr.dtype.kind == "f" else ""
            )
            raise ValueError(f"frame_bgr must have dtype uint8 (0-255 BGR), got {frame_bgr.dtype}{hint}")
        shape = (int(frame_bgr.shape[0]), int(frame_bgr.shape[1]))
        if self._frame_shape is None:
            self._frame_shape = shape
        elif shape != self._frame_shape:
            (h0, w0), (h, w) = self._frame_shape, shape
            raise ValueError(
                f"frame_bgr is {w}x{h} but this stream's frames are {w0}x{h0}: tracks and cached IN "
                "statistics belong to one stream; call reset() before feeding frames of another size"
            )

    @torch.inference_mode()
    def detect(self, frame_bgr: np.ndarray) -> Detections:
        """Runs the network on one frame; returns detections in frame pixels (xyxy).

        Raises:
            ValueError: a frame that is not ``[H, W, 3] uint8`` or changes size mid-stream
                (:meth:`check_frame`).
        """
        self.check_frame(frame_bgr)
        t0 = time.perf_counter()
        image, scale, pad_x, pad_y = letterbox(frame_bgr, self.input_size)
        x = to_tensor(image).unsqueeze(0)  # [1, 3, H, W]
        self.stream.before_frame(frame_bgr)
        outputs = self.backend(x)
        self.stream.after_frame()
        t1 = time.perf_counter()
        dets = decode(outputs, conf_thresh=self.conf_thresh, top_k=self.top_k)[0]
        dets = dets.rescale(scale, pad_x, pad_y)
        h, w = frame_bgr.shape[:2]
        boxes = dets.boxes.copy()
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
        dets = replace(dets, boxes=boxes)
        t2 = time.perf_counter()
        self.times.model += t1 - t0
        self.times.decode += t2 - t1
        return dets

    def update(self, frame_bgr: np.ndarray, as_detections: bool = False):
        """Processes the next frame of the stream.

        Args:
            frame_bgr: ``np.ndarray[H, W, 3] uint8`` in BGR order (as OpenCV reads it).
            as_detections: return a ``supervision.Detections`` (the tracked detections with
                ``tracker_id``, ``data["embedding"]`` and ``data["class_name"]``; see
                :func:`ibntrack.interop.supervision.tracks_to_detections`) instead of tracks.

        Returns:
            The tracks visible in this frame; ``track.box`` is xyxy in frame pixels.
        """
        dets = self.detect(frame_bgr)
        self.last_detections = dets
        t0 = time.perf_counter()
        warp = self.gmc.estimate(frame_bgr, dets.boxes) if self.gmc is not None else None
        tracks = self.mot.update(dets.boxes, dets.scores, dets.embeddings, dets.classes, warp=warp)
        self.times.association += time.perf_counter() - t0
        self.times.frames += 1
        if as_detections:
            from ibntrack.interop.supervision import tracks_to_detections

            return tracks_to_detections(tracks, dets, self.class_names)
        return tracks
