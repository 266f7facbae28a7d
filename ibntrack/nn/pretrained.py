"""Pretrained backbone weights from local files: torchvision ResNets and IBN-Net ``resnet*_ibn_a``.

``report = load_pretrained(model, "resnet50_ibn_a.pth")`` copies what fits into ``model.backbone`` and
returns a :class:`PretrainedReport` (loaded / adapted / missing / unexpected / shape-mismatched keys,
the architecture the file is for). Only the backbone is loaded; the neck and heads keep their random
initialisation. Nothing is downloaded: the file is read with ``torch.load(..., weights_only=True)``.

Source layouts (detected from the key names; a ``state_dict`` / ``model`` wrapper and a ``module.``
prefix are removed first):

* ``torchvision`` — ``conv1``, ``bn1``, ``layer{1..4}.{i}.conv{1,2,3}`` / ``bn{1,2,3}``,
  ``layer*.0.downsample.{0,1}``, ``fc``: the same names as our :class:`~ibntrack.nn.backbone.ResNet`.
* ``ibn-net`` — IBN-Net's ``resnet{18,34,50,101}_ibn_a``: as torchvision, but ``bn1`` of every block in
  layer1–layer3 is an IBN module with ``bn1.IN.{weight,bias}`` (``InstanceNorm2d(half, affine=True)``,
  ``half = int(planes / 2)``, the first ``half`` channels) and ``bn1.BN.{weight, bias, running_mean,
  running_var, num_batches_tracked}`` (``BatchNorm2d(planes - half)``, the other channels).
* ``ibntrack`` — an ibntrack checkpoint's ``model`` (keys ``backbone.…``): its backbone is copied.

Mapping onto our layers (``IBN`` in ``split`` mode has explicit sizes ``[k, C − k]``, ``k = round(ratio·C)``):

* IBN-Net ``bn1.IN.weight/bias`` → ``bn1.in_weight/in_bias`` and ``bn1.BN.*`` → ``bn1.bn.*`` when
  ``k == half`` (``ibn_ratio = 0.5``; planes are even so both conventions agree). Another ratio, a
  ``mix``-mode layer or a plain BN layer in that place: reported as mismatched, not guessed.
* a torchvision ``bn1`` (plain BN over ``C`` channels) onto our IBN split layer: ``γ, β`` of the first
  ``k`` channels initialise the IN affine, the other ``C − k`` channels (and their running statistics) go
  to the BN part. These keys are listed as *adapted* (an initialisation, not the same function: the IN
  channels now normalise with per-image statistics).
* everything else by identical name and shape. ``fc.*`` (ImageNet classifier) is ignored.

A backbone built with a width multiplier other than 1 has other channel counts than every published
checkpoint: :func:`load_pretrained` refuses it with a ``ValueError`` saying so.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor, nn

__all__ = ["PretrainedError", "PretrainedReport", "load_pretrained", "read_state_dict"]

log = logging.getLogger(__name__)

_BN_KEYS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
_IBN_NET_KEY = re.compile(r"^layer\d\.\d+\.bn1\.(IN|BN)\.")
_BLOCK_KEY = re.compile(r"^layer(\d)\.(\d+)\.")
_IGNORED_PREFIXES = ("fc.",)
_DEPTH_OF_LAYOUT = {
    ((2, 2, 2, 2), False): 18,
    ((3, 4, 6, 3), False): 34,
    ((3, 4, 6, 3), True): 50,
    ((3, 4, 23, 3), True): 101,
    ((3, 8, 36, 3), True): 152,
}


class PretrainedError(ValueError):
    """A pretrained file cannot be read, or does not fit the model (see the message)."""


@dataclass
class PretrainedReport:
    """What :func:`load_pretrained` did. Keys are the model's (``backbone.…``) unless said otherwise.

    Attributes:
        path: the file read.
        layout: ``torchvision``, ``ibn-net``, ``ibntrack`` or ``unknown``.
        source_arch: the architecture the file holds (``resnet50``, ``resnet50_ibn_a``, ...), inferred
            from its keys and shapes, or ``unknown``.
        target_arch: the model's backbone (``resnet50-ibn``, ...).
        loaded: model keys that received a tensor.
        adapted: the subset of ``loaded`` filled by a layout conversion that is an initialisation rather
            than the same function (torchvision BN γ/β → our IN affine).
        missing: model backbone keys that received nothing (they keep their random initialisation).
        unexpected: file keys that were not used (``ignored`` ones excluded).
        ignored: file keys deliberately not used (the ImageNet classifier ``fc.*``).
        mismatched: ``(file key, model key, why)`` for tensors that exist on both sides but do not fit.
    """

    path: str
    layout: str
    source_arch: str
    target_arch: str
    loaded: list[str] = field(default_factory=list)
    adapted: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Every backbone tensor was loaded and every file tensor (but the classifier) was used."""
        return (
            bool(self.loaded)
            and self.arch_matches
            and not (self.missing or self.unexpected or self.mismatched)
        )

    @property
    def arch_matches(self) -> bool:
        """The file's ResNet depth is the model's (IBN or not does not matter here)."""
        src = re.match(r"resnet(\d+)", self.source_arch)
        dst = re.match(r"resnet(\d+)", self.target_arch)
        return bool(src and dst and src.group(1) == dst.group(1))

    def summary(self, limit: int = 4) -> str:
        """A few lines for the training log."""

        def few(items: list[str]) -> str:
            return ", ".join(items[:limit]) + (f", ... ({len(items)} in all)" if len(items) > limit else "")

        lines = [
            f"pretrained {self.path}: {self.layout} layout, {self.source_arch} weights -> "
            f"{self.target_arch} backbone: {len(self.loaded)} tensors loaded "
            f"({len(self.adapted)} adapted), {len(self.missing)} missing, {len(self.unexpected)} unexpected, "
            f"{len(self.mismatched)} shape-mismatched, {len(self.ignored)} ignored (classifier)"
        ]
        if not self.arch_matches:
            lines.append(
                f"  architecture: the file holds {self.source_arch} weights, the model is {self.target_arch}"
            )
        if not self.loaded:
            lines.append("  nothing fits: the file is not a ResNet backbone of this architecture")
        if self.mismatched:
            lines.append("  mismatched: " + few([f"{a} -> {b} ({why})" for a, b, why in self.mismatched]))
        if self.missing:
            lines.append("  missing: " + few(self.missing))
        if self.unexpected:
            lines.append("  unexpected: " + few(self.unexpected))
        if self.adapted:
            lines.append(
                f"  adapted: {len(self.adapted)} IN affine tensors initialised from BN weights "
                "(the file's first-stage norms are plain BN)"
            )
        return "\n".join(lines)


