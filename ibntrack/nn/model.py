"""The one-shot tracking network: ResNet(-IBN) backbone → upsampling neck → FairMOT heads.

``build_model("resnet34-ibn")`` or ``build_model_from_config(ModelConfig(...))`` returns a
:class:`TrackerNet`; ``model(images)`` gives the dict of stride-4 maps described in ``docs/DESIGN.md``
(``hm``, ``wh``, ``reg``, ``id``), the same in train and eval mode. Weights are random; pretrained backbones
come from local files through :func:`ibntrack.nn.pretrained.load_pretrained` (``model.pretrained``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn

from ibntrack.nn.backbone import ResNet, build_resnet
from ibntrack.nn.heads import Heads, fairmot_spec
from ibntrack.nn.neck import FPNNeck
from ibntrack.nn.norm import IBN_MODES
from ibntrack.nn.schedule import RefreshSchedule
from ibntrack.nn.sparse import bind_schedule
from ibntrack.sizes import INPUT_MULTIPLE, check_multiple

__all__ = [
    "ARCHS",
    "INPUT_MULTIPLE",
    "ModelConfig",
    "OUTPUT_STRIDE",
    "TrackerNet",
    "build_model",
    "build_model_from_config",
]

ARCHS = (
    "resnet18",
    "resnet18-ibn",
    "resnet18-ibnb",
    "resnet34",
    "resnet34-ibn",
    "resnet34-ibnb",
    "resnet50",
    "resnet50-ibn",
    "resnet50-ibnb",
    "resnet101",
    "resnet101-ibn",
    "resnet101-ibnb",
)
_PLACEMENT_OF_SUFFIX = {"": None, "ibn": "a", "ibnb": "b"}  # arch suffix -> IN placement (build_resnet)
OUTPUT_STRIDE = 4
SMALL_DEPTHS = (18, 34)  # BasicBlock ResNets: narrower neck and heads by default
NECK_CHANNELS = {"small": 64, "large": 128}
HEAD_CONV = {"small": 128, "large": 256}
_INIT_ONLY = ("pretrained", "pretrained_allow_partial")  # how training starts; not in checkpoints


def _parse_arch(arch: str) -> tuple[int, str | None]:
    """The depth and IN placement of ``arch``: ``"resnet50-ibn"`` -> ``(50, "a")``, ``"resnet50-ibnb"`` ->
    ``(50, "b")``, ``"resnet50"`` -> ``(50, None)``.

    The placement is :func:`~ibntrack.nn.backbone.build_resnet`'s (None: plain BN).
    """
    if arch not in ARCHS:
        raise ValueError(f"arch must be one of {', '.join(ARCHS)}; got {arch!r}")
    name, _, suffix = arch.partition("-")
    return int(name.removeprefix("resnet")), _PLACEMENT_OF_SUFFIX[suffix]


def _check_positive_int(name: str, value: object, optional: bool = False) -> None:
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive int{' or None' if optional else ''}, got {value!r}")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Network configuration (plain values; stored in checkpoints as :meth:`to_dict`).

    Attributes:
        arch: one of :data:`ARCHS`. ``resnetNN-ibn`` is IBN-a (the patent's network, shaped by the
            ``ibn_*`` fields); ``resnetNN-ibnb`` is IBN-b (all-IN in the stem and after the residual
            addition of the last block of layer1 and layer2, a fixed placement that ignores the ``ibn_*``
            fields); a plain ``resnetNN`` uses BN everywhere and ignores the ``ibn_*`` fields.
        num_classes: heatmap channels.
        emb_dim: ReID embedding size.
        ibn_ratio: IN fraction of the IBN-a split, in ``[0, 1]`` (``-ibn`` archs).
        ibn_mode: ``"split"`` (IBN-a) or ``"mix"`` (gated blend of IN and BN on every channel; ``-ibn``).
        ibn_stages: per stage layer1–layer4, whether its blocks' first-stage norm is IBN (``-ibn``).
        neck_channels: neck width; None = 64 for ResNet-18/34, 128 for ResNet-50/101.
        head_conv: hidden channels of each head; None = 128 for ResNet-18/34, 256 for ResNet-50/101.
        width: backbone channel multiplier (1.0 = standard ResNet; 0.5 = a quarter of the parameters
            and compute, the size of the model shipped for CPUs).
        pretrained: training only: a local torchvision ResNet or IBN-Net ``resnet*_ibn_a`` weight file
            loaded into the backbone before training (:func:`ibntrack.nn.pretrained.load_pretrained`).
        pretrained_allow_partial: training only: go on when the file does not fit the backbone
            completely (another architecture, missing or mismatched tensors) instead of stopping.

    The two ``pretrained`` fields say how training starts, not what the network is: :meth:`to_dict`
    (what checkpoints store) leaves them out.
    """

    arch: str = "resnet18-ibn"
    num_classes: int = 1
    emb_dim: int = 128
    ibn_ratio: float = 0.5
    ibn_mode: str = "split"
    ibn_stages: tuple[bool, ...] = (True, True, True, False)
    neck_channels: int | None = None
    head_conv: int | None = None
    width: float = 1.0
    pretrained: str | None = None
    pretrained_allow_partial: bool = False

    def __post_init__(self) -> None:
        _parse_arch(self.arch)
        _check_positive_int("num_classes", self.num_classes)
        _check_positive_int("emb_dim", self.emb_dim)
        if isinstance(self.ibn_ratio, bool) or not isinstance(self.ibn_ratio, int | float):
            raise ValueError(f"ibn_ratio must be a number in [0, 1], got {self.ibn_ratio!r}")
        if not 0.0 <= self.ibn_ratio <= 1.0:
            raise ValueError(f"ibn_ratio must be in [0, 1], got {self.ibn_ratio!r}")
        if self.ibn_mode not in IBN_MODES:
            raise ValueError(f"ibn_mode must be one of {IBN_MODES}, got {self.ibn_mode!r}")
        stages = tuple(self.ibn_stages)
        if len(stages) != 4 or not all(isinstance(flag, bool) for flag in stages):
            raise ValueError(f"ibn_stages must be 4 bools (layer1-layer4), got {self.ibn_stages!r}")
        object.__setattr__(self, "ibn_stages", stages)
        _check_positive_int("neck_channels", self.neck_channels, optional=True)
        _check_positive_int("head_conv", self.head_conv, optional=True)
        if isinstance(self.width, bool) or not isinstance(self.width, int | float) or not 0 < self.width <= 4:
            raise ValueError(f"width must be a number in (0, 4], got {self.width!r}")
        if self.pretrained is not None and (not isinstance(self.pretrained, str) or not self.pretrained):
            raise ValueError(f"pretrained must be a file path or None, got {self.pretrained!r}")
        if not isinstance(self.pretrained_allow_partial, bool):
            raise ValueError(
                f"pretrained_allow_partial must be a bool, got {self.pretrained_allow_partial!r}"
            )

    @property
    def depth(self) -> int:
        """ResNet depth (18, 34, 50 or 101)."""
        return _parse_arch(self.arch)[0]

    @property
    def uses_ibn(self) -> bool:
        """Whether the arch has instance normalization (an ``-ibn`` or ``-ibnb`` variant)."""
        return _parse_arch(self.arch)[1] is not None

    @property
    def ibn_placement(self) -> str | None:
        """``"a"`` (``-ibn``, IBN-a), ``"b"`` (``-ibnb``, IBN-b) or None (plain BN)."""
        return _parse_arch(self.arch)[1]

    def resolved_neck_channels(self) -> int:
        """``neck_channels`` with the depth-dependent default applied."""
        if self.neck_channels is not None:
            return self.neck_channels
        return NECK_CHANNELS["small" if self.depth in SMALL_DEPTHS else "large"]

    def resolved_head_conv(self) -> int:
        """``head_conv`` with the depth-dependent default applied."""
        if self.head_conv is not None:
            return self.head_conv
        return HEAD_CONV["small" if self.depth in SMALL_DEPTHS else "large"]

    def to_dict(self) -> dict[str, Any]:
        """Plain-value dict (``ibn_stages`` as a list), the inverse of :meth:`from_dict`."""
        out = dataclasses.asdict(self)
        out["ibn_stages"] = list(self.ibn_stages)
        for key in _INIT_ONLY:
            out.pop(key)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelConfig:
        """Build from a dict such as :meth:`to_dict` output; missing keys take their defaults.

        Raises:
            ValueError: unknown keys or invalid values.
        """
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown ModelConfig keys {unknown}; allowed: {sorted(known)}")
        values = dict(data)
        if "ibn_stages" in values and isinstance(values["ibn_stages"], list | tuple):
            values["ibn_stages"] = tuple(values["ibn_stages"])
        return cls(**values)


