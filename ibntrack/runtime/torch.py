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

Test-time BN adaptation (``adapt_bn=K``, :class:`~ibntrack.nn.adapt.BNAdapter`): the first ``K`` frames
of each stream run the unfolded network, one frame per call, re-estimating its BN statistics; then it is
folded again with the adapted statistics and the stream goes on folded. :meth:`TorchBackend.reset_stream`
restores the training statistics and adapts the next stream from scratch.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ibntrack.nn.adapt import DEFAULT_ADAPT_PRIOR, BNAdapter, check_adapt_frames
from ibntrack.nn.checkpoint import load_checkpoint, load_model
from ibntrack.nn.fold import FoldedConvIBN, fold_model
from ibntrack.nn.norm import StreamState
from ibntrack.nn.schedule import RefreshSchedule
from ibntrack.nn.sparse import bind_schedule, get_stream_state, reset_stream, set_stream_state
from ibntrack.precision import autocast, resolve_precision
from ibntrack.runtime.base import Maps, StreamBackend, check_images
from ibntrack.runtime.card import ModelCard
from ibntrack.runtime.isa import auto_precision  # issue 23: `auto` chosen (and logged) by the ISA table

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
        adapt_bn: ``K``: re-estimate the BN statistics from the first ``K`` frames of each stream, then
            freeze them (0 = off; see the module docstring). With ``fold`` the adapted network is a copy of
            ``model``; without, ``model``'s own BN statistics change (:meth:`reset_stream` restores them).
        adapt_bn_prior: strength of the training statistics as a prior, in frames (see
            :mod:`ibntrack.nn.adapt`).

    Attributes:
        model: the module that runs (the folded copy with ``fold``; after the ``K`` adapted frames of a
            stream, a copy folded with the adapted statistics).
        precision: the resolved format, ``"fp32"``, ``"bf16"`` or ``"fp16"``.
        adapter: the :class:`~ibntrack.nn.adapt.BNAdapter` of ``adapt_bn`` (None when off).
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
        adapt_bn: int = 0,
        adapt_bn_prior: float = DEFAULT_ADAPT_PRIOR,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise ValueError(f"model must be a torch nn.Module, got {type(model).__name__}")
        check_adapt_frames(adapt_bn)
        super().__init__(schedule or RefreshSchedule(sparsity), _pick_device(device))
        self.precision = resolve_precision(auto_precision(precision, self.device), self.device, "precision")
        if channels_last is None:
            channels_last = self.precision != "fp32" and self.device.type == "cpu"
        self.channels_last = bool(channels_last)
        self.fold = bool(fold)
        model = model.to(self.device).eval()
        self.adapter: BNAdapter | None = None
        if adapt_bn:
            self.adapter = BNAdapter(copy.deepcopy(model) if fold else model, adapt_bn, adapt_bn_prior)
            bind_schedule(self.adapter.model, self.schedule)
        self.model = self._runner(model)

    def _runner(self, model: nn.Module) -> nn.Module:
        """The module that runs ``model``: folded, in the memory layout and weight format of the backend."""
        runner = fold_model(model) if self.fold else model
        if self.channels_last:
            # Module.to takes memory_format at run time; torch's stubs do not list it
            runner = runner.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        if self.precision != "fp32" and self.fold:
            _store_weights_in(runner, _LOW[self.precision])
        bind_schedule(runner, self.schedule)
        return runner

    @property
    def adapt_bn(self) -> int:
        """``K`` of test-time BN adaptation (0 when off)."""
        return 0 if self.adapter is None else self.adapter.frames

    @property
    def adapting(self) -> bool:
        """The next frame still adapts the BN statistics (runs the unfolded network)."""
        return self.adapter is not None and self.adapter.active

    def __call__(self, images: Tensor) -> Maps:
        """Maps of ``images: [N, 3, H, W]`` (moved to :attr:`device`); the stream advances by ``N``."""
        check_images(images)
        before = self.schedule.state.refreshes
        x = images.to(self.device)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), autocast(self.precision, self.device):
            out = self._adapt(x) if self.adapting else self.model(x)
        if self.precision != "fp32":  # the contract: float32 maps, in the default layout
            out = {name: t.float().contiguous() for name, t in out.items()}
        self.last_path = "refresh" if self.schedule.state.refreshes > before else "cached"
        return out

    def _adapt(self, x: Tensor) -> Maps:
        """Frames of ``x`` while adapting: one at a time through the adapter (frame t sees the BN
        statistics of frames 0..t), the network refolded once they freeze, the rest of ``x`` folded."""
        adapter = self.adapter
        assert adapter is not None  # only called while adapting
        n_adapt = min(int(x.shape[0]), adapter.remaining)
        parts = [adapter.step(x[i : i + 1]) for i in range(n_adapt)]
        if not adapter.active and self.fold:
            with torch.inference_mode(False):  # the folded weights are parameters, not inference tensors
                self.model = self._runner(adapter.model)
            self.schedule.end_batch()  # the folded copy's IBN layers start the next frame's batch
        if n_adapt < x.shape[0]:
            parts.append(self.model(x[n_adapt:]))
        if len(parts) == 1:
            return parts[0]
        return {name: torch.cat([part[name] for part in parts]) for name in parts[0]}

    def _live(self) -> nn.Module:
        """The module holding the stream's cached IN statistics (the adapter's while adapting)."""
        return self.adapter.model if self.adapter is not None and self.adapter.active else self.model

    def reset_stream(self) -> None:
        """Forget the cached statistics and restart the schedule (and BN adaptation, from the training
        statistics)."""
        self.schedule.reset()
        reset_stream(self.model)
        if self.adapter is not None:
            self.adapter.reset()
            reset_stream(self.adapter.model)

    def get_stream_state(self) -> tuple[StreamState, ...]:
        """Per-IBN-layer snapshot (see :func:`ibntrack.nn.get_stream_state`)."""
        return get_stream_state(self._live())

    def set_stream_state(self, state: Sequence[StreamState]) -> None:
        """Restore a snapshot of this backend, of the same network unfolded, or of its ONNX export.

        Raises:
            ValueError: the backend adapts BN (``adapt_bn``): its BN statistics belong to one stream, and
                a snapshot holds only IN statistics; use one backend per stream (camera).
        """
        if self.adapter is not None:
            raise ValueError(
                "set_stream_state: a backend with adapt_bn (--adapt-bn) adapts its BN statistics to one "
                "stream; use one backend (Tracker) per camera instead of switching stream states"
            )
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
    adapt_bn: int = 0,
    adapt_bn_prior: float = DEFAULT_ADAPT_PRIOR,
) -> tuple[TorchBackend, ModelCard]:
    """A :class:`TorchBackend` for a training checkpoint, and the checkpoint's :class:`ModelCard`.

    ``precision``, ``adapt_bn``, ``adapt_bn_prior``: see :class:`TorchBackend`.

    Raises:
        ibntrack.nn.checkpoint.CheckpointError: (a ``ValueError``) missing, corrupt or unfitting file.
    """
    model, ckpt = load_model(path, device="cpu")
    card = ModelCard.from_checkpoint(ckpt, source=os.fspath(path))
    backend = TorchBackend(
        model,
        sparsity=sparsity,
        device=device,
        fold=fold,
        precision=precision,
        adapt_bn=adapt_bn,
        adapt_bn_prior=adapt_bn_prior,
    )
    return backend, card


def read_card(path: str | os.PathLike) -> ModelCard:
    """The :class:`ModelCard` of a checkpoint without building its network."""
    return ModelCard.from_checkpoint(load_checkpoint(path), source=os.fspath(path))
