"""The ONNX Runtime backend: the refresh and cached graphs written by ``ibntrack export``, streaming.

An export is two graphs side by side (a plain-BN model, without IBN layers, only the first):

* ``<out>`` — the *refresh* graph: ``images [N, 3, H, W]`` → ``hm``, ``wh``, ``reg``, ``id`` **and**, for
  every IBN layer ``i`` in module order, the IN statistics it computed, ``in_mean.i`` and ``in_var.i``,
  each ``[N, k_i]`` (biased variance; ``k_i`` the layer's IN channels). IN is exact. BN is folded.
* ``<out stem>.cached.onnx`` — the *cached* graph: ``images`` plus the cached statistics ``in_mean.i``,
  ``in_var.i`` (each ``[k_i]``, one stream's latest refresh) → the four maps.

:class:`OnnxBackend` plays them like the folded torch network
streams: its stream's :class:`~ibntrack.nn.schedule.RefreshSchedule` decides per frame; refresh frames
run the refresh graph and keep the last image's statistics, the others the cached graph.

Both files carry the metadata key ``ibntrack`` (JSON): the :class:`~ibntrack.runtime.card.ModelCard`
entries (``input_size`` ``[H, W]``, ``class_names``, ``train_scene``, ``num_classes``, ``emb_dim``,
``arch``, ``model_config``, ``num_ids``, ``tracker``) and ``version`` (ibntrack), ``graph``
(``"refresh"`` | ``"cached"``), ``cached_graph`` (file name or null), ``ibn_layers``
(``[{"name", "in_channels"}]``), ``outputs``, ``opset``. Needs ``onnxruntime`` (the ``onnx`` extra).
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ibntrack.nn.model import OUTPUT_STRIDE, ModelConfig
from ibntrack.nn.norm import StreamState
from ibntrack.nn.schedule import RefreshSchedule
from ibntrack.runtime.base import MAP_NAMES, Maps, StreamBackend, check_images
from ibntrack.runtime.card import ModelCard

__all__ = [
    "CACHED_SUFFIX",
    "META_KEY",
    "OnnxBackend",
    "cached_graph_path",
    "load_onnx_model",
    "mean_name",
    "require",
    "var_name",
]

META_KEY = "ibntrack"
CACHED_SUFFIX = ".cached.onnx"


def mean_name(i: int) -> str:
    """Graph input/output name of IBN layer ``i``'s IN means."""
    return f"in_mean.{i}"


def var_name(i: int) -> str:
    """Graph input/output name of IBN layer ``i``'s IN variances."""
    return f"in_var.{i}"


def cached_graph_path(path: str | os.PathLike) -> Path:
    """``model.onnx`` → ``model.cached.onnx`` (the cached-statistics graph written beside it)."""
    path = Path(path)
    return path.with_name(path.stem + CACHED_SUFFIX)


def require(module: str) -> None:
    """Raise ``ImportError`` with the install hint when ``module`` (onnx, onnxruntime) is missing."""
    if importlib.util.find_spec(module) is None:
        raise ImportError(f"{module} is not installed; install the ONNX extra: pip install 'ibntrack[onnx]'")


