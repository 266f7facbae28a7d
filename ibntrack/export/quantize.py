"""Static int8 quantization of an export (both graphs) for ONNX Runtime, calibrated on real frames.

:func:`quantize_export` takes the refresh and cached graphs written by :func:`ibntrack.export.export_onnx`
and writes an int8 pair beside the output path (``<out>`` and ``<out stem>.cached.onnx``) with
ONNX Runtime's static quantizer: QDQ format, per-channel symmetric int8 weights, uint8 activations
(the fast u8×s8 kernels of x86 CPUs), MinMax ranges observed on calibration frames that went
through the tracker's own preprocessing (:func:`~ibntrack.data.transforms.letterbox` →
:func:`~ibntrack.data.transforms.to_tensor`).

**The same numbers on every x86 CPU** (``reduce_range``, default True). ONNX Runtime picks its int8
kernel by the CPU it runs on, and nothing in its API forces another: with VNNI (AVX-512 VNNI, AVX-VNNI,
AMX) a u8×s8 dot product accumulates exactly in int32, but on AVX2 alone it uses ``VPMADDUBSW``, which adds
*pairs* of u8×s8 products in int16 with saturation. With full-range weight codes (±127) a pair reaches
255·(127 + 127) = 64,770 > 32,767, so an AVX2-only CPU silently clips large activations (measured on an
AVX2-only EPYC: IN variance 16 % off). ``reduce_range=True`` quantizes the weights to 7 bits (codes in
[−64, 64]): a pair is at most 255·(64 + 64) = 32,640 ≤ 32,767, so every ISA computes the *same* exact
integer sums and a test on any machine pins the accuracy of all of them. It costs one bit of weight
resolution (per-channel scales keep that small). :func:`worst_pair_sum` reads the bound off a graph.

Sparse IN keeps working because both graphs are quantized with the same interface as the float pair:
the refresh graph still *outputs* ``in_mean.i`` / ``in_var.i`` and the cached graph still takes them as
inputs, so :class:`~ibntrack.runtime.ort.OnnxBackend` plays an int8 export unchanged. The cached graph is
calibrated with the statistics the float refresh graph computes on the same frame.

What stays in float, and why (:func:`float_nodes`):

* **the IN statistics and IN affine of every IBN layer** (``ReduceMean``, ``Sub``, ``Mul``, ``Sqrt``,
  ``Div``, ``Add``, ``Slice``, ``Concat``, ``Flatten``, ``Unsqueeze`` inside an IBN layer's scope): the
  statistics are the stream's cached state, reused for up to ``s`` frames, and the variance of a
  per-tensor 8-bit code is off by the code's step²/12 in every channel whose range is small against the
  tensor's; the rsqrt of a variance has no useful 8-bit range at all. The convolution in front of them
  is int8 (its output is dequantized once, then normalised in float), so the costly part still runs in
  int8; what stays float is O(C·H·W) element-wise work.
* **the last 1×1 convolution of each head** (``hm``, ``wh``, ``reg``, ``id`` outputs): these are the
  numbers the decoder reads (heatmap logits near the score threshold, box sides through ``exp``), and
  the layers are tiny (≤ 64 output channels, < 2 % of the FLOPs of the shipped model).
* ``Clip`` / ``Exp`` of the box head (``exp`` of an 8-bit code is a coarse log-scale grid).

Everything else — every other convolution, the residual ``Add``\\ s, ``MaxPool``, ``Resize`` and ReLU
(folded into the quantized convolution) — is int8 when ONNX Runtime fuses the QDQ pairs.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ibntrack.data.transforms import letterbox, to_tensor
from ibntrack.runtime.base import MAP_NAMES
from ibntrack.runtime.ort import CACHED_SUFFIX, META_KEY, cached_graph_path, mean_name, require, var_name

__all__ = [
    "DEFAULT_CALIBRATION_FRAMES",
    "QUANT_FORMATS",
    "QuantizeReport",
    "calibration_tensors",
    "compare_exports",
    "float_nodes",
    "quantize_export",
    "worst_pair_sum",
]

log = logging.getLogger(__name__)

QUANT_FORMATS = ("int8",)
DEFAULT_CALIBRATION_FRAMES = 32
_IN_SCOPE_MARKERS = {"Sqrt", "ReduceMean"}  # ops only an IBN layer's IN part emits (BN is folded)
_HEAD_TAIL_OPS = {"Clip", "Exp"}
INT16_MAX = 32767  # VPMADDUBSW (AVX2 u8×s8) saturates a pair of products here


@dataclasses.dataclass(frozen=True)
class QuantizeReport:
    """What :func:`quantize_export` wrote.

    Attributes:
        path: the int8 refresh graph; cached_path: the int8 cached graph (None without IBN layers).
        calibration_frames: frames the ranges were observed on.
        float_nodes: nodes left in float per graph (``{"refresh": [...], "cached": [...]}``).
        quantized_convs: convolutions quantized per graph.
    """

    path: Path
    cached_path: Path | None
    calibration_frames: int
    float_nodes: dict[str, list[str]]
    quantized_convs: dict[str, int]


def calibration_tensors(
    frames: Iterable[np.ndarray], input_size: tuple[int, int], limit: int = DEFAULT_CALIBRATION_FRAMES
) -> list[np.ndarray]:
    """Network inputs ``float32 [1, 3, H, W]`` of up to ``limit`` BGR frames, preprocessed as tracking does.

    Frames are taken evenly over what ``frames`` yields when it has a length, else the first ``limit``.

    Raises:
        ValueError: ``limit`` < 1, a frame that is not ``uint8 [h, w, 3]``, or no frame at all.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit (calibration frames) must be a positive int, got {limit!r}")
    items: Sequence[np.ndarray] | Iterator[np.ndarray]
    if isinstance(frames, Sequence) and len(frames) > limit:
        idx = np.linspace(0, len(frames) - 1, limit).round().astype(int)
        items = [frames[i] for i in idx]
    else:
        items = iter(frames)
    out = []
    for frame in items:
        if (
            not isinstance(frame, np.ndarray)
            or frame.dtype != np.uint8
            or frame.ndim != 3
            or frame.shape[2] != 3
        ):
            desc = getattr(frame, "shape", type(frame).__name__)
            raise ValueError(f"calibration frames must be uint8 BGR [h, w, 3] arrays, got {desc}")
        image, *_ = letterbox(frame, input_size)
        out.append(to_tensor(image).unsqueeze(0).numpy())
        if len(out) >= limit:
            break
    if not out:
        raise ValueError("no calibration frames: the calibration source yielded no images")
    return out


