"""Inference pipeline: frame → letterbox → network (streaming sparse IN) → decode → tracker.

``Tracker`` is the per-stream object (one camera, one video); :func:`track` runs whole sources and writes
MOTChallenge result files, an optional annotated H.264 video and optional JSON lines.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from ibntrack.data.transforms import letterbox, to_tensor
from ibntrack.engine.sources import FrameSource, open_sources
from ibntrack.engine.stream import DEFAULT_DRIFT_THRESHOLD, StreamController
from ibntrack.fileio import atomic_open, check_writable_dir, check_writable_file
from ibntrack.nn import fold_model, set_sparsity
from ibntrack.ops.decode import decode
from ibntrack.scene import parse_scene, relevance, sparsity_factor
from ibntrack.structures import Detections
from ibntrack.tracking import MultiObjectTracker, Track, TrackerConfig

__all__ = ["Tracker", "track", "SequenceSummary"]

log = logging.getLogger(__name__)


def _pick_device(device: str) -> torch.device:
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {device}: CUDA is not available on this machine; use --device cpu")
    if device != "cpu" and not device.startswith("cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda[:N]', got {device!r}")
    return torch.device(device)


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
    """Tracks objects in one stream of frames.

    Args:
        model: a network from :func:`ibntrack.build_model` (trained weights loaded).
        input_size: network input ``(H, W)``, multiples of 32.
        tracker_config: association settings.
        frame_rate: frames per second of the stream (scales the lost-track buffer).
        sparsity: sparsity factor s of instance normalisation (1 = exact IN every frame).
        conf_thresh: detections below this score are not passed to the tracker (defaults to the
            tracker's ``low_thresh`` so ByteTrack's second pass sees low-score boxes).
        top_k: maximum detections per frame.
        device: ``"cpu"`` or ``"cuda[:N]"``.
        fold: fold BN (and cached IN) into convolutions for faster inference.
        drift_threshold: event-driven IN refresh threshold (``None`` disables it); see
            :class:`ibntrack.engine.stream.StreamController`.
        class_names: class names of the model's heatmap channels.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        input_size: tuple[int, int],
        tracker_config: TrackerConfig | None = None,
        frame_rate: float = 30.0,
        sparsity: int = 1,
        conf_thresh: float | None = None,
        top_k: int = 500,
        device: str = "cpu",
        fold: bool = True,
        drift_threshold: float | None = DEFAULT_DRIFT_THRESHOLD,
        class_names: Sequence[str] = ("object",),
    ) -> None:
        h, w = input_size
        if h % 32 or w % 32 or h <= 0 or w <= 0:
            raise ValueError(f"input_size must be positive multiples of 32, got {input_size}")
        self.device = _pick_device(device)
        self.input_size = (int(h), int(w))
        self.tracker_config = tracker_config or TrackerConfig()
        self.conf_thresh = self.tracker_config.low_thresh if conf_thresh is None else float(conf_thresh)
        self.top_k = int(top_k)
        self.class_names = tuple(class_names)
        model = model.to(self.device).eval()
        is_torch = isinstance(model, torch.nn.Module)
        self.model = fold_model(model) if fold and is_torch else model
        self.sparsity = int(sparsity)
        set_sparsity(self.model, self.sparsity)
        self.stream = StreamController(self.model, drift_threshold=drift_threshold)
        self.mot = MultiObjectTracker(self.tracker_config, frame_rate=frame_rate)
        self.times = StageTimes()
        self.last_detections: Detections | None = None
        self._frame_shape: tuple[int, int] | None = None  # (H, W) of this stream's frames

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path,
        scene: str | Sequence[str] | None = None,
        device: str = "cpu",
        sparsity: int | None = None,
        backend: str = "torch",
        tracker_overrides: dict | None = None,
        **kwargs,
    ) -> Tracker:
        """Builds a tracker from a training checkpoint.

        The sparsity factor is, in order: ``sparsity`` if given; else from the relevance of ``scene`` to
        the checkpoint's training scene (:func:`ibntrack.scene.relevance` →
        :func:`ibntrack.scene.sparsity_factor`); else 1 (exact IN) — for automatic relevance use
        :func:`ibntrack.engine.stream.estimate_relevance`.

        Association thresholds: the checkpoint's calibrated ``tracker`` settings when it carries them
        (the shipped model does), else :class:`TrackerConfig`'s defaults; ``tracker_overrides``
        (field → value) is applied on top; ``tracker_config=`` replaces both.

        ``backend="onnxruntime"`` (or a ``.onnx`` path) runs the graphs written by ``ibntrack export``
        in ONNX Runtime instead of PyTorch (CPU).
        """
        if backend not in ("torch", "onnxruntime"):
            raise ValueError(f"backend must be 'torch' or 'onnxruntime', got {backend!r}")
        if backend == "onnxruntime" or str(path).endswith(".onnx"):
            from ibntrack.export import load_onnx_model

            if device != "cpu":
                raise ValueError("the onnxruntime backend runs on --device cpu here")
            model = load_onnx_model(path)
            ckpt = model.meta
        else:
            from ibntrack.engine.checkpoint import load_model

            model, ckpt = load_model(path, device="cpu")
        input_size = tuple(ckpt.get("input_size") or ckpt.get("config", {}).get("data", {}).get("input_size"))
        s = sparsity
        if s is None and scene:
            train_scene = ckpt.get("train_scene") or []
            if not train_scene:
                log.warning("%s carries no training scene; relevance 0 (most conservative sparsity)", path)
                r = 0.0
            else:
                r = relevance(parse_scene(scene), parse_scene(train_scene))
            s = sparsity_factor(r)
            log.info("scene relevance %.2f -> sparsity factor %d", r, s)
        kwargs.setdefault("class_names", ckpt.get("class_names") or ("object",))
        if "tracker_config" not in kwargs:
            base = TrackerConfig(**dict(ckpt.get("tracker") or {}))
            kwargs["tracker_config"] = replace(base, **(tracker_overrides or {}))
        tracker = cls(model, input_size, sparsity=s or 1, device=device, **kwargs)
        tracker.checkpoint_info = {
            k: ckpt.get(k) for k in ("train_scene", "class_names", "num_ids", "model_config")
        }
        return tracker

    def reset(self, frame_rate: float | None = None) -> None:
        """Starts a new stream: clears tracks, ids and cached IN statistics."""
        if frame_rate is not None:
            self.mot = MultiObjectTracker(self.tracker_config, frame_rate=frame_rate)
        else:
            self.mot.reset()
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
        x = to_tensor(image).unsqueeze(0).to(self.device)  # [1, 3, H, W]
        self.stream.before_frame(frame_bgr)
        outputs = self.model(x)
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
        tracks = self.mot.update(dets.boxes, dets.scores, dets.embeddings, dets.classes)
        self.times.association += time.perf_counter() - t0
        self.times.frames += 1
        if as_detections:
            from ibntrack.interop.supervision import tracks_to_detections

            return tracks_to_detections(tracks, dets, self.class_names)
        return tracks