class OnnxBackend(StreamBackend):
    """ONNX Runtime stand-in for the folded torch network, with streaming sparse IN.

    ``backend(images)`` takes ``Tensor[N, 3, H, W]`` float32 (numpy accepted) and returns the four maps as
    CPU float32 tensors (on ``device`` after :meth:`to`), exactly as :class:`~ibntrack.nn.model.TrackerNet`.

    Args:
        path: the refresh graph written by ``ibntrack export``; its cached graph is found through the
            metadata (same folder).
        providers: ONNX Runtime execution providers (default ``["CPUExecutionProvider"]``).
        threads: intra-op threads (default: ONNX Runtime's choice, one per physical core).
        spin: let idle intra-op threads busy-wait for work (ONNX Runtime's own default). Off by default:
            the two graphs are two sessions with two thread pools, and a pool spinning after its run
            competes with the other session's run and with the tracker's own work (measured: resnet18-ibn
            576×320, 2 threads, s=5: 173 ms/frame spinning vs 166 without; s=1 158 vs 157).
        session_config: extra ONNX Runtime session config entries, e.g.
            ``{"session.set_denormal_as_zero": "1"}``; applied last, so they override the above.
        schedule: the stream's schedule (default: a new one, s = 1).

    Attributes:
        meta: the export metadata; card: the :class:`ModelCard` read from it; config: its ModelConfig.
        stride: output stride, 4.
        last_path: ``"refresh"`` or ``"cached"``: the graph of the last frame.
    """

    name = "onnxruntime"

    def __init__(
        self,
        path: str | os.PathLike,
        providers: Sequence[str] | None = None,
        threads: int | None = None,
        spin: bool = False,
        session_config: Mapping[str, str] | None = None,
        schedule: RefreshSchedule | None = None,
    ) -> None:
        require("onnxruntime")
        import onnxruntime as ort

        super().__init__(schedule or RefreshSchedule(), "cpu")
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"ONNX model {path} does not exist")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads is not None:
            if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
                raise ValueError(f"threads must be a positive int or None, got {threads!r}")
            options.intra_op_num_threads = threads
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
        for key, value in (session_config or {}).items():
            options.add_session_config_entry(str(key), str(value))
        providers = list(providers or ["CPUExecutionProvider"])
        try:
            self._refresh = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as exc:  # ORT raises its own exception types for bad files
            raise ValueError(f"{path} is not a readable ONNX model: {exc}") from exc
        raw = self._refresh.get_modelmeta().custom_metadata_map.get(META_KEY)
        if raw is None:
            raise ValueError(f"{path} has no {META_KEY!r} metadata: not exported by ibntrack")
        self.meta: dict[str, Any] = json.loads(raw)
        if self.meta.get("graph") != "refresh":
            raise ValueError(
                f"{path} is the {self.meta.get('graph')} graph; pass the refresh graph (the "
                f"file without {CACHED_SUFFIX})"
            )
        self.path = path
        self.card = ModelCard.from_metadata(self.meta, source=os.fspath(path))
        self.config: ModelConfig = self.card.config
        self.stride = OUTPUT_STRIDE
        self._in_channels = [int(layer["in_channels"]) for layer in self.meta["ibn_layers"]]
        self._cached: Any = None
        if self._in_channels:
            cached = path.parent / self.meta["cached_graph"]
            if not cached.is_file():
                raise FileNotFoundError(f"{path} needs its cached graph {cached}, which does not exist")
            self._cached = ort.InferenceSession(str(cached), options, providers=providers)
        self._stats: list[tuple[np.ndarray, np.ndarray]] | None = None

    # ------------------------------------------------------------------------------ torch-like surface
    def eval(self) -> OnnxBackend:
        """No-op (always inference); returns self."""
        return self

    def to(self, device: str | torch.device) -> OnnxBackend:
        """Where the output tensors go (the graphs run on the session's providers); returns self."""
        self.device = torch.device(device)
        return self

    @property
    def training(self) -> bool:
        return False

    @property
    def num_ibn_layers(self) -> int:
        return len(self._in_channels)

    def __repr__(self) -> str:
        return (
            f"OnnxBackend({str(self.path)!r}, arch={self.config.arch}, ibn_layers={self.num_ibn_layers}, "
            f"sparsity={self.sparsity})"
        )

    # ---------------------------------------------------------------------------------- stream state
    def reset_stream(self) -> None:
        """Forget the cached statistics and restart the schedule."""
        self.schedule.reset()
        self._stats = None

    def get_stream_state(self) -> tuple[StreamState, ...]:
        """Per-IBN-layer snapshot, interchangeable with :func:`ibntrack.nn.get_stream_state` of torch."""
        st = self.schedule.state
        out = []
        for i in range(self.num_ibn_layers):
            mean = var = None
            if self._stats is not None:
                mean, var = (torch.from_numpy(a.copy()) for a in self._stats[i])
            out.append(StreamState(mean, var, st.frames, st.refreshes, st.since, st.force))
        return tuple(out)

    def set_stream_state(self, state: Sequence[StreamState]) -> None:
        """Restore a snapshot from :meth:`get_stream_state` or from a torch model of the same arch.

        Raises:
            ValueError: the snapshot does not match the graph's IBN layers.
        """
        state = tuple(state)
        if len(state) != self.num_ibn_layers:
            raise ValueError(
                f"state holds {len(state)} layer states, model has {self.num_ibn_layers} IBN layers"
            )
        if not state:
            return
        stats: list[tuple[np.ndarray, np.ndarray]] | None = []
        for layer_state, k in zip(state, self._in_channels, strict=True):
            if layer_state.mean is None or layer_state.var is None:
                stats = None
                break
            if layer_state.mean.shape != (k,):
                raise ValueError(
                    f"state holds statistics of {tuple(layer_state.mean.shape)} channels, layer has {k}"
                )
            mean, var = (t.detach().float().cpu().numpy() for t in (layer_state.mean, layer_state.var))
            stats.append((mean, var))  # type: ignore[union-attr]
        self._stats = stats
        self.schedule.state = state[0].schedule

    # ------------------------------------------------------------------------------------------ forward
    def __call__(self, images: Tensor | np.ndarray) -> Maps:
        """Run ``images: [N, 3, H, W]`` float32; returns the four maps (see the class docstring)."""
        x = images.detach().to("cpu", torch.float32).numpy() if isinstance(images, Tensor) else images
        x = np.ascontiguousarray(x, dtype=np.float32)
        check_images(torch.from_numpy(x))
        if self._in_channels:
            flags = self.schedule.plan(x.shape[0], cached=self._stats is not None).flags
        else:  # no IBN layers: nothing to schedule (as torch, the counters stay at zero)
            flags = (True,) * x.shape[0]
        parts: list[list[np.ndarray]] = []
        start = 0
        while start < len(flags):  # consecutive frames of the same kind run as one batch
            stop = start + 1
            while stop < len(flags) and flags[stop] == flags[start]:
                stop += 1
            parts.append(self._run(x[start:stop], refresh=flags[start]))
            start = stop
        maps = [np.concatenate(p) if len(parts) > 1 else p[0] for p in zip(*parts, strict=True)]
        return {name: torch.from_numpy(a).to(self.device) for name, a in zip(MAP_NAMES, maps, strict=True)}

    def _run(self, x: np.ndarray, refresh: bool) -> list[np.ndarray]:
        n_maps = len(MAP_NAMES)
        if refresh:
            self.last_path = "refresh"
            out = self._refresh.run(None, {"images": x})
            stats = out[n_maps:]
            if stats:
                self._stats = [
                    (stats[2 * i][-1].copy(), stats[2 * i + 1][-1].copy()) for i in range(self.num_ibn_layers)
                ]
            return list(out[:n_maps])
        self.last_path = "cached"
        assert self._stats is not None  # the schedule refreshes whenever nothing is cached
        feed = {"images": x}
        for i, (mean, var) in enumerate(self._stats):
            feed[mean_name(i)] = mean
            feed[var_name(i)] = var
        return list(self._cached.run(None, feed))


def load_onnx_model(
    path: str | os.PathLike, providers: Sequence[str] | None = None, threads: int | None = None
) -> OnnxBackend:
    """Open an export of ``ibntrack export`` for inference (see :class:`OnnxBackend`)."""
    return OnnxBackend(path, providers=providers, threads=threads)
