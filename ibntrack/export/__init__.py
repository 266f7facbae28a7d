"""ONNX export of the tracking network: two graphs (refresh, cached) so sparse IN works in ONNX Runtime.

* :mod:`~ibntrack.export.graphs` — the folded network rewritten into the refresh and cached graphs;
* :mod:`~ibntrack.export.onnx` — tracing, metadata (the :class:`~ibntrack.runtime.card.ModelCard`),
  atomic writing; :func:`export_onnx` (a checkpoint) and :func:`export_model` (an in-memory network);
* :mod:`~ibntrack.export.check` — every export is compared with the torch backend before it is kept.

The graphs' inputs, outputs and metadata are described in :mod:`ibntrack.runtime.ort`, which runs them.
Needs the ``onnx`` extra (``onnx`` and ``onnxruntime``). ``OnnxModel`` and ``load_onnx_model`` stay
importable from here for code written before the runtime layer.
"""

from ibntrack.export.check import CHECK_TOL, check_export
from ibntrack.export.onnx import (
    DEFAULT_OPSET,
    MIN_OPSET,
    ExportReport,
    export_checkpoint,
    export_model,
    export_onnx,
)
from ibntrack.runtime.base import MAP_NAMES
from ibntrack.runtime.ort import CACHED_SUFFIX, META_KEY, OnnxModel, cached_graph_path, load_onnx_model

__all__ = [
    "CACHED_SUFFIX",
    "CHECK_TOL",
    "DEFAULT_OPSET",
    "MAP_NAMES",
    "META_KEY",
    "MIN_OPSET",
    "ExportReport",
    "OnnxModel",
    "cached_graph_path",
    "check_export",
    "export_checkpoint",
    "export_model",
    "export_onnx",
    "load_onnx_model",
]