class _Reader:
    """``CalibrationDataReader`` over prepared feeds (dicts of input name → array)."""

    def __init__(self, feeds: list[dict[str, np.ndarray]]) -> None:
        self._feeds = feeds
        self._next = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._next >= len(self._feeds):
            return None
        self._next += 1
        return self._feeds[self._next - 1]

    def rewind(self) -> None:
        self._next = 0

    def __len__(self) -> int:
        return len(self._feeds)


def float_nodes(model: Any) -> list[str]:
    """Names of the nodes of an export graph (``onnx.ModelProto``) that stay float (see module docstring).

    The IN part of an IBN layer is found by its scope: every node named ``<scope>/…`` where ``<scope>``
    holds a ``Sqrt`` or ``ReduceMean`` (only IN emits them; BN is folded into the convolutions), except
    the scope's ``Conv``. Head tails: a ``Conv`` whose output is a graph output or feeds ``Clip``/``Exp``
    only, and those ``Clip``/``Exp`` nodes.
    """
    nodes = list(model.graph.node)
    scopes = {
        n.name.rsplit("/", 1)[0] + "/" for n in nodes if n.op_type in _IN_SCOPE_MARKERS and "/" in n.name
    }
    keep = [
        n.name
        for n in nodes
        if n.op_type not in {"Conv", "Constant"} and any(n.name.startswith(s) for s in scopes)
    ]
    outputs = {o.name for o in model.graph.output}
    consumers: dict[str, list[str]] = {}
    for n in nodes:
        for name in n.input:
            consumers.setdefault(name, []).append(n.op_type)
    for n in nodes:
        if n.op_type in _HEAD_TAIL_OPS:
            keep.append(n.name)
        elif n.op_type == "Conv" and n.output:
            used = consumers.get(n.output[0], [])
            if n.output[0] in outputs or (used and all(op in _HEAD_TAIL_OPS for op in used)):
                keep.append(n.name)
    return keep


