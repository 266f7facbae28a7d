"""How the network runs: :class:`RuntimeConfig` (the ``runtime`` section of
:class:`~ibntrack.config.InferenceConfig`), the backend registry and the one ONNX rule.

``is_onnx`` is the one test of "is this an ONNX export?"; :class:`RuntimeConfig`'s validation the one place
that says what an ONNX export accepts (no ``adapt_bn``, only ``fp32``/``auto``, CPU only); :data:`BACKENDS`
maps a backend name to the function that opens a weights file with it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from ibntrack.nn.adapt import DEFAULT_ADAPT_PRIOR, check_adapt_frames
from ibntrack.runtime.base import Backend
from ibntrack.runtime.card import ModelCard

__all__ = ["BACKENDS", "Opener", "RuntimeConfig", "is_onnx", "open_runtime"]

Opener = Callable[["RuntimeConfig", int], tuple[Backend, ModelCard]]
"""``opener(runtime, sparsity) -> (backend, card)`` for ``runtime.weights``."""


def is_onnx(weights: str | os.PathLike | None, backend: str = "torch") -> bool:
    """Whether ``weights`` runs in ONNX Runtime: ``backend="onnxruntime"`` or a ``.onnx`` file.

    Raises:
        ValueError: ``backend`` is not a name of :data:`BACKENDS`.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(map(repr, BACKENDS))}, got {backend!r}")
    return backend == "onnxruntime" or os.fspath(weights or "").endswith(".onnx")


@dataclass(frozen=True)
class RuntimeConfig:
    """How the network runs.

    Attributes:
        weights: a training checkpoint (``.pt``) or the refresh graph of an export (``.onnx``).
        backend: ``torch`` or ``onnxruntime`` (a ``.onnx`` file always runs in ONNX Runtime).
        device: ``cpu`` or ``cuda[:N]`` (ONNX Runtime: ``cpu`` only).
        precision: number format of the torch backend, ``fp32 | bf16 | fp16 | auto``
            (:class:`~ibntrack.runtime.TorchBackend`); an ONNX export runs in the format it was written in
            and takes ``fp32`` or ``auto``.
        fold: fold BN (and cached IN) into convolutions (torch; an export is folded already).
        adapt_bn: test-time BN adaptation over the first ``adapt_bn`` frames of each stream (torch only;
            0 = off; :mod:`ibntrack.nn.adapt`).
        adapt_bn_prior: weight of the training BN statistics, in frames.
    """

    weights: str | None = None
    backend: Literal["torch", "onnxruntime"] = "torch"
    device: str = "cpu"
    precision: Literal["fp32", "bf16", "fp16", "auto"] = "fp32"
    fold: bool = True
    adapt_bn: int = 0
    adapt_bn_prior: float = DEFAULT_ADAPT_PRIOR

    def __post_init__(self) -> None:
        check_adapt_frames(self.adapt_bn)
        if not self.onnx:
            return
        if self.adapt_bn:  # the one place that says what an ONNX export takes
            raise ValueError(
                "--adapt-bn is only supported by the PyTorch backend (adapt_bn): an ONNX export has its BN "
                "statistics folded into the graph; track the .pt checkpoint with --backend torch"
            )
        if str(self.device) != "cpu":
            raise ValueError("the onnxruntime backend runs on --device cpu here")
        if self.precision not in ("fp32", "auto"):
            raise ValueError(
                f"--precision {self.precision} (precision) applies to the torch backend; an ONNX export runs "
                "in the format it was written in (for int8: ibntrack export --quantize int8 --calibration "
                "SOURCE)"
            )

    @property
    def onnx(self) -> bool:
        """Whether these weights run in ONNX Runtime (:func:`is_onnx`)."""
        return is_onnx(self.weights, self.backend)

    def resolved(self) -> RuntimeConfig:
        """This config with the backend its weights run in (``.onnx`` → ``onnxruntime``, in the export's own
        format: ``precision="fp32"``)."""
        if not self.onnx:
            return self
        return dataclasses.replace(self, backend="onnxruntime", precision="fp32")


def open_runtime(runtime: RuntimeConfig, sparsity: int = 1) -> tuple[Backend, ModelCard]:
    """The backend for ``runtime.weights`` (opened by the :data:`BACKENDS` entry of its backend) and the
    model's card.

    Raises:
        ValueError: no weights, or an unreadable file.
    """
    if runtime.weights is None:
        raise ValueError("runtime.weights: give the weights file (--weights) to open a backend")
    runtime = runtime.resolved()
    return BACKENDS[runtime.backend](runtime, sparsity)


def _open_torch(runtime: RuntimeConfig, sparsity: int) -> tuple[Backend, ModelCard]:
    from ibntrack.runtime.torch import load_torch

    assert runtime.weights is not None  # checked by open_runtime
    return load_torch(
        runtime.weights,
        sparsity=sparsity,
        device=runtime.device,
        fold=runtime.fold,
        precision=runtime.precision,
        adapt_bn=runtime.adapt_bn,
        adapt_bn_prior=runtime.adapt_bn_prior,
    )


def _open_onnx(runtime: RuntimeConfig, sparsity: int) -> tuple[Backend, ModelCard]:
    from ibntrack.runtime.ort import OnnxBackend

    assert runtime.weights is not None  # checked by open_runtime
    runner = OnnxBackend(runtime.weights)
    runner.set_sparsity(sparsity)
    return runner, runner.card


BACKENDS: dict[str, Opener] = {"torch": _open_torch, "onnxruntime": _open_onnx}
"""Backend name (``--backend``) → opener. A new backend is a class speaking
:class:`~ibntrack.runtime.Backend` and one entry here."""