class TrackerNet(nn.Module):
    """Backbone → neck → heads; returns the stride-4 prediction maps.

    Args:
        backbone: a :class:`ResNet` (multi-scale features, strides 4–32).
        neck: an :class:`FPNNeck` fusing them to stride 4.
        heads: the :class:`Heads`.
        config: the :class:`ModelConfig` these parts were built from.

    Attributes:
        config: the :class:`ModelConfig`.
        stride: output stride, 4.
    """

    def __init__(self, backbone: ResNet, neck: FPNNeck, heads: Heads, config: ModelConfig) -> None:
        super().__init__()
        self.backbone = backbone
        self.neck = neck
        self.heads = heads
        self.config = config
        self.stride = OUTPUT_STRIDE
        bind_schedule(self, RefreshSchedule())  # one network, one stream: its IBN layers share a schedule

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        """Predict the maps of a batch.

        Args:
            images: ``Tensor[N, 3, H, W]`` float32, ImageNet-normalised RGB, H and W multiples of 32.

        Returns:
            with ``h = H/4``, ``w = W/4``: ``hm [N, num_classes, h, w]`` heatmap logits, ``wh [N, 4, h, w]``
            non-negative (left, top, right, bottom) distances in stride-4 cells, ``reg [N, 2, h, w]``
            sub-cell centre offsets, ``id [N, emb_dim, h, w]`` raw embeddings.

        Raises:
            ValueError: ``images`` is not rank 4, has not 3 channels, or H/W is not a multiple of 32.
        """
        if images.dim() != 4:
            raise ValueError(f"images must be a rank-4 Tensor[N, 3, H, W], got shape {tuple(images.shape)}")
        if images.shape[1] != 3:
            raise ValueError(f"images must have 3 (RGB) channels, got {images.shape[1]}")
        height, width = images.shape[-2:]
        check_multiple(int(height), int(width), "images")
        return self.heads(self.neck(self.backbone(images)))