def read_state_dict(path: str | os.PathLike) -> dict[str, Tensor]:
    """The tensors of a weight file (``weights_only=True``), unwrapped and without a ``module.`` prefix.

    Raises:
        PretrainedError: the file is missing, unreadable, or holds no dict of tensors.
    """
    from ibntrack.nn.checkpoint import CheckpointError, load_checkpoint

    try:
        obj: Any = load_checkpoint(path)
    except CheckpointError as exc:
        raise PretrainedError(f"pretrained weights: {exc}") from exc
    for wrapper in ("state_dict", "model"):
        inner = obj.get(wrapper)
        if isinstance(inner, Mapping) and any(isinstance(v, Tensor) for v in inner.values()):
            obj = inner
            break
    state = {str(k): v for k, v in obj.items() if isinstance(v, Tensor)}
    if not state:
        raise PretrainedError(
            f"pretrained weights {path}: the file holds no tensors (keys: {_few(list(obj))})"
        )
    if all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def load_pretrained(model: nn.Module, path: str | os.PathLike) -> PretrainedReport:
    """Copy the backbone weights of a local file into ``model.backbone`` (see the module docstring).

    Args:
        model: a :class:`~ibntrack.nn.model.TrackerNet` (or any module with a ResNet ``backbone``).
        path: a torchvision ResNet state dict, an IBN-Net ``resnet*_ibn_a`` checkpoint, or an ibntrack
            checkpoint.

    Returns:
        The :class:`PretrainedReport`. Loading is partial: whatever fits is copied even when the report
        is not ``complete``; the caller decides whether to go on (``ibntrack train`` stops unless
        ``--allow-partial``).

    Raises:
        PretrainedError: unreadable file; a model without a backbone; a backbone with a width multiplier
            other than 1.
    """
    backbone = getattr(model, "backbone", None)
    if not isinstance(backbone, nn.Module):
        raise PretrainedError("load_pretrained needs a model with a .backbone (ibntrack.build_model)")
    config = getattr(model, "config", None)
    width = float(getattr(config, "width", 1.0))
    if width != 1.0:
        raise PretrainedError(
            f"model.width is {width:g}: published ImageNet ResNet / IBN-Net weights have the channel counts "
            "of width 1 (64-128-256-512 per stage), so a backbone with another width multiplier cannot take "
            "them; set model.width: 1.0 or train without model.pretrained"
        )
    source = read_state_dict(path)
    layout = _layout(source)
    if layout == "ibntrack":
        source = {k[len("backbone.") :]: v for k, v in source.items() if k.startswith("backbone.")}
    report = PretrainedReport(
        path=str(path),
        layout=layout,
        source_arch=_source_arch(source, layout),
        target_arch=str(getattr(config, "arch", "unknown")),
    )
    own = backbone.state_dict()
    used: set[str] = set()
    new_state: dict[str, Tensor] = {}
    # first-stage norms need a layout conversion, except from our own checkpoints (same names)
    modules = dict(backbone.named_modules()) if layout != "ibntrack" else {}
    for name, module in modules.items():
        if not name.endswith(".bn1") or not _BLOCK_KEY.match(name + "."):
            continue
        _map_first_norm(name, module, source, own, new_state, used, report)
    for key, target in own.items():  # everything else by name and shape
        if key in new_state or _handled_by_first_norm(key, modules):
            continue
        if key not in source:
            continue
        used.add(key)
        if source[key].shape != target.shape:
            report.mismatched.append(
                (key, f"backbone.{key}", f"{tuple(source[key].shape)} vs {tuple(target.shape)}")
            )
            continue
        new_state[key] = source[key]
    backbone.load_state_dict({**own, **{k: v.to(own[k].dtype) for k, v in new_state.items()}}, strict=True)
    report.loaded = [f"backbone.{k}" for k in own if k in new_state]
    mism_targets = {b for _, b, _ in report.mismatched}
    report.missing = [
        f"backbone.{k}" for k in own if k not in new_state and f"backbone.{k}" not in mism_targets
    ]
    report.ignored = [k for k in source if k.startswith(_IGNORED_PREFIXES)]
    report.unexpected = [k for k in source if k not in used and not k.startswith(_IGNORED_PREFIXES)]
    return report


