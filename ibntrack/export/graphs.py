"""Graph rewriting for ONNX export: the folded network as a refresh graph and a cached graph.

Each :class:`~ibntrack.nn.fold.FoldedConvIBN` of a folded network becomes an :class:`_ExportConvIBN`:

* refresh form — exact IN that also *emits* the statistics it computed (``in_mean.i``, ``in_var.i``,
  each ``[N, k_i]``), BN channels folded;
* cached form — the statistics come in as graph inputs (each ``[k_i]``) and IN is one per-channel
  affine map after a convolution whose weights stay graph constants.

An IBN layer that follows no convolution (IBN-b's IN after a residual addition, left unfolded by
:func:`~ibntrack.nn.fold.fold_model`) becomes an :class:`_ExportIBN` with the same two forms, minus the
convolution. The graphs' statistics are numbered in module order, the order of
:func:`ibntrack.nn.sparse.ibn_layers` and so of the torch model's stream state.

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
from ibntrack.nn.norm import IBN
from ibntrack.runtime.base import MAP_NAMES

__all__ = ["build_graph"]


class _StatsIO:
    """Per-forward exchange of IN statistics between the graph wrapper and its conv-IBN modules."""

    def __init__(self, n_layers: int) -> None:
        self.given: list[tuple[Tensor, Tensor]] = []
        self.computed: list[tuple[Tensor, Tensor] | None] = [None] * n_layers


def _in_stats(x_in: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Per-image IN statistics of ``x_in: [N, k, h, w]`` in two passes, as the torch layers compute them.

    Returns:
        ``(mean [N, k, 1, 1], x_in − mean [N, k, h, w], biased var [N, k, 1, 1])``.
    """
    mean = x_in.mean(dim=(2, 3), keepdim=True)
    centred = x_in - mean
    return mean, centred, (centred * centred).mean(dim=(2, 3), keepdim=True)


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
        x_in = raw if k == ibn.channels else raw[:, :k]  # [N, k, h, w]; all-IN: no Slice node
        mean, centred, var = _in_stats(x_in)
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


class _ExportIBN(nn.Module):
    """Export form of an IBN layer that follows no convolution: exact IN emitting its statistics, or
    the per-channel affine map of given statistics.

    Args:
        ibn: the IBN layer (its parameters are read, not copied); any mode.
        index, io, cached: as :class:`_ExportConvIBN`.
    """

    def __init__(self, ibn: IBN, index: int, io: _StatsIO, cached: bool) -> None:
        super().__init__()
        self.ibn = ibn
        self.index = index
        self.io = io
        self.cached = cached

    def forward(self, x: Tensor) -> Tensor:
        if self.cached:
            mean, var = self.io.given[self.index]  # [k] each
            scale, shift = self.ibn.affine(mean, var)  # [C] each
            return x * scale[None, :, None, None] + shift[None, :, None, None]
        k = self.ibn.in_channels
        mean, _, var = _in_stats(x if k == self.ibn.channels else x[:, :k])
        self.io.computed[self.index] = (mean.flatten(1), var.flatten(1))  # [N, k] each
        scale, shift = self.ibn.affine(mean.flatten(1), var.flatten(1))  # [N, C] each
        return x * scale[:, :, None, None] + shift[:, :, None, None]


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
    """A copy of ``folded`` whose IBN layers (conv-IBN pairs, lone IBNs) are refresh- or cached-form modules.

    Returns:
        the graph module and the IBN layers as ``(module name, in_channels)`` in module order (a conv-IBN
        pair is named without its ``.conv1`` suffix).
    """
    net = copy.deepcopy(folded)
    found: list[tuple[str, FoldedConvIBN | IBN]] = []
    in_pairs: set[int] = set()  # the IBN layers inside a conv-IBN pair
    for name, m in net.named_modules():
        if isinstance(m, FoldedConvIBN):
            in_pairs.add(id(m.ibn))
            found.append((name, m))
        elif isinstance(m, IBN) and id(m) not in in_pairs:
            found.append((name, m))
    io = _StatsIO(len(found))
    layers = []
    for index, (name, module) in enumerate(found):
        parent_name, _, child = name.rpartition(".")
        parent = net.get_submodule(parent_name) if parent_name else net
        if isinstance(module, FoldedConvIBN):
            setattr(parent, child, _ExportConvIBN(module, index, io, cached))
            layers.append((name.removesuffix(".conv1"), module.ibn.in_channels))
        else:
            setattr(parent, child, _ExportIBN(module, index, io, cached))
            layers.append((name, module.in_channels))
    return _Graph(net, len(found), io, cached).eval(), layers