def build_model_from_config(cfg: ModelConfig) -> TrackerNet:
    """A randomly initialised :class:`TrackerNet` for ``cfg``."""
    depth, placement = _parse_arch(cfg.arch)
    backbone = build_resnet(
        depth,
        ibn=placement is not None,
        ibn_ratio=cfg.ibn_ratio,
        ibn_mode=cfg.ibn_mode,
        ibn_stages=cfg.ibn_stages,
        width=cfg.width,
        placement=placement or "a",
    )
    neck = FPNNeck(backbone.out_channels, cfg.resolved_neck_channels())
    heads = Heads(neck.out_channels, fairmot_spec(cfg.num_classes, cfg.emb_dim), cfg.resolved_head_conv())
    return TrackerNet(backbone, neck, heads, cfg)


def build_model(arch: str, num_classes: int = 1, emb_dim: int = 128, **options: Any) -> TrackerNet:
    """Build a :class:`TrackerNet`.

    Args:
        arch: one of :data:`ARCHS` (``resnet18``, ``resnet18-ibn``, ``resnet18-ibnb``, …,
            ``resnet101-ibnb``).
        num_classes: heatmap channels.
        emb_dim: ReID embedding size.
        **options: other :class:`ModelConfig` fields (``ibn_ratio``, ``ibn_mode``, ``ibn_stages``,
            ``neck_channels``, ``head_conv``, ``width``).

    Raises:
        ValueError: unknown arch or option, or an invalid value.
    """
    return build_model_from_config(
        ModelConfig.from_dict({"arch": arch, "num_classes": num_classes, "emb_dim": emb_dim, **options})
    )
