"""ONNX export of the tracking network, and an ONNX Runtime runner with streaming sparse IN.

An export writes **two graphs side by side** (a plain-BN model, without IBN layers, only the first):

* ``<out>`` — the *refresh* graph: ``images [N, 3, H, W]`` → ``hm``, ``wh``, ``reg``, ``id`` (as
  :class:`~ibntrack.nn.model.TrackerNet`) **and**, for every IBN layer ``i`` in module order, the IN
  statistics it computed, ``in_mean.i`` and ``in_var.i``, each ``[N, k_i]`` (biased variance; ``k_i`` the
  layer's IN channels). IN is exact (each image its own statistics). BN is folded into the convolutions.
* ``<out stem>.cached.onnx`` — the *cached* graph: ``images`` plus the cached statistics ``in_mean.i``,
  ``in_var.i`` (each ``[k_i]``, one stream's latest refresh) → the four maps. Every IBN is then one
  per-channel affine map ``y = scale·conv(x) + shift`` computed from the given statistics: no reduction,
  no statistics, BN channels folded as always.

Why the cached graph does not fold IN into the convolution weights as the torch model does
(:class:`~ibntrack.nn.fold.FoldedConvIBN`): weights computed at run time are not graph constants, so
ONNX Runtime cannot prepack them or use its blocked (NCHWc) convolutions for those layers. Measured on a
2-core EPYC, one thread: resnet18-ibn at 576×320 ran 6–8 % slower than plain BN with run-time folded
weights, and within ±1 % of plain BN with the affine map after a constant-weight convolution.

:class:`OnnxModel` runs them like the folded PyTorch model streams: with sparsity ``s`` it runs the
refresh graph on frames ``0, s, 2s, …`` (counted from a reset or a forced refresh) and keeps the last
image's statistics, and the cached graph on the others. It exposes ``sparse_control``, so
``ibntrack.nn.set_sparsity / reset_stream / force_refresh / stream_stats / get_stream_state /
set_stream_state`` work on it unchanged (stream-state snapshots are interchangeable with the torch model's).

Both files carry the metadata key ``ibntrack`` (JSON): ``input_size`` ``[H, W]``, ``class_names``,
``train_scene``, ``num_classes``, ``emb_dim``, ``arch``, ``model_config``, ``num_ids``, ``version``
(ibntrack), ``graph`` (``"refresh"`` | ``"cached"``), ``cached_graph`` (file name or null), ``ibn_layers``
(``[{"name", "in_channels"}]``), ``outputs``, ``opset``.

Requires the ``onnx`` extra (``onnx`` and ``onnxruntime``); the runner needs only ``onnxruntime``.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ibntrack.nn.fold import FoldedConvIBN, fold_model
from ibntrack.nn.model import INPUT_MULTIPLE, OUTPUT_STRIDE, ModelConfig, TrackerNet
from ibntrack.nn.norm import StreamState, _check_sparsity
from ibntrack.nn.sparse import get_stream_state, reset_stream, set_sparsity

__all__ = [
    "CHECK_TOL",
    "ExportReport",
    "MAP_NAMES",
    "META_KEY",
    "OnnxModel",
    "add_export_parser",
    "cached_graph_path",
    "export_model",
    "export_onnx",
    "load_onnx_model",
]

log = logging.getLogger(__name__)

MAP_NAMES = ("hm", "wh", "reg", "id")
META_KEY = "ibntrack"
CACHED_SUFFIX = ".cached.onnx"
DEFAULT_OPSET = 17
MIN_OPSET = 13  # ReduceMean/Resize/Clip forms used by the graphs
CHECK_TOL = 1e-3  # export check: |onnx - torch| <= CHECK_TOL * (1 + |torch|) element-wise
CHECK_SEED = 0


def _mean_name(i: int) -> str:
    return f"in_mean.{i}"


def _var_name(i: int) -> str:
    return f"in_var.{i}"


def cached_graph_path(path: str | os.PathLike) -> Path:
    """``model.onnx`` → ``model.cached.onnx`` (the cached-statistics graph written beside it)."""
    path = Path(path)
    return path.with_name(path.stem + CACHED_SUFFIX)


# ------------------------------------------------------------------------------------------ export graphs
class _StatsIO:
    """Per-forward exchange of IN statistics between the graph wrapper and its conv-IBN modules."""

    def __init__(self, n_layers: int) -> None:
        self.given: list[tuple[Tensor, Tensor]] = []
        self.computed: list[tuple[Tensor, Tensor] | None] = [None] * n_layers


class _ExportConvIBN(nn.Module):
    """Export form of :class:`FoldedConvIBN`: exact IN emitting its statistics, or IN folded from inputs.

    Args:
        folded: the folded conv-IBN pair (its weights and IBN parameters are read, not copied).
        index: position of the IBN layer in module order (names its graph inputs/outputs).
        io: the shared statistics exchange.
        cached: False = refresh form (exact IN, statistics out), True = cached form (statistics in).
    """

    def __init__(self, folded: FoldedConvIBN, index: int, io: _StatsIO, cached: bool) -> None:
        super().__init__()
        self.folded = folded
        self.index = index
        self.io = io
        self.cached = cached

    def _conv(self, x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
        f = self.folded
        return F.conv2d(x, weight, bias, f.stride, f.padding, f.dilation, f.groups)

    def _split_bn_folded(self) -> bool:
        """Split mode with BN channels: ``refresh_weight`` holds them folded, only IN channels stay raw."""
        ibn = self.folded.ibn
        return ibn.mode == "split" and ibn.bn is not None

    def forward(self, x: Tensor) -> Tensor:
        return self._cached(x) if self.cached else self._refresh(x)

    def _refresh(self, x: Tensor) -> Tensor:
        f, ibn = self.folded, self.folded.ibn
        k = ibn.in_channels
        raw = self._conv(x, f.refresh_weight, f.refresh_bias)  # [N, C, h, w]
        x_in = raw[:, :k]  # [N, k, h, w]
        mean = x_in.mean(dim=(2, 3), keepdim=True)  # [N, k, 1, 1]
        centred = x_in - mean
        var = (centred * centred).mean(dim=(2, 3), keepdim=True)  # biased, [N, k, 1, 1]
        self.io.computed[self.index] = (mean.flatten(1), var.flatten(1))  # [N, k] each
        if self._split_bn_folded():
            scale = ibn.in_weight[None, :, None, None] * torch.rsqrt(var + ibn.eps)  # [N, k, 1, 1]
            out_in = centred * scale + ibn.in_bias[None, :, None, None]
            return torch.cat([out_in, raw[:, k:]], dim=1)
        scale, shift = ibn.affine(mean.flatten(1), var.flatten(1))  # [N, C] each (mix mode or all-IN)
        return raw * scale[:, :, None, None] + shift[:, :, None, None]

    def _cached(self, x: Tensor) -> Tensor:
        f, ibn = self.folded, self.folded.ibn
        mean, var = self.io.given[self.index]  # [k] each
        if self._split_bn_folded():
            in_scale = ibn.in_weight * torch.rsqrt(var + ibn.eps)  # [k]
            in_shift = ibn.in_bias - mean * in_scale
            n_bn = ibn.bn_channels
            scale = torch.cat([in_scale, in_scale.new_ones(n_bn)])  # [C]: BN channels are already folded
            shift = torch.cat([in_shift, in_shift.new_zeros(n_bn)])
            raw = self._conv(x, f.refresh_weight, f.refresh_bias)
        else:
            scale, shift = ibn.affine(mean, var)  # [C] each (mix mode or all-IN)
            raw = self._conv(x, f.weight, f.bias)
        # the weights stay graph constants (ONNX Runtime prepacks them); IN is one per-channel affine map
        return raw * scale[None, :, None, None] + shift[None, :, None, None]


class _Graph(nn.Module):
    """``images (, in_mean.i, in_var.i …)`` → ``(hm, wh, reg, id (, in_mean.i, in_var.i …))``."""

    def __init__(self, net: TrackerNet, n_layers: int, io: _StatsIO, cached: bool) -> None:
        super().__init__()
        self.net = net
        self.n_layers = n_layers
        self.io = io
        self.cached = cached

    def forward(self, images: Tensor, *stats: Tensor) -> tuple[Tensor, ...]:
        if self.cached:
            self.io.given = [(stats[2 * i], stats[2 * i + 1]) for i in range(self.n_layers)]
        maps = self.net.heads(self.net.neck(self.net.backbone(images)))
        outputs = [maps[name] for name in MAP_NAMES]
        if not self.cached:
            for pair in self.io.computed:
                outputs.extend(pair)
        return tuple(outputs)


def _export_graph(folded: TrackerNet, cached: bool) -> tuple[_Graph, list[tuple[str, int]]]:
    """A copy of ``folded`` whose conv-IBN pairs are refresh- or cached-form export modules.

    Returns:
        the graph module and the IBN layers as ``(module name, in_channels)`` in module order.
    """
    net = copy.deepcopy(folded)
    pairs = [(name, m) for name, m in net.named_modules() if isinstance(m, FoldedConvIBN)]
    io = _StatsIO(len(pairs))
    for index, (name, module) in enumerate(pairs):
        parent_name, _, child = name.rpartition(".")
        parent = net.get_submodule(parent_name) if parent_name else net
        setattr(parent, child, _ExportConvIBN(module, index, io, cached))
    layers = [(name.removesuffix(".conv1"), m.ibn.in_channels) for name, m in pairs]
    return _Graph(net, len(pairs), io, cached).eval(), layers


def _io_names(layers: Sequence[tuple[str, int]], cached: bool) -> tuple[list[str], list[str]]:
    stats = [n for i in range(len(layers)) for n in (_mean_name(i), _var_name(i))]
    if cached:
        return ["images", *stats], list(MAP_NAMES)
    return ["images"], [*MAP_NAMES, *stats]


def _dynamic_axes(layers: Sequence[tuple[str, int]], cached: bool) -> dict[str, dict[int, str]]:
    axes: dict[str, dict[int, str]] = {"images": {0: "batch", 2: "height", 3: "width"}}
    for name in MAP_NAMES:
        axes[name] = {0: "batch", 2: "out_height", 3: "out_width"}
    if not cached:
        for i in range(len(layers)):
            axes[_mean_name(i)] = {0: "batch"}
            axes[_var_name(i)] = {0: "batch"}
    return axes


def _trace_to_file(
    graph: _Graph,
    layers: list[tuple[str, int]],
    path: Path,
    input_size: tuple[int, int],
    opset: int,
    dynamic: bool,
) -> None:
    h, w = input_size
    images = torch.zeros(1, 3, h, w)
    args: tuple[Tensor, ...] = (images,)
    if graph.cached:
        args += tuple(t for _, k in layers for t in (torch.zeros(k), torch.ones(k)))
    inputs, outputs = _io_names(layers, graph.cached)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation and tracer warnings
        torch.onnx.export(
            graph,
            args,
            str(path),
            dynamo=False,
            input_names=inputs,
            output_names=outputs,
            opset_version=opset,
            dynamic_axes=_dynamic_axes(layers, graph.cached) if dynamic else None,
            do_constant_folding=True,
        )


def _finalize(path: Path, meta: Mapping[str, Any]) -> None:
    """Rewrite the traced file: drop initializer aliases and store ``meta`` under :data:`META_KEY`.

    The legacy exporter shares equal initializers (e.g. IN weights still at their init value) through
    ``Identity`` nodes; ONNX Runtime's optimizer mishandles those (it reports a node input "not a graph
    input, initializer, or output of a previous node"), so the consumers read the initializer directly.
    """
    import onnx

    proto = onnx.load(str(path))
    graph = proto.graph
    initializers = {t.name for t in graph.initializer}
    outputs = {o.name for o in graph.output}
    alias = {
        node.output[0]: node.input[0]
        for node in graph.node
        if node.op_type == "Identity" and node.input[0] in initializers and node.output[0] not in outputs
    }
    if alias:
        kept = [node for node in graph.node if not (node.op_type == "Identity" and node.output[0] in alias)]
        for node in kept:
            for j, name in enumerate(node.input):
                if name in alias:
                    node.input[j] = alias[name]
        del graph.node[:]
        graph.node.extend(kept)
    del proto.metadata_props[:]
    entry = proto.metadata_props.add()
    entry.key = META_KEY
    entry.value = json.dumps(dict(meta), sort_keys=True)
    proto.producer_name = "ibntrack"
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))


# ----------------------------------------------------------------------------------------------- export
@dataclasses.dataclass(frozen=True)
class ExportReport:
    """What an export wrote.

    Attributes:
        path: the refresh graph (the file to pass to :class:`OnnxModel`).
        cached_path: the cached-statistics graph, or None for a model without IBN layers.
        max_abs_diff: largest ``|onnx − torch|`` of the check (refresh and cached frame), None unchecked.
        ibn_layers: number of IBN layers.
    """

    path: Path
    cached_path: Path | None
    max_abs_diff: float | None
    ibn_layers: int


def _check_input_size(input_size: object) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in input_size)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise ValueError(f"input_size must be (H, W), got {input_size!r}") from None
    if h <= 0 or w <= 0 or h % INPUT_MULTIPLE or w % INPUT_MULTIPLE:
        raise ValueError(
            f"input_size must be positive multiples of {INPUT_MULTIPLE} (H, W), got {input_size!r}"
        )
    return h, w


def export_model(
    model: TrackerNet,
    out: str | os.PathLike,
    input_size: tuple[int, int],
    opset: int = DEFAULT_OPSET,
    dynamic: bool = True,
    check: bool = True,
    metadata: Mapping[str, Any] | None = None,
) -> ExportReport:
    """Export an in-memory network (BN folded) as the refresh graph ``out`` and, with IBN, the cached graph.

    Both files are written to a temporary folder beside ``out``, checked, then moved in place
    (``os.replace``), so a failed export leaves no file behind and never half of a pair.

    Args:
        model: a :class:`TrackerNet` (its weights are used in eval mode; it is not modified).
        out: path of the refresh graph; the cached graph goes to :func:`cached_graph_path` ``(out)``.
        input_size: ``(H, W)`` of the example input (multiples of 32); also stored in the metadata.
        opset: ONNX opset (≥ 13).
        dynamic: dynamic batch, height and width; False fixes them to ``(1, input_size)``.
        check: run both graphs in ONNX Runtime on two seeded random frames (refresh, then cached) and
            compare with the folded PyTorch model streaming at ``s = 2``.
        metadata: extra metadata entries (JSON-serialisable), merged into the ``ibntrack`` key.

    Returns:
        an :class:`ExportReport`.

    Raises:
        ValueError: bad arguments, or the check found ``|onnx − torch| > CHECK_TOL·(1 + |torch|)``.
        ImportError: ``onnx`` or ``onnxruntime`` is not installed.
    """
    if not isinstance(model, TrackerNet):
        raise ValueError(f"model must be a TrackerNet, got {type(model).__name__}")
    if isinstance(opset, bool) or not isinstance(opset, int) or opset < MIN_OPSET:
        raise ValueError(f"opset must be an int >= {MIN_OPSET}, got {opset!r}")
    input_size = _check_input_size(input_size)
    _require("onnx")
    _require("onnxruntime")
    out = Path(out)
    if out.suffix != ".onnx":
        raise ValueError(f"out must be a .onnx file, got {out}")
    folded = fold_model(model)  # an eval-mode copy; the caller's model is left as it is
    reset_stream(folded)
    refresh, layers = _export_graph(folded, cached=False)
    meta = {
        **_model_metadata(model.config),
        "input_size": list(input_size),
        "opset": opset,
        "ibn_layers": [{"name": name, "in_channels": k} for name, k in layers],
        "outputs": list(MAP_NAMES),
        "cached_graph": cached_graph_path(out).name if layers else None,
        **dict(metadata or {}),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        tmp_main = tmp_dir / out.name
        _trace_to_file(refresh, layers, tmp_main, input_size, opset, dynamic)
        _finalize(tmp_main, {**meta, "graph": "refresh"})
        tmp_cached = None
        if layers:
            cached, _ = _export_graph(folded, cached=True)
            tmp_cached = tmp_dir / cached_graph_path(out).name
            _trace_to_file(cached, layers, tmp_cached, input_size, opset, dynamic)
            _finalize(tmp_cached, {**meta, "graph": "cached"})
        diff = _check(folded, tmp_main, input_size) if check else None
        if tmp_cached is not None:
            os.replace(tmp_cached, cached_graph_path(out))
        else:
            cached_graph_path(out).unlink(missing_ok=True)  # a stale partner of an older export
        os.replace(tmp_main, out)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return ExportReport(out, cached_graph_path(out) if layers else None, diff, len(layers))


def export_onnx(
    weights: str | os.PathLike,
    out: str | os.PathLike,
    opset: int = DEFAULT_OPSET,
    input_size: tuple[int, int] | None = None,
    dynamic: bool = True,
    check: bool = True,
) -> Path:
    """Export a training checkpoint to ONNX (refresh graph ``out`` + cached graph beside it).

    Args:
        weights: checkpoint from ``ibntrack train`` (read with
            :func:`ibntrack.engine.checkpoint.load_model`).
        out: path of the refresh graph (``.onnx``).
        opset: ONNX opset (≥ 13).
        input_size: ``(H, W)``; default the checkpoint's ``input_size``.
        dynamic: dynamic batch, height and width.
        check: compare ONNX Runtime with PyTorch after export (see :func:`export_model`).

    Returns:
        ``out`` as a Path.

    Raises:
        ibntrack.engine.checkpoint.CheckpointError: (a ``ValueError``) missing or unreadable checkpoint.
        ValueError: bad arguments or a failed check.
    """
    return _export_checkpoint(weights, out, opset, input_size, dynamic, check).path


def _export_checkpoint(
    weights: str | os.PathLike,
    out: str | os.PathLike,
    opset: int,
    input_size: tuple[int, int] | None,
    dynamic: bool,
    check: bool,
) -> ExportReport:
    from ibntrack.engine.checkpoint import load_model

    model, ckpt = load_model(weights, device="cpu")
    if input_size is None:
        input_size = ckpt.get("input_size") or ckpt.get("config", {}).get("data", {}).get("input_size")
        if input_size is None:
            raise ValueError(f"checkpoint {weights} stores no input_size; pass input_size=(H, W)")
    extra = {
        "class_names": list(ckpt.get("class_names") or ["object"]),
        "train_scene": list(ckpt.get("train_scene") or []),
        "num_ids": ckpt.get("num_ids"),
        "source": Path(weights).name,
    }
    report = export_model(
        model, out, tuple(input_size), opset=opset, dynamic=dynamic, check=check, metadata=extra
    )
    log.info(
        "exported %s (%d IBN layers), check max abs diff %s",
        report.path,
        report.ibn_layers,
        report.max_abs_diff,
    )
    return report


def _model_metadata(config: ModelConfig) -> dict[str, Any]:
    from ibntrack import __version__

    return {
        "arch": config.arch,
        "num_classes": config.num_classes,
        "emb_dim": config.emb_dim,
        "model_config": config.to_dict(),
        "class_names": ["object"] if config.num_classes == 1 else [str(c) for c in range(config.num_classes)],
        "train_scene": [],
        "num_ids": None,
        "version": __version__,
    }


def _check(folded: TrackerNet, path: Path, input_size: tuple[int, int]) -> float:
    """Max |onnx − torch| over a refresh frame and a cached frame (``s = 2``); raises past tolerance."""
    h, w = input_size
    gen = torch.Generator().manual_seed(CHECK_SEED)
    frames = [torch.randn(1, 3, h, w, generator=gen) for _ in range(2)]
    ref_model = copy.deepcopy(folded)
    set_sparsity(ref_model, 2)
    reset_stream(ref_model)
    onnx_model = OnnxModel(path)
    onnx_model.set_sparsity(2)
    worst = 0.0
    with torch.no_grad():
        for t, frame in enumerate(frames):
            ref, got = ref_model(frame), onnx_model(frame)
            for name in MAP_NAMES:
                err = (got[name] - ref[name]).abs()
                worst = max(worst, float(err.max()))
                bad = err > CHECK_TOL * (1.0 + ref[name].abs())
                if bool(bad.any()):
                    kind = "refresh" if t == 0 else "cached"
                    raise ValueError(
                        f"ONNX check failed: output {name!r} on frame {t} ({kind}) differs from PyTorch by "
                        f"up to {float(err.max()):.3g} (tolerance {CHECK_TOL}·(1 + |torch|))"
                    )
            if t == 0:  # the statistics the refresh graph handed over must be the torch layers' cache
                for ref_state, got_state in zip(
                    get_stream_state(ref_model), onnx_model.get_stream_state(), strict=True
                ):
                    for a, b in ((ref_state.mean, got_state.mean), (ref_state.var, got_state.var)):
                        err = float((a - b).abs().max()) if a.numel() else 0.0
                        worst = max(worst, err)
                        if err > CHECK_TOL * (1.0 + float(a.abs().max())):
                            raise ValueError(f"ONNX check failed: IN statistics differ by {err:.3g}")
    return worst


def _require(module: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise ImportError(f"{module} is not installed; install the ONNX extra: pip install 'ibntrack[onnx]'")


# ----------------------------------------------------------------------------------------------- runner
class OnnxModel:
    """ONNX Runtime stand-in for the (folded) torch network, with streaming sparse IN.

    ``model(images)`` takes ``Tensor[N, 3, H, W]`` float32 (ImageNet-normalised RGB, H and W multiples of
    32; numpy accepted) and returns ``{"hm", "wh", "reg", "id"}`` CPU float32 tensors (on ``device`` after
    :meth:`to`), exactly as :class:`~ibntrack.nn.model.TrackerNet`. The batch axis is read as the frame
    order of one stream, as the torch IBN layers do in eval mode.

    Args:
        path: the refresh graph written by :func:`export_onnx`; its cached graph is found through the
            metadata (same folder).
        providers: ONNX Runtime execution providers (default ``["CPUExecutionProvider"]``).
        threads: intra-op threads (default: ONNX Runtime's choice, one per physical core).
        spin: let idle intra-op threads busy-wait for work (ONNX Runtime's own default). Off by default:
            the refresh and cached graphs are two sessions with two thread pools, and a pool spinning after
            its run competes for the cores with the other session's run and with the tracker's own work
            (measured: resnet18-ibn 576×320, 2 threads, s=5: 173 ms/frame spinning vs 166 without; s=1
            158 vs 157).
        session_config: extra ONNX Runtime session config entries, e.g.
            ``{"session.set_denormal_as_zero": "1"}``; applied last, so they override the above.

    Attributes:
        meta: the export metadata (``input_size``, ``class_names``, ``train_scene``, ``arch``, …).
        config: the :class:`ModelConfig` rebuilt from ``meta``.
        stride: output stride, 4.
        sparse_control: the object the ``ibntrack.nn`` sparse-IN functions drive (this runner).
        last_path: ``"refresh"`` or ``"cached"``: the graph of the last frame.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        providers: Sequence[str] | None = None,
        threads: int | None = None,
        spin: bool = False,
        session_config: Mapping[str, str] | None = None,
    ) -> None:
        _require("onnxruntime")
        import onnxruntime as ort

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
        self.config = ModelConfig.from_dict(self.meta["model_config"])
        self.stride = OUTPUT_STRIDE
        self._in_channels = [int(layer["in_channels"]) for layer in self.meta["ibn_layers"]]
        self._cached = None
        if self._in_channels:
            cached = path.parent / self.meta["cached_graph"]
            if not cached.is_file():
                raise FileNotFoundError(f"{path} needs its cached graph {cached}, which does not exist")
            self._cached = ort.InferenceSession(str(cached), options, providers=providers)
        self._device = torch.device("cpu")
        self._sparsity = 1
        self._state = StreamState()
        self._stats: list[tuple[np.ndarray, np.ndarray]] | None = None
        self.last_path = ""

    # ------------------------------------------------------------------------------ torch-like surface
    def eval(self) -> OnnxModel:
        """No-op (always inference); returns self."""
        return self

    def to(self, device: str | torch.device) -> OnnxModel:
        """Where the output tensors go (the graphs run on the session's providers); returns self."""
        self._device = torch.device(device)
        return self

    @property
    def training(self) -> bool:
        return False

    @property
    def sparse_control(self) -> OnnxModel:
        """The sparse-IN controller used by ``ibntrack.nn.set_sparsity`` and friends (this runner)."""
        return self

    @property
    def num_ibn_layers(self) -> int:
        return len(self._in_channels)

    def __repr__(self) -> str:
        return (
            f"OnnxModel({str(self.path)!r}, arch={self.config.arch}, ibn_layers={self.num_ibn_layers}, "
            f"sparsity={self._sparsity})"
        )

    # ---------------------------------------------------------------------------------- sparse control
    @property
    def sparsity(self) -> int:
        return self._sparsity

    def set_sparsity(self, s: int) -> None:
        """Sparsity factor ``s`` (int ≥ 1): the refresh graph runs every ``s``-th frame."""
        self._sparsity = _check_sparsity(s)

    def reset_stream(self) -> None:
        """Forget the cached statistics and zero the counters."""
        self._state = StreamState()
        self._stats = None

    def force_refresh(self) -> None:
        """The next frame runs the refresh graph and the schedule restarts from it."""
        self._state = dataclasses.replace(self._state, force=True)

    def stream_stats(self) -> dict[str, int]:
        """``{"frames", "refreshes"}`` since the last reset (zeros without IBN layers, as in torch)."""
        return {"frames": self._state.frames, "refreshes": self._state.refreshes}

    def get_stream_state(self) -> tuple[StreamState, ...]:
        """Per-IBN-layer snapshot, interchangeable with :func:`ibntrack.nn.get_stream_state` of torch."""
        out = []
        for i in range(self.num_ibn_layers):
            mean = var = None
            if self._stats is not None:
                mean, var = (torch.from_numpy(a.copy()) for a in self._stats[i])
            out.append(dataclasses.replace(self._state, mean=mean, var=var))
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
        stats = []
        for layer_state, k in zip(state, self._in_channels, strict=True):
            if layer_state.mean is None or layer_state.var is None:
                stats = None
                break
            if layer_state.mean.shape != (k,):
                raise ValueError(
                    f"state holds statistics of {tuple(layer_state.mean.shape)} channels, layer has {k}"
                )
            stats.append(tuple(t.detach().float().cpu().numpy() for t in (layer_state.mean, layer_state.var)))
        self._stats = stats
        self._state = dataclasses.replace(state[0], mean=None, var=None)

    # ------------------------------------------------------------------------------------------ forward
    def _schedule(self, n: int) -> list[bool]:
        """Advance the stream by ``n`` frames; per frame, whether it refreshes (as ``IBN._plan``)."""
        if not self._in_channels:
            return [True] * n
        state = self._state
        force = state.force or state.frames == 0 or self._stats is None
        since = state.since
        flags = []
        for _ in range(n):
            refresh = force or since >= self._sparsity
            if refresh:
                since, force = 0, False
            flags.append(refresh)
            since += 1
        self._state = dataclasses.replace(
            state, frames=state.frames + n, refreshes=state.refreshes + sum(flags), since=since, force=force
        )
        return flags

    def __call__(self, images: Tensor | np.ndarray) -> dict[str, Tensor]:
        """Run ``images: [N, 3, H, W]`` float32; returns the four maps (see the class docstring)."""
        x = images.detach().to("cpu", torch.float32).numpy() if isinstance(images, Tensor) else images
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"images must be [N, 3, H, W], got shape {tuple(x.shape)}")
        if x.shape[2] % INPUT_MULTIPLE or x.shape[3] % INPUT_MULTIPLE:
            raise ValueError(
                f"images height and width must be multiples of {INPUT_MULTIPLE}, got {tuple(x.shape[2:])}"
            )
        flags = self._schedule(x.shape[0])
        parts: list[list[np.ndarray]] = []
        start = 0
        while start < len(flags):  # consecutive frames of the same kind run as one batch
            stop = start + 1
            while stop < len(flags) and flags[stop] == flags[start]:
                stop += 1
            parts.append(self._run(x[start:stop], refresh=flags[start]))
            start = stop
        maps = [np.concatenate(p) if len(parts) > 1 else p[0] for p in zip(*parts, strict=True)]
        return {name: torch.from_numpy(a).to(self._device) for name, a in zip(MAP_NAMES, maps, strict=True)}

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
            return out[:n_maps]
        self.last_path = "cached"
        feed = {"images": x}
        for i, (mean, var) in enumerate(self._stats):
            feed[_mean_name(i)] = mean
            feed[_var_name(i)] = var
        return self._cached.run(None, feed)


