"""ONNX export of the tracking network: two graphs (refresh, cached) so sparse IN works in ONNX Runtime.

* :mod:`~ibntrack.export.graphs` — the folded network rewritten into the refresh and cached graphs;
* :mod:`~ibntrack.export.onnx` — tracing, metadata (the :class:`~ibntrack.runtime.card.ModelCard`),
  atomic writing; :func:`export_onnx` (a checkpoint) and :func:`export_model` (an in-memory network);
* :mod:`~ibntrack.export.check` — every export is compared with the torch backend before it is kept.

The graphs' inputs, outputs and metadata are described in :mod:`ibntrack.runtime.ort`, which runs them.
Needs the ``onnx`` extra (``onnx`` and ``onnxruntime``); :class:`ibntrack.runtime.OnnxBackend` plays an
export.
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

__all__ = [
    "CHECK_TOL",
    "DEFAULT_OPSET",
    "MIN_OPSET",
    "ExportReport",
    "check_export",
    "export_checkpoint",
    "export_model",
    "export_onnx",
]