# ----------------------------------------------------------------------------------------------- helpers


def _few(items: list, n: int = 5) -> str:
    return ", ".join(map(str, items[:n])) + (", ..." if len(items) > n else "")


def _layout(state: Mapping[str, Tensor]) -> str:
    if any(k.startswith("backbone.") for k in state):
        return "ibntrack"
    if any(_IBN_NET_KEY.match(k) for k in state):
        return "ibn-net"
    if "conv1.weight" in state and any(k.startswith("layer1.0.") for k in state):
        return "torchvision"
    return "unknown"


def _source_arch(state: Mapping[str, Tensor], layout: str) -> str:
    """``resnet50`` / ``resnet50_ibn_a`` / ... from the block counts, or ``unknown``."""
    blocks = [0, 0, 0, 0]
    bottleneck = False
    for key in state:
        m = _BLOCK_KEY.match(key)
        if m and 1 <= int(m.group(1)) <= 4:
            stage = int(m.group(1)) - 1
            blocks[stage] = max(blocks[stage], int(m.group(2)) + 1)
            bottleneck |= ".conv3." in key
    depth = _DEPTH_OF_LAYOUT.get((tuple(blocks), bottleneck))
    if depth is None or "conv1.weight" not in state:
        return "unknown"
    stem = int(state["conv1.weight"].shape[0])
    name = f"resnet{depth}" + ("_ibn_a" if layout == "ibn-net" else "")
    return name if stem == 64 else f"{name} (stem {stem} channels)"


def _handled_by_first_norm(key: str, modules: Mapping[str, nn.Module]) -> bool:
    """Keys of a block's first-stage norm are mapped by :func:`_map_first_norm`."""
    head, _, _ = key.partition(".bn1.")
    return bool(_BLOCK_KEY.match(key)) and ".bn1." in key and f"{head}.bn1" in modules


