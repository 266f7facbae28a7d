"""Inference folding: BN into the preceding convolutions, and IN too on frames that reuse cached statistics.

In eval mode a ``conv → BN`` pair is one convolution with ``W' = W·γ/σ`` and ``b' = β + (b − μ)·γ/σ``
(``σ = sqrt(running_var + ε)``, ``μ`` the running mean). A ``conv → IBN`` pair is affine too once its IN
statistics are fixed, so :class:`FoldedConvIBN` runs

* on frames that reuse cached statistics (skipped by sparse IN): **only** the folded convolution, no
  normalization op at all — this is where sparse IN saves compute;
* on refresh frames: the convolution with the BN channels folded statically and the IN channels raw
  (mix mode: all channels raw), the IN statistics of the selected images, and the normalization.

The IBN layer stays inside the folded module (it owns the IN affine and the cached statistics, and
reads the plan of each frame batch from the stream's schedule), so ``set_sparsity``, ``reset_stream``,
``force_refresh``, ``stream_stats`` and the stream-state functions work on the folded model unchanged.
The folded weights are a snapshot: fold again after changing the original model's parameters.
"""

from __future__ import annotations

import copy
from typing import TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ibntrack.nn.norm import IBN, bn_affine

__all__ = ["FoldedConvIBN", "fold_conv_bn", "fold_model"]

ModuleT = TypeVar("ModuleT", bound=nn.Module)

FOLD_CACHE_STREAMS = 8  # folded weights kept per layer: streams one model can alternate without refolding



def _conv_bias(conv: nn.Conv2d) -> Tensor:
    if conv.bias is not None:
        return conv.bias.detach()
    return conv.weight.new_zeros(conv.out_channels)


@torch.no_grad()
def fold_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """One convolution (with bias) equal to ``bn(conv(x))`` with ``bn`` in eval mode."""
    scale, shift = bn_affine(bn)
    folded = copy.deepcopy(conv)  # same geometry; weights replaced, bias added
    folded.weight.copy_(conv.weight * scale[:, None, None, None])
    folded.bias = nn.Parameter(_conv_bias(conv) * scale + shift)
    return folded


