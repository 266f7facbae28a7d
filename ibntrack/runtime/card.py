"""ModelCard: the typed description of a model, read from a checkpoint or from ONNX metadata.

Everything the inference side needs to know about a network besides its weights: the architecture
(:class:`~ibntrack.nn.model.ModelConfig`), the input size it was trained at, its class names, the
training scene (for relevance → sparsity), the identity count and the tracker thresholds calibrated for
it. A checkpoint and an ONNX export carry the same card (:meth:`ModelCard.to_metadata` is what the
export writes), so both backends are configured alike.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from ibntrack.nn.model import ModelConfig
from ibntrack.sizes import check_input_size

__all__ = ["ModelCard"]


def _default_class_names(num_classes: int) -> tuple[str, ...]:
    return ("object",) if num_classes == 1 else tuple(str(c) for c in range(num_classes))


@dataclasses.dataclass(frozen=True)
class ModelCard:
    """What a model is, apart from its weights.

    Attributes:
        config: the network's :class:`ModelConfig`.
        input_size: network input ``(H, W)`` (multiples of 32) it was trained at, None when unknown.
        class_names: one per heatmap channel.
        train_scene: keywords of the training scenes (empty when unknown).
        num_ids: identities of the ReID classifier in training, None when unknown.
        tracker: calibrated :class:`~ibntrack.tracking.TrackerConfig` fields (empty: the defaults).
        source: file name the card was read from (``""`` when built in memory).
    """

    config: ModelConfig
    input_size: tuple[int, int] | None = None
    class_names: tuple[str, ...] = ()
    train_scene: tuple[str, ...] = ()
    num_ids: int | None = None
    tracker: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    source: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.config, ModelConfig):
            raise ValueError(f"config must be a ModelConfig, got {type(self.config).__name__}")
        if self.input_size is not None:
            object.__setattr__(self, "input_size", check_input_size(self.input_size, "input_size"))
        names = tuple(str(n) for n in self.class_names) or _default_class_names(self.config.num_classes)
        object.__setattr__(self, "class_names", names)
        object.__setattr__(self, "train_scene", tuple(str(w) for w in self.train_scene))
        object.__setattr__(self, "tracker", dict(self.tracker))

    @property
    def arch(self) -> str:
        return self.config.arch

    @property
    def num_classes(self) -> int:
        return self.config.num_classes

    @property
    def emb_dim(self) -> int:
        return self.config.emb_dim

    def require_input_size(self) -> tuple[int, int]:
        """:attr:`input_size`, or ``ValueError`` naming the source when the card has none."""
        if self.input_size is None:
            where = self.source or "the model"
            raise ValueError(f"{where} stores no input_size; give the network input size explicitly")
        return self.input_size

    @classmethod
    def from_checkpoint(cls, ckpt: Mapping[str, Any], source: str = "") -> ModelCard:
        """The card of a checkpoint dict (as :func:`ibntrack.nn.checkpoint.load_checkpoint` returns).

        ``input_size`` is the checkpoint's own, else its training config's ``data.input_size``.

        Raises:
            ValueError: no or an invalid ``model_config``.
        """
        if "model_config" not in ckpt:
            raise ValueError(f"{source or 'checkpoint'} has no 'model_config': not an ibntrack model")
        config = ModelConfig.from_dict(ckpt["model_config"])
        input_size = ckpt.get("input_size")
        if input_size is None:
            data = (ckpt.get("config") or {}).get("data") or {}
            input_size = data.get("input_size")
        return cls(
            config=config,
            input_size=tuple(input_size) if input_size is not None else None,
            class_names=tuple(ckpt.get("class_names") or ()),
            train_scene=tuple(ckpt.get("train_scene") or ()),
            num_ids=ckpt.get("num_ids"),
            tracker=dict(ckpt.get("tracker") or {}),
            source=source,
        )

    @classmethod
    def from_metadata(cls, meta: Mapping[str, Any], source: str = "") -> ModelCard:
        """The card stored in an export's metadata (:meth:`to_metadata`)."""
        return cls(
            config=ModelConfig.from_dict(meta["model_config"]),
            input_size=tuple(meta["input_size"]) if meta.get("input_size") is not None else None,
            class_names=tuple(meta.get("class_names") or ()),
            train_scene=tuple(meta.get("train_scene") or ()),
            num_ids=meta.get("num_ids"),
            tracker=dict(meta.get("tracker") or {}),
            source=source,
        )

    def to_metadata(self) -> dict[str, Any]:
        """JSON-serialisable entries of the card, as an export stores them."""
        return {
            "arch": self.arch,
            "num_classes": self.num_classes,
            "emb_dim": self.emb_dim,
            "model_config": self.config.to_dict(),
            "input_size": list(self.input_size) if self.input_size is not None else None,
            "class_names": list(self.class_names),
            "train_scene": list(self.train_scene),
            "num_ids": self.num_ids,
            "tracker": dict(self.tracker),
            "source": self.source,
        }
