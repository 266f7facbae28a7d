"""ONNX writing: trace the two export graphs, store the model card as metadata, check, move in place.

See :mod:`ibntrack.runtime.ort` for the graphs' inputs, outputs and metadata, and
:mod:`ibntrack.export.graphs` for how the network is rewritten. Every export is checked against the
torch backend (:mod:`ibntrack.export.check`) before it is moved into place.
"""

from __future__ import annotations

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

import torch
from torch import Tensor

from ibntrack.export.check import check_export
from ibntrack.export.graphs import _Graph, build_graph
from ibntrack.fileio import check_writable_file
from ibntrack.nn.checkpoint import load_model
from ibntrack.nn.fold import fold_model
from ibntrack.nn.model import TrackerNet
from ibntrack.nn.sparse import reset_stream
from ibntrack.runtime.base import MAP_NAMES
from ibntrack.runtime.card import ModelCard
from ibntrack.runtime.ort import META_KEY, cached_graph_path, mean_name, require, var_name
from ibntrack.sizes import check_input_size
from ibntrack.version import __version__

__all__ = ["DEFAULT_OPSET", "MIN_OPSET", "ExportReport", "export_checkpoint", "export_model", "export_onnx"]

log = logging.getLogger(__name__)

DEFAULT_OPSET = 17
MIN_OPSET = 13  # ReduceMean/Resize/Clip forms used by the graphs


def _io_names(layers: Sequence[tuple[str, int]], cached: bool) -> tuple[list[str], list[str]]:
    stats = [n for i in range(len(layers)) for n in (mean_name(i), var_name(i))]
    if cached:
        return ["images", *stats], list(MAP_NAMES)
    return ["images"], [*MAP_NAMES, *stats]


def _dynamic_axes(layers: Sequence[tuple[str, int]], cached: bool) -> dict[str, dict[int, str]]:
    axes: dict[str, dict[int, str]] = {"images": {0: "batch", 2: "height", 3: "width"}}
    for name in MAP_NAMES:
        axes[name] = {0: "batch", 2: "out_height", 3: "out_width"}
    if not cached:
        for i in range(len(layers)):
            axes[mean_name(i)] = {0: "batch"}
            axes[var_name(i)] = {0: "batch"}
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
        path: the refresh graph (the file to pass to :class:`OnnxBackend`).
        cached_path: the cached-statistics graph, or None for a model without IBN layers.
        max_abs_diff: largest ``|onnx − torch|`` of the check (refresh and cached frame), None unchecked.
        ibn_layers: number of IBN layers.
    """

    path: Path
    cached_path: Path | None
    max_abs_diff: float | None
    ibn_layers: int


def export_model(
    model: TrackerNet,
    out: str | os.PathLike,
    input_size: tuple[int, int],
    opset: int = DEFAULT_OPSET,
    dynamic: bool = True,
    check: bool = True,
    metadata: Mapping[str, Any] | None = None,
    card: ModelCard | None = None,
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
        metadata: extra metadata entries (JSON-serialisable), merged into the ``ibntrack`` key last.
        card: the model's :class:`ModelCard` (class names, training scene, tracker settings …) to store;
            default a card of ``model.config`` alone. Its ``input_size`` is replaced by ``input_size``.

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
    input_size = check_input_size(input_size)
    require("onnx")
    require("onnxruntime")
    out = Path(out)
    if out.suffix != ".onnx":
        raise ValueError(f"out must be a .onnx file, got {out}")
    check_writable_file(out, "out (--out)")  # before the conversion, not after it
    check_writable_file(cached_graph_path(out), "out (--out)")
    folded = fold_model(model)  # an eval-mode copy; the caller's model is left as it is
    reset_stream(folded)
    refresh, layers = build_graph(folded, cached=False)
    card = dataclasses.replace(card or ModelCard(config=model.config), input_size=input_size)
    meta = {
        **card.to_metadata(),
        "version": __version__,
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
            cached, _ = build_graph(folded, cached=True)
            tmp_cached = tmp_dir / cached_graph_path(out).name
            _trace_to_file(cached, layers, tmp_cached, input_size, opset, dynamic)
            _finalize(tmp_cached, {**meta, "graph": "cached"})
        diff = check_export(model, tmp_main, input_size) if check else None
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
            :func:`ibntrack.nn.checkpoint.load_model`).
        out: path of the refresh graph (``.onnx``).
        opset: ONNX opset (≥ 13).
        input_size: ``(H, W)``; default the checkpoint's ``input_size``.
        dynamic: dynamic batch, height and width.
        check: compare ONNX Runtime with PyTorch after export (see :func:`export_model`).

    Returns:
        ``out`` as a Path.

    Raises:
        ibntrack.nn.checkpoint.CheckpointError: (a ``ValueError``) missing or unreadable checkpoint.
        ValueError: bad arguments or a failed check.
    """
    return export_checkpoint(weights, out, opset, input_size, dynamic, check).path


def export_checkpoint(
    weights: str | os.PathLike,
    out: str | os.PathLike,
    opset: int = DEFAULT_OPSET,
    input_size: tuple[int, int] | None = None,
    dynamic: bool = True,
    check: bool = True,
) -> ExportReport:
    """:func:`export_onnx` returning the whole :class:`ExportReport` (what ``ibntrack export`` prints)."""
    model, ckpt = load_model(weights, device="cpu")
    card = dataclasses.replace(ModelCard.from_checkpoint(ckpt), source=Path(weights).name)
    if input_size is None:
        if card.input_size is None:
            raise ValueError(f"checkpoint {weights} stores no input_size; pass input_size=(H, W)")
        input_size = card.input_size
    report = export_model(model, out, input_size, opset=opset, dynamic=dynamic, check=check, card=card)
    log.info(
        "exported %s (%d IBN layers), check max abs diff %s",
        report.path,
        report.ibn_layers,
        report.max_abs_diff,
    )
    return report
