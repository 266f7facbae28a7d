"""The PyTorch backend: the network folded (BN, and cached IN, inside the convolutions), eager.

:class:`TorchBackend` binds its stream's :class:`~ibntrack.nn.schedule.RefreshSchedule` to every IBN layer
of its (folded) model, so one forward pass is one frame batch of that stream; skipped frames run only the
folded convolutions (:class:`~ibntrack.nn.fold.FoldedConvIBN`).

Number formats (``precision``, resolved by :func:`ibntrack.precision.resolve_precision`): ``fp32``, or
``bf16`` (CPU with native bf16) / ``fp16`` (CUDA) under ``torch.autocast``, with the network and its
input in channels-last memory format on the CPU (oneDNN's blocked bf16 convolutions want NHWC; measured
on the shipped model, one thread: bf16 alone 1.6x, bf16 + channels-last 2.2-3.9x the fp32 speed). The
folded convolution weights are stored in bf16 once (autocast would round them on every call: a quarter
of the frame time); folding IN statistics into weights is done in fp32 and the result memoised in bf16;
IN statistics are computed and cached in fp32 on refresh frames (:meth:`ibntrack.nn.norm.IBN.resolve`),
and the maps come back as fp32.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ibntrack.nn.checkpoint import load_checkpoint, load_model
from ibntrack.nn.fold import FoldedConvIBN, fold_model
from ibntrack.nn.norm import StreamState
from ibntrack.nn.schedule import RefreshSchedule
from ibntrack.nn.sparse import bind_schedule, get_stream_state, reset_stream, set_stream_state
from ibntrack.precision import autocast, resolve_precision
from ibntrack.runtime.base import Maps, StreamBackend, check_images
from ibntrack.runtime.card import ModelCard

__all__ = ["TorchBackend", "load_torch", "read_card"]


def _pick_device(device: str | torch.device) -> torch.device:
    text = str(device)
    if text.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {text}: CUDA is not available on this machine; use --device cpu")
    if text != "cpu" and not text.startswith("cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda[:N]', got {text!r}")
    return torch.device(text)


_LOW = {"bf16": torch.bfloat16, "fp16": torch.float16}


def _store_weights_in(model: nn.Module, dtype: torch.dtype) -> None:
    """Keep the folded convolutions' weights in ``dtype`` (autocast would round them on every call).

    Plain convolutions (BN folded) are converted; a :class:`~ibntrack.nn.fold.FoldedConvIBN` keeps its
    fp32 weights for folding IN statistics into them and memoises the folded result in ``dtype``, and
    its refresh-frame weights are stored in ``dtype``. IBN parameters and BN statistics stay fp32.
    """
    for module in model.modules():
        if type(module) is nn.Conv2d:
            module.to(dtype)
        elif isinstance(module, FoldedConvIBN):
            module.folded_dtype = dtype
            module.refresh_weight = module.refresh_weight.to(dtype)
            module.refresh_bias = module.refresh_bias.to(dtype)


class TorchBackend(StreamBackend):
    """Runs a torch network (e.g. :class:`~ibntrack.nn.model.TrackerNet`) for one stream.

    Args:
        model: the network with trained weights; with ``fold`` it is copied, not changed.
        sparsity: the stream's sparsity factor ``s`` (1 = exact IN).
        device: ``"cpu"`` or ``"cuda[:N]"``.
        fold: run :func:`~ibntrack.nn.fold.fold_model`'s copy (faster, the default); False runs ``model``
            itself in eval mode (and binds the schedule to its IBN layers).
        schedule: the stream's schedule (default: a new one with ``sparsity``).
        precision: ``"fp32"``, ``"bf16"``, ``"fp16"`` or ``"auto"`` (see the module docstring); bf16 on a
            CPU without native bf16 falls back to fp32 with a warning.
        channels_last: run in channels-last memory format (default: on for bf16/fp16 on the CPU).

    Attributes:
        model: the module that runs (the folded copy with ``fold``).
        precision: the resolved format, ``"fp32"``, ``"bf16"`` or ``"fp16"``.
    """

    name = "torch"

    def __init__(
        self,
        model: nn.Module,
        sparsity: int = 1,
        device: str | torch.device = "cpu",
        fold: bool = True,
        schedule: RefreshSchedule | None = None,
        precision: str = "fp32",
        channels_last: bool | None = None,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise ValueError(f"model must be a torch nn.Module, got {type(model).__name__}")
        super().__init__(schedule or RefreshSchedule(sparsity), _pick_device(device))
        self.precision = resolve_precision(precision, self.device, "precision")
        if channels_last is None:
            channels_last = self.precision != "fp32" and self.device.type == "cpu"
        self.channels_last = bool(channels_last)
        model = model.to(self.device).eval()
        self.model = fold_model(model) if fold else model
        if self.channels_last:
            # Module.to takes memory_format at run time; torch's stubs do not list it
            self.model = self.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        if self.precision != "fp32" and fold:
            _store_weights_in(self.model, _LOW[self.precision])
        bind_schedule(self.model, self.schedule)

    def __call__(self, images: Tensor) -> Maps:
        """Maps of ``images: [N, 3, H, W]`` (moved to :attr:`device`); the stream advances by ``N``."""
        check_images(images)
        before = self.schedule.state.refreshes
        x = images.to(self.device)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), autocast(self.precision, self.device):
            out = self.model(x)
        if self.precision != "fp32":  # the contract: float32 maps, in the default layout
            out = {name: t.float().contiguous() for name, t in out.items()}
        self.last_path = "refresh" if self.schedule.state.refreshes > before else "cached"
        return out

    def reset_stream(self) -> None:
        """Forget the cached statistics and restart the schedule."""
        self.schedule.reset()
        reset_stream(self.model)

    def get_stream_state(self) -> tuple[StreamState, ...]:
        """Per-IBN-layer snapshot (see :func:`ibntrack.nn.get_stream_state`)."""
        return get_stream_state(self.model)

    def set_stream_state(self, state: Sequence[StreamState]) -> None:
        """Restore a snapshot of this backend, of the same network unfolded, or of its ONNX export."""
        set_stream_state(self.model, state)

    def __repr__(self) -> str:
        return (
            f"TorchBackend({type(self.model).__name__}, device={self.device}, precision={self.precision}, "
            f"{self.schedule})"
        )


def load_torch(
    path: str | os.PathLike,
    sparsity: int = 1,
    device: str | torch.device = "cpu",
    fold: bool = True,
    precision: str = "fp32",
) -> tuple[TorchBackend, ModelCard]:
    """A :class:`TorchBackend` for a training checkpoint, and the checkpoint's :class:`ModelCard`.

    ``precision``: see :class:`TorchBackend`.

    Raises:
        ibntrack.nn.checkpoint.CheckpointError: (a ``ValueError``) missing, corrupt or unfitting file.
    """
    model, ckpt = load_model(path, device="cpu")
    card = ModelCard.from_checkpoint(ckpt, source=os.fspath(path))
    return TorchBackend(model, sparsity=sparsity, device=device, fold=fold, precision=precision), card


def read_card(path: str | os.PathLike) -> ModelCard:
    """The :class:`ModelCard` of a checkpoint without building its network."""
    return ModelCard.from_checkpoint(load_checkpoint(path), source=os.fspath(path))