def load_onnx_model(
    path: str | os.PathLike, providers: Sequence[str] | None = None, threads: int | None = None
) -> OnnxModel:
    """Open an export of :func:`export_onnx` for inference (see :class:`OnnxModel`)."""
    return OnnxModel(path, providers=providers, threads=threads)


# ------------------------------------------------------------------------------------------------- CLI
def _hw(text: str) -> tuple[int, int]:
    """Parses ``HxW`` (e.g. ``608x1088``) into ``(H, W)``."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HEIGHTxWIDTH such as 608x1088, got {text!r}") from None
    if h <= 0 or w <= 0 or h % INPUT_MULTIPLE or w % INPUT_MULTIPLE:
        raise argparse.ArgumentTypeError(
            f"height and width must be positive multiples of {INPUT_MULTIPLE}, got {text!r}"
        )
    return h, w


def _run_export(args: argparse.Namespace) -> int:
    report = _export_checkpoint(
        args.weights, args.out, args.opset, args.input_size, not args.static, not args.no_check
    )
    print(f"wrote {report.path} (refresh graph: images -> hm, wh, reg, id + IN statistics)")
    if report.cached_path is not None:
        print(
            f"wrote {report.cached_path} (cached graph: images + IN statistics -> maps; "
            f"{report.ibn_layers} IBN layers)"
        )
    if report.max_abs_diff is None:
        print("check skipped (--no-check)")
    else:
        print(f"check vs PyTorch: max abs diff {report.max_abs_diff:.3g}")
    return 0


def add_export_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``export`` subcommand (``ibntrack export --weights CKPT --out model.onnx``)."""
    p = subparsers.add_parser(
        "export",
        help="export a checkpoint to ONNX (refresh + cached-statistics graphs) for ONNX Runtime",
        description="Writes OUT (the refresh graph: images -> hm, wh, reg, id plus each IBN layer's "
        f"instance-norm statistics) and OUT-stem{CACHED_SUFFIX} (the cached graph: images and "
        "the cached statistics -> maps, IN a per-channel affine map), BN folded in both, "
        "with the model's metadata (input size, classes, training scene, arch). Then runs both "
        "in ONNX Runtime and compares with PyTorch (fails past 1e-3). Track with "
        "`ibntrack track SOURCE --weights OUT --backend onnxruntime`.",
    )
    p.add_argument("--weights", required=True, type=Path, help="checkpoint from `ibntrack train` (.pt)")
    p.add_argument("--out", required=True, type=Path, help="output .onnx file (the refresh graph)")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (default {DEFAULT_OPSET})")
    p.add_argument(
        "--input-size",
        type=_hw,
        default=None,
        metavar="HxW",
        help="example input HEIGHTxWIDTH, multiples of 32 (default: the checkpoint's input size)",
    )
    p.add_argument(
        "--static",
        action="store_true",
        help="fix batch 1 and the input size (default: dynamic batch, height and width)",
    )
    p.add_argument("--no-check", action="store_true", help="skip the ONNX Runtime vs PyTorch comparison")
    p.set_defaults(func=_run_export)
    return p