def worst_pair_sum(model: Any) -> int:
    """Largest |a₀·w₀ + a₁·w₁| an AVX2 u8×s8 kernel can meet in a quantized graph (``onnx.ModelProto``).

    For every int8 weight initializer read by a ``DequantizeLinear`` (QDQ weights of ``[C_out, ...]``) and
    every output channel: 255 × the sum of its two largest positive codes, and of its two most negative
    ones (uint8 activations in [0, 255], paired in any order). At most :data:`INT16_MAX` means
    ``VPMADDUBSW`` never saturates, so AVX2 computes what VNNI/AMX compute. 0 for a graph without int8
    weights.
    """
    from onnx import TensorProto, numpy_helper

    inits = {t.name: t for t in model.graph.initializer if t.data_type == TensorProto.INT8}
    worst = 0
    for node in model.graph.node:
        if node.op_type != "DequantizeLinear" or node.input[0] not in inits:
            continue
        w = numpy_helper.to_array(inits[node.input[0]]).astype(np.int64)
        if w.ndim < 2:
            continue
        w = w.reshape(w.shape[0], -1)  # [C_out, C_in·kh·kw]
        w = np.sort(np.concatenate([w, np.zeros_like(w[:, :1])], axis=1), axis=1)  # ≥ 2 codes per row
        top = np.clip(w[:, -2:], 0, None).sum(axis=1)  # the two largest positive codes
        bottom = np.clip(w[:, :2], None, 0).sum(axis=1)  # the two most negative codes
        worst = max(worst, 255 * int(max(top.max(), -bottom.min())))
    return worst


def compare_exports(
    reference: str | os.PathLike,
    candidate: str | os.PathLike,
    frames: Iterable[np.ndarray],
    sparsity: int = 2,
) -> dict[str, float]:
    """How far an (int8) export's maps are from a (float) export's, both streaming ``frames`` at ``sparsity``.

    Returns:
        ``{"hm": max |sigmoid difference| (a score difference), "wh", "reg", "id": max |difference|
        over max |reference|}`` over every frame (refresh and cached frames both, for ``sparsity`` ≥ 2).
    """
    import torch

    from ibntrack.runtime.ort import OnnxBackend

    a, b = OnnxBackend(reference), OnnxBackend(candidate)
    a.set_sparsity(sparsity)
    b.set_sparsity(sparsity)
    input_size = a.card.require_input_size()
    worst = dict.fromkeys(MAP_NAMES, 0.0)
    for x in calibration_tensors(frames, input_size, limit=10**9):
        ra, rb = a(x), b(x)
        for name in MAP_NAMES:
            if name == "hm":
                err = float((torch.sigmoid(ra[name]) - torch.sigmoid(rb[name])).abs().max())
            else:
                err = float((ra[name] - rb[name]).abs().max() / ra[name].abs().max().clamp_min(1e-12))
            worst[name] = max(worst[name], err)
    return worst


