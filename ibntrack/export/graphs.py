"""Graph rewriting for ONNX export: the folded network as a refresh graph and a cached graph.

Each :class:`~ibntrack.nn.fold.FoldedConvIBN` of a folded network becomes an :class:`_ExportConvIBN`:

* refresh form — exact IN that also *emits* the statistics it computed (``in_mean.i``, ``in_var.i``,
  each ``[N, k_i]``), BN channels folded;
* cached form — the statistics come in as graph inputs (each ``[k_i]``) and IN is one per-channel
  affine map after a convolution whose weights stay graph constants.

Why the cached graph does not fold IN into the convolution weights as the torch model does: weights
computed at run time are not graph constants, so ONNX Runtime cannot prepack them or use its blocked
(NCHWc) convolutions for those layers. Measured on a 2-core EPYC, one thread: resnet18-ibn at 576×320 ran
6–8 % slower than plain BN with run-time folded weights, and within ±1 % of plain BN with the affine map
after a constant-weight convolution.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ibntrack.nn.fold import FoldedConvIBN
from ibntrack.nn.model import TrackerNet
from ibntrack.runtime.base import MAP_NAMES

__all__ = ["build_graph"]


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
                assert pair is not None  # every conv-IBN module ran and recorded its statistics
                outputs.extend(pair)
        return tuple(outputs)


def build_graph(folded: TrackerNet, cached: bool) -> tuple[_Graph, list[tuple[str, int]]]:
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


