"""The runtime layer: backends that run the network for one stream, and the model's card.

* :mod:`~ibntrack.runtime.base` — the :class:`Backend` protocol (images → head maps; owns the stream's
  refresh schedule) and what every backend shares;
* :mod:`~ibntrack.runtime.torch` — :class:`TorchBackend` (folded eager PyTorch);
* :mod:`~ibntrack.runtime.ort` — :class:`OnnxBackend` (ONNX Runtime, refresh + cached graphs);
* :mod:`~ibntrack.runtime.card` — :class:`ModelCard`, what a model is apart from its weights.

:func:`open_runtime` opens the weights of a :class:`RuntimeConfig` with the backend it names
(:mod:`~ibntrack.runtime.options`: the registry :data:`BACKENDS`, name → opener; the one ONNX rule);
:func:`open_backend` is the same with plain arguments. A new backend (another number format, another
runtime) is a class speaking :class:`Backend` and an entry in :data:`BACKENDS`.
"""

from __future__ import annotations

import os

import torch

from ibntrack.nn.adapt import DEFAULT_ADAPT_PRIOR
from ibntrack.runtime.base import MAP_NAMES, Backend, Maps, StreamBackend, check_images
from ibntrack.runtime.card import ModelCard
from ibntrack.runtime.options import BACKENDS, RuntimeConfig, is_onnx, open_runtime
from ibntrack.runtime.ort import OnnxBackend, load_onnx_model
from ibntrack.runtime.torch import TorchBackend, load_torch
from ibntrack.runtime.torch import read_card as _read_checkpoint_card

__all__ = [
    "BACKENDS",
    "MAP_NAMES",
    "Backend",
    "Maps",
    "ModelCard",
    "OnnxBackend",
    "RuntimeConfig",
    "StreamBackend",
    "TorchBackend",
    "check_images",
    "is_onnx",
    "load_onnx_model",
    "load_torch",
    "open_backend",
    "open_runtime",
    "read_card",
]


def open_backend(
    weights: str | os.PathLike,
    backend: str = "torch",
    sparsity: int = 1,
    device: str | torch.device = "cpu",
    fold: bool = True,
    precision: str = "fp32",
    adapt_bn: int = 0,
    adapt_bn_prior: float = DEFAULT_ADAPT_PRIOR,
) -> tuple[Backend, ModelCard]:
    """The backend for a weights file and the model's card.

    Args:
        weights: a training checkpoint (``.pt``) or the refresh graph of an export (``.onnx``).
        backend: ``"torch"`` or ``"onnxruntime"``; a ``.onnx`` file always runs in ONNX Runtime.
        sparsity: the stream's sparsity factor.
        device: torch device (ONNX Runtime runs on ``"cpu"`` here).
        fold: fold the torch network (ignored by ONNX Runtime, whose graphs are folded at export).
        precision: number format of the torch backend (``fp32 | bf16 | fp16 | auto``, see
            :class:`TorchBackend`). An ONNX export runs in the format it was written in (fp32, or int8
            from ``ibntrack export --quantize int8``): only ``fp32`` and ``auto`` are accepted there.
        adapt_bn, adapt_bn_prior: test-time BN adaptation over the first ``adapt_bn`` frames of each
            stream (torch only; see :class:`TorchBackend`).

    Raises:
        ValueError: unknown backend or precision, a device ONNX Runtime does not run on, ``adapt_bn``
            with ONNX Runtime, or an unreadable file.
    """
    runtime = RuntimeConfig(
        weights=os.fspath(weights),
        backend=backend,  # type: ignore[arg-type]  # checked by is_onnx
        device=str(device),
        precision=precision,  # type: ignore[arg-type]  # checked by the backend
        fold=fold,
        adapt_bn=adapt_bn,
        adapt_bn_prior=adapt_bn_prior,
    )
    is_onnx(weights, backend)  # an unknown backend name is a ValueError
    return open_runtime(runtime, sparsity)


def read_card(weights: str | os.PathLike, backend: str = "torch") -> ModelCard:
    """The :class:`ModelCard` of a checkpoint or of an export (without building a backend for torch)."""
    if is_onnx(weights, backend):
        return OnnxBackend(weights).card
    return _read_checkpoint_card(weights)