@dataclass
class SequenceSummary:
    """What :func:`track` did on one source."""

    name: str
    frames: int
    tracks: int
    result_file: Path | None
    video_file: Path | None
    mean_ms: dict[str, float] = field(default_factory=dict)
    fps: float = 0.0
    sparsity: int = 1
    refresh_fraction: float = 1.0
    interrupted: bool = False  # stopped by Ctrl-C / SIGTERM: the files hold the frames tracked until then
    missing_frames: int = 0  # frame numbers absent from a numbered image sequence (skipped)
    truncated: bool = False  # the video decoded fewer frames than its container announced


def track(
    source: str | Path,
    weights: str | Path | None = None,
    *,
    tracker: Tracker | None = None,
    scene: str | Sequence[str] | None = None,
    out_dir: str | Path = "runs/track",
    save_video: bool = False,
    save_json: bool = False,
    device: str = "cpu",
    sparsity: int | None = None,
    max_frames: int | None = None,
    progress: bool | None = None,
    **tracker_kwargs,
) -> list[SequenceSummary]:
    """Tracks every sequence of ``source`` and writes the results.

    Args:
        source: see :func:`ibntrack.engine.sources.open_sources`.
        weights: checkpoint path (ignored when ``tracker`` is given).
        tracker: a ready :class:`Tracker` (reset between sequences).
        scene: live scene keywords; when ``None`` each MOT sequence's ``sceneKeywords`` are used.
        out_dir: ``<out_dir>/<seq>.txt`` (MOTChallenge), ``<seq>.mp4``, ``<seq>.jsonl``.
        save_video: write an annotated H.264 mp4.
        save_json: write one JSON line per frame.
        max_frames: stop each source after this many frames.
        progress: tqdm progress bar (``None``: only on a terminal).

    Every output location is checked before the first frame is tracked. Ctrl-C (``KeyboardInterrupt``,
    which the CLI also raises on SIGTERM) does not throw the work away: the result file, video and JSON
    lines of the current source are finalised with the frames tracked so far, that source's summary says
    ``interrupted=True``, and the remaining sources are not started.

    Returns:
        One :class:`SequenceSummary` per source started.

    Raises:
        ibntrack.fileio.OutputError: ``out_dir`` or a result path cannot be written (before any work).
    """
    from tqdm import tqdm

    from ibntrack.data.mot import MOT_CLASS_IDS, write_results
    from ibntrack.engine.visualize import Annotator, VideoWriter

    if tracker is None and weights is None:
        raise ValueError("track(): give weights=CHECKPOINT or tracker=Tracker(...)")
    sources: list[FrameSource] = open_sources(source)
    out = check_writable_dir(out_dir, "out_dir (--out)")
    suffixes = [".txt"] + [".mp4"] * save_video + [".jsonl"] * save_json
    for src in sources:
        for suffix in suffixes:
            check_writable_file(out / f"{src.name}{suffix}", f"result of {src.name} (--out)")
    summaries = []
    for src in sources:
        live_scene = scene if scene else (src.scene or None)
        if tracker is not None:
            trk = tracker
            trk.reset(frame_rate=src.frame_rate)
        else:  # one tracker per source: each source's scene may give another sparsity factor
            trk = Tracker.from_checkpoint(
                weights,
                scene=live_scene,
                device=device,
                sparsity=sparsity,
                frame_rate=src.frame_rate,
                **tracker_kwargs,
            )
        rows: list[tuple] = []
        # multi-class results carry the MOT class id in column 8 (pedestrian 1, car 3, ...); else -1
        mot_class = (
            [MOT_CLASS_IDS.get(n.lower(), -1) for n in trk.class_names] if len(trk.class_names) > 1 else []
        )
        annot = Annotator(class_names=trk.class_names) if save_video else None
        writer = VideoWriter(out / f"{src.name}.mp4", src.frame_rate) if save_video else None
        # JSON lines go to a temporary file renamed into place only when the source ends cleanly
        json_stack = contextlib.ExitStack()
        json_fh = json_stack.enter_context(atomic_open(out / f"{src.name}.jsonl")) if save_json else None
        ids: set[int] = set()
        total = src.length if max_frames is None else min(src.length or max_frames, max_frames)
        bar = tqdm(
            total=total, desc=src.name, unit="frame", disable=None if progress is None else not progress
        )
        t_start = time.perf_counter()
        n = 0
        interrupted = False
        try:
            for frame_id, frame in src:
                if max_frames is not None and n >= max_frames:
                    break
                tracks = trk.update(frame)
                n += 1
                for t in tracks:
                    x1, y1, x2, y2 = (float(v) for v in t.box)
                    rows.append(
                        (
                            frame_id,
                            t.track_id,
                            x1,
                            y1,
                            x2 - x1,
                            y2 - y1,
                            float(t.score),
                            mot_class[int(t.cls)] if mot_class else -1,
                        )
                    )
                    ids.add(t.track_id)
                if writer is not None:
                    writer.write(annot.draw(frame, tracks, frame_id))
                if json_fh is not None:
                    json_fh.write(
                        json.dumps(
                            {
                                "frame": frame_id,
                                "tracks": [
                                    {
                                        "id": int(t.track_id),
                                        "box_xyxy": [round(float(v), 2) for v in t.box],
                                        "score": round(float(t.score), 4),
                                        "cls": int(t.cls),
                                    }
                                    for t in tracks
                                ],
                            }
                        )
                        + "\n"
                    )
                bar.update(1)
                if n % 10 == 0:
                    bar.set_postfix(fps=f"{n / (time.perf_counter() - t_start):.1f}", tracks=len(ids))
        except KeyboardInterrupt:  # keep what was tracked: finalised below like a finished source
            interrupted = True
            log.warning("%s: interrupted after %d frames; writing the results so far", src.name, n)
        except BaseException as exc:
            if writer is not None:
                writer.abort()
            json_stack.__exit__(type(exc), exc, exc.__traceback__)  # deletes the partial JSON file
            raise
        finally:
            bar.close()
        elapsed = time.perf_counter() - t_start
        result_file = out / f"{src.name}.txt"
        write_results(result_file, rows)
        if writer is not None:
            writer.close()
        json_stack.close()
        stats = trk.stream.stats()
        summaries.append(
            SequenceSummary(
                name=src.name,
                frames=n,
                tracks=len(ids),
                result_file=result_file,
                video_file=(out / f"{src.name}.mp4") if save_video else None,
                mean_ms=trk.times.mean_ms(),
                fps=n / elapsed if elapsed > 0 else 0.0,
                sparsity=trk.sparsity,
                refresh_fraction=stats["refreshes"] / max(stats["frames"], 1),
                interrupted=interrupted,
                missing_frames=len(src.missing),
                truncated=src.truncated,
            )
        )
        log.info("%s: %d frames, %d tracks, %.1f frames/s", src.name, n, len(ids), summaries[-1].fps)
        if interrupted:
            break
    return summaries