def _map_first_norm(
    name: str,
    module: nn.Module,
    source: Mapping[str, Tensor],
    own: Mapping[str, Tensor],
    out: dict[str, Tensor],
    used: set[str],
    report: PretrainedReport,
) -> None:
    """Fill one block's ``bn1`` (our BN or IBN) from a plain-BN or an IBN-Net source ``bn1``."""
    from ibntrack.nn.norm import IBN

    plain = {k: f"{name}.{k}" for k in _BN_KEYS if f"{name}.{k}" in source}
    ibn_in = {k: f"{name}.IN.{k}" for k in ("weight", "bias") if f"{name}.IN.{k}" in source}
    ibn_bn = {k: f"{name}.BN.{k}" for k in _BN_KEYS if f"{name}.BN.{k}" in source}
    if not (plain or ibn_in or ibn_bn):
        return
    used.update(plain.values(), ibn_in.values(), ibn_bn.values())
    target = f"backbone.{name}"

    def put(key: str, value: Tensor, src: str, adapted: bool = False) -> None:
        if own[key].shape != value.shape:
            report.mismatched.append(
                (src, f"backbone.{key}", f"{tuple(value.shape)} vs {tuple(own[key].shape)}")
            )
            return
        out[key] = value
        if adapted:
            report.adapted.append(f"backbone.{key}")

    if isinstance(module, IBN) and module.mode == "split":
        k = module.in_channels
        if ibn_in or ibn_bn:  # IBN-Net IBN -> our IBN: IN and BN parts one to one
            half = int(source[ibn_in["weight"]].shape[0]) if "weight" in ibn_in else None
            if half is not None and half != k:
                report.mismatched.append(
                    (
                        ibn_in["weight"],
                        f"{target}.in_weight",
                        f"IN on {half} channels, ours on {k} (ibn_ratio)",
                    )
                )
                return
            for key, src in ibn_in.items():
                put(f"{name}.in_{key}", source[src], src)
            for key, src in ibn_bn.items():
                if module.bn is not None:
                    put(f"{name}.bn.{key}", source[src], src)
            return
        # plain BN over all C channels -> IN affine (first k, adapted) + BN part (the rest)
        c = module.channels
        for key, src in plain.items():
            value = source[src]
            if key != "num_batches_tracked" and value.shape != (c,):
                report.mismatched.append((src, f"{target}", f"{tuple(value.shape)} vs ({c},)"))
                continue
            if key in ("weight", "bias"):
                put(f"{name}.in_{key}", value[:k].clone(), src, adapted=True)
            if module.bn is not None:
                put(f"{name}.bn.{key}", value if key == "num_batches_tracked" else value[k:].clone(), src)
        return
    if isinstance(module, nn.BatchNorm2d):
        if ibn_in or ibn_bn:
            report.mismatched.append(
                (f"{name}.IN.weight", f"{target}", "IBN-Net IBN layer onto a plain BN layer of this model")
            )
            return
        for key, src in plain.items():
            put(f"{name}.{key}", source[src], src)
        return
    # mix-mode IBN (IN and BN on every channel, a gate) has no published counterpart
    report.mismatched.append(
        (
            next(iter({**plain, **ibn_in, **ibn_bn}.values())),
            target,
            f"no mapping onto {type(module).__name__}({getattr(module, 'mode', '')})",
        )
    )


def load_for_training(
    model: nn.Module, path: str | os.PathLike, allow_partial: bool = False, announce: bool = True
) -> PretrainedReport:
    """``load_pretrained`` as ``ibntrack train`` runs it: the report is logged, a misfit stops training.

    Args:
        model: the freshly built network.
        path: ``model.pretrained``.
        allow_partial: ``model.pretrained_allow_partial`` / ``ibntrack train --allow-partial``: go on
            with whatever fitted.
        announce: log the report (the main process of a DDP run).

    Raises:
        PretrainedError: the file cannot be read or used, or the report is not ``complete`` and
            ``allow_partial`` is False (the message holds the report).
    """
    report = load_pretrained(model, path)
    if announce:
        log.info("%s", report.summary())
    if not report.complete and not allow_partial:
        raise PretrainedError(
            report.summary()
            + "\nthe pretrained file does not fit this backbone completely; fix model.arch / "
            "model.pretrained, or pass --allow-partial (model.pretrained_allow_partial=true) to train with "
            "what fitted"
        )
    return report