def _feeds(refresh_path: Path, tensors: list[np.ndarray], n_layers: int) -> tuple[list[dict], list[dict]]:
    """Calibration feeds of the refresh graph and of the cached graph (statistics from the float graph)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(refresh_path), providers=["CPUExecutionProvider"])
    refresh, cached = [], []
    for x in tensors:
        refresh.append({"images": x})
        out = session.run(None, {"images": x})[len(MAP_NAMES) :]
        feed = {"images": x}
        for i in range(n_layers):
            feed[mean_name(i)] = np.ascontiguousarray(out[2 * i][-1], np.float32)
            feed[var_name(i)] = np.ascontiguousarray(out[2 * i + 1][-1], np.float32)
        cached.append(feed)
    return refresh, cached


def _hide_preprocess_advice(record: logging.LogRecord) -> bool:
    """Drops ONNX Runtime's "Please consider (to run) pre-processing" advice (logged to the root logger):
    the graphs are exported with constant folding and ONNX Runtime optimises them again at load."""
    return not str(record.msg).startswith("Please consider")


def _quantize_one(
    src: Path, dst: Path, feeds: list[dict], meta: dict[str, Any], reduce_range: bool
) -> tuple[list[str], int]:
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    model = onnx.load(str(src))
    excluded = float_nodes(model)
    root = logging.getLogger()
    root.addFilter(_hide_preprocess_advice)
    convs = sum(1 for n in model.graph.node if n.op_type == "Conv" and n.name not in set(excluded))
    try:
        quantize_static(
            str(src),
            str(dst),
            _Reader(feeds),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            reduce_range=reduce_range,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=excluded,
            calibrate_method=CalibrationMethod.MinMax,
            extra_options={"WeightSymmetric": True, "ActivationSymmetric": False},
        )
    finally:
        root.removeFilter(_hide_preprocess_advice)
    out = onnx.load(str(dst))
    del out.metadata_props[:]
    entry = out.metadata_props.add()
    entry.key = META_KEY
    entry.value = json.dumps(meta, sort_keys=True)
    out.producer_name = "ibntrack"
    onnx.save(out, str(dst))
    return excluded, convs


def quantize_export(
    fp32_path: str | os.PathLike,
    out: str | os.PathLike,
    frames: Iterable[np.ndarray],
    calibration_frames: int = DEFAULT_CALIBRATION_FRAMES,
    precision: str = "int8",
    calibration_source: str = "",
    reduce_range: bool = True,
) -> QuantizeReport:
    """Quantize an export's refresh and cached graphs to int8 (static QDQ), calibrated on ``frames``.

    Args:
        fp32_path: the float refresh graph written by ``ibntrack export`` (its cached graph beside it).
        out: the int8 refresh graph to write (``.onnx``); the cached graph goes to
            :func:`~ibntrack.runtime.ort.cached_graph_path` ``(out)``. Must differ from ``fp32_path``.
        frames: BGR ``uint8 [h, w, 3]`` frames (e.g. of :func:`ibntrack.engine.sources.open_sources`);
            preprocessed at the export's ``input_size``.
        calibration_frames: how many frames to calibrate on (evenly spread over a sized sequence).
        precision: ``"int8"`` (the only format).
        calibration_source: what the frames came from, stored in the metadata.
        reduce_range: 7-bit weight codes, so AVX2-only CPUs compute the same sums as VNNI/AMX ones (see the
            module docstring); False gives full 8-bit weights, exact only on CPUs with VNNI or AMX.

    Both files are written to a temporary folder beside ``out`` and moved into place together.

    Returns:
        a :class:`QuantizeReport`.

    Raises:
        ValueError: unknown ``precision``, an ``out`` that is not ``.onnx`` or is the input, an input that
            is not an ibntrack export, or no calibration frames.
        ImportError: ``onnx``/``onnxruntime`` missing.
    """
    if precision not in QUANT_FORMATS:
        raise ValueError(
            f"precision (--quantize) must be one of {', '.join(QUANT_FORMATS)}, got {precision!r}"
        )
    require("onnx")
    require("onnxruntime")
    import onnx

    src, out = Path(fp32_path), Path(out)
    if out.suffix != ".onnx" or out.name.endswith(CACHED_SUFFIX):
        raise ValueError(f"out must be a .onnx file (not a {CACHED_SUFFIX}), got {out}")
    if not src.is_file():
        raise FileNotFoundError(f"ONNX model {src} does not exist")
    if out.resolve() == src.resolve():
        raise ValueError(f"out {out} would overwrite the float export it is quantized from")
    props = {p.key: p.value for p in onnx.load(str(src), load_external_data=False).metadata_props}
    if META_KEY not in props:
        raise ValueError(f"{src} has no {META_KEY!r} metadata: not exported by ibntrack")
    meta = json.loads(props[META_KEY])
    if meta.get("graph") != "refresh":
        raise ValueError(f"{src} is the {meta.get('graph')} graph; pass the refresh graph")
    if meta.get("quantization"):
        raise ValueError(f"{src} is already quantized ({meta['quantization'].get('format')})")
    if meta.get("input_size") is None:
        raise ValueError(f"{src} stores no input_size; export with --input-size")
    input_size = (int(meta["input_size"][0]), int(meta["input_size"][1]))
    n_layers = len(meta.get("ibn_layers") or [])
    tensors = calibration_tensors(frames, input_size, calibration_frames)
    refresh_feeds, cached_feeds = _feeds(src, tensors, n_layers)
    qmeta = {
        "format": precision,
        "scheme": "static QDQ, per-channel symmetric int8 weights, uint8 activations, MinMax",
        "reduce_range": bool(reduce_range),
        "calibration_frames": len(tensors),
        "calibration_source": str(calibration_source),
        "float_source": src.name,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    kept: dict[str, list[str]] = {}
    convs: dict[str, int] = {}
    try:
        tmp_main = tmp_dir / out.name
        main_meta = {
            **meta,
            "quantization": qmeta,
            "cached_graph": cached_graph_path(out).name if n_layers else None,
        }
        kept["refresh"], convs["refresh"] = _quantize_one(
            src, tmp_main, refresh_feeds, main_meta, reduce_range
        )
        tmp_cached = None
        if n_layers:
            src_cached = src.parent / meta["cached_graph"]
            if not src_cached.is_file():
                raise FileNotFoundError(f"{src} needs its cached graph {src_cached}, which does not exist")
            tmp_cached = tmp_dir / cached_graph_path(out).name
            kept["cached"], convs["cached"] = _quantize_one(
                src_cached, tmp_cached, cached_feeds, {**main_meta, "graph": "cached"}, reduce_range
            )
            os.replace(tmp_cached, cached_graph_path(out))
        else:
            cached_graph_path(out).unlink(missing_ok=True)
        os.replace(tmp_main, out)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    log.info("quantized %s -> %s on %d calibration frames", src, out, len(tensors))
    return QuantizeReport(out, cached_graph_path(out) if n_layers else None, len(tensors), kept, convs)