class FoldedConvIBN(nn.Module):
    """``ibn(conv(x))`` for inference, with BN and (on skipped frames) IN folded into the convolution.

    Args:
        conv: the convolution (zeros padding).
        ibn: the IBN layer that follows it; it is kept as the child ``ibn`` and drives the schedule.

    Shapes:
        ``Tensor[N, C_in, H, W] -> Tensor[N, C_out, H', W']``, as ``conv``.

    Attributes:
        last_path: ``"folded"`` when the last call ran only the folded convolution, else ``"refresh"``.
    """

    weight: Tensor  # buffers: the raw convolution, and the form used on refresh frames
    bias: Tensor
    refresh_weight: Tensor
    refresh_bias: Tensor

    def __init__(self, conv: nn.Conv2d, ibn: IBN) -> None:
        super().__init__()
        if conv.padding_mode != "zeros":
            raise ValueError(f"conv.padding_mode must be 'zeros', got {conv.padding_mode!r}")
        if conv.out_channels != ibn.channels:
            raise ValueError(f"conv has {conv.out_channels} output channels, ibn {ibn.channels}")
        self.stride = conv.stride
        self.padding = conv.padding
        self.dilation = conv.dilation
        self.groups = conv.groups
        self.ibn = ibn
        with torch.no_grad():
            weight = conv.weight.detach().clone()
            bias = _conv_bias(conv).clone()
            self.register_buffer("weight", weight)
            self.register_buffer("bias", bias)
            if ibn.mode == "split" and ibn.bn is not None:
                # IN channels raw, BN channels folded: [k raw | C-k folded]
                k = ibn.in_channels
                scale, shift = bn_affine(ibn.bn)
                weight = torch.cat([weight[:k], weight[k:] * scale[:, None, None, None]])
                bias = torch.cat([bias[:k], bias[k:] * scale + shift])
            self.register_buffer("refresh_weight", weight.clone())
            self.register_buffer("refresh_bias", bias.clone())
        # folded (weight, bias) per cached statistics tensor, oldest first: one model can serve several
        # streams (get/set_stream_state) without refolding on every switch
        self._folded: dict[int, tuple[Tensor, Tensor, Tensor]] = {}
        self.last_path = ""
        # dtype the folded weights are memoised in (None: that of ``weight``); a bf16 backend sets bf16 so
        # the cached-statistics convolution is not re-rounded on every frame (folding itself stays fp32)
        self.folded_dtype: torch.dtype | None = None

    def _conv(self, x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
        return F.conv2d(x, weight, bias, self.stride, self.padding, self.dilation, self.groups)

    @torch.no_grad()
    def _static_weights(self) -> tuple[Tensor, Tensor]:
        """Convolution weights with the whole eval IBN (cached IN statistics) folded in.

        Memoised per statistics tensor (the last :data:`FOLD_CACHE_STREAMS` of them): the entry holds
        the tensor itself, so its ``id`` cannot be reused while the entry lives.
        """
        key = self.ibn.cached_stats()[0] if self.ibn.in_channels else self.weight
        hit = self._folded.get(id(key))
        if hit is not None and hit[0] is key and hit[1].device == self.weight.device:
            return hit[1], hit[2]
        scale, shift = self.ibn.affine()  # [C] each
        dtype = self.folded_dtype or self.weight.dtype
        weight = (self.weight * scale[:, None, None, None]).to(dtype)
        bias = (self.bias * scale + shift).to(dtype)
        self._folded.pop(id(key), None)
        while len(self._folded) >= FOLD_CACHE_STREAMS:
            self._folded.pop(next(iter(self._folded)))
        self._folded[id(key)] = (key, weight, bias)
        return weight, bias

    def forward(self, x: Tensor) -> Tensor:
        ibn = self.ibn
        plan = ibn.next_plan(x.shape[0])
        if not plan.selected:  # every image reuses the cached statistics: folded conv alone
            self.last_path = "folded"
            return self._conv(x, *self._static_weights())
        self.last_path = "refresh"
        raw = self._conv(x, self.refresh_weight, self.refresh_bias)
        k = ibn.in_channels
        if ibn.mode == "mix" or ibn.bn is None:
            scale, shift = ibn.eval_affine(raw, plan)  # [N, C] each
            return torch.addcmul(shift[:, :, None, None], raw, scale[:, :, None, None])
        if k > 0:  # BN channels are already folded; normalise the IN channels in place
            mean, var = ibn.resolve(raw[:, :k], plan)  # [N, k] each
            scale, shift = ibn.affine(mean, var)  # [N, C] each
            # in the activations' dtype (bf16 under autocast): a mixed-dtype in-place op is ~3x slower
            scale, shift = scale[:, :k, None, None].to(raw.dtype), shift[:, :k, None, None].to(raw.dtype)
            if raw.is_contiguous() or not raw.is_contiguous(memory_format=torch.channels_last):
                raw[:, :k].mul_(scale).add_(shift)
            else:  # channels-last: a channel slice is strided, one pass over all channels vectorises
                n_bn = raw.shape[1] - k
                ones = scale.new_ones(scale.shape[0], n_bn, 1, 1)
                zeros = shift.new_zeros(shift.shape[0], n_bn, 1, 1)
                raw.mul_(torch.cat([scale, ones], 1)).add_(torch.cat([shift, zeros], 1))
        return raw


def _pairs(module: nn.Module) -> list[tuple[str, str]]:
    """``(conv, norm)`` child-name pairs applied back to back in ``module.forward``."""
    if isinstance(module, nn.Sequential):
        names = list(module._modules)
        return [(a, b) for a, b in zip(names, names[1:], strict=False)]
    return list(getattr(module, "fold_pairs", ()))


def fold_model(model: ModuleT) -> ModuleT:
    """An eval-mode inference copy of ``model`` with its norms folded into the convolutions.

    Every ``conv → BatchNorm2d`` pair (listed in a module's ``fold_pairs`` or consecutive in an
    ``nn.Sequential``) becomes one convolution; every ``conv → IBN`` pair becomes a
    :class:`FoldedConvIBN`. The copy keeps the sparsity and the stream state of ``model`` at the time of
    the call, and equals ``model`` in eval mode on the same frame sequence (up to float rounding). It is
    for inference only: calling ``.train()`` on it does not restore batch statistics.

    Args:
        model: e.g. a :class:`~ibntrack.nn.model.TrackerNet`; left unchanged.

    Returns:
        The folded copy, in eval mode.
    """
    folded = copy.deepcopy(model).eval()
    for module in list(folded.modules()):
        for conv_name, norm_name in _pairs(module):
            conv = getattr(module, conv_name, None)
            norm = getattr(module, norm_name, None)
            if type(conv) is not nn.Conv2d or conv.padding_mode != "zeros":
                continue
            if isinstance(norm, nn.BatchNorm2d) and norm.track_running_stats and norm.affine:
                replacement: nn.Module = fold_conv_bn(conv, norm)
            elif isinstance(norm, IBN):
                replacement = FoldedConvIBN(conv, norm)
            else:
                continue
            setattr(module, conv_name, replacement)
            setattr(module, norm_name, nn.Identity())
    return folded.eval()
