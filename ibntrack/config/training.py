"""Training configuration (``ibntrack train``): nested frozen dataclasses from YAML, dotted overrides.

Each subsystem owns its config next to its code (`ModelConfig` in `ibntrack.nn.model`, `LossConfig` in
`ibntrack.losses.total`); this module defines the data and training sections and composes all of them
into `Config`. A YAML file mirrors the tree::

    model: {arch: resnet50_ibn, emb_dim: 128}
    data: {train: [data/MOT17/train], input_size: [608, 1088]}
    train: {epochs: 30, lr: 1.0e-4}

Every key is checked against the dataclass fields (unknown keys and wrong types raise `ValueError`
naming the file and the key); missing keys keep their defaults. Overrides such as ``train.lr=1e-3`` or
``data.train=[a,b]`` are parsed with ``yaml.safe_load`` and checked the same way.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ibntrack.config.loader import build_config, dump_config, read_mapping
from ibntrack.data.transforms import PHOTOMETRIC
from ibntrack.fileio import atomic_write_text
from ibntrack.losses.total import LossConfig
from ibntrack.nn.model import ModelConfig
from ibntrack.sizes import check_input_size

__all__ = ["Config", "DataConfig", "TrainConfig", "load_config", "save_config"]


@dataclass(frozen=True)
class DataConfig:
    """Training and validation data.

    Attributes:
        train: dataset roots (folders of MOTChallenge sequences) or single sequence folders; several
            datasets are mixed with globally unique identities.
        train_weights: per-dataset sampling weights, one per ``train`` entry (empty: every frame once per
            epoch); each epoch draws the share ``w / sum(w)`` of its frames from that entry's sequences
            (:mod:`ibntrack.data.mixing`), e.g. MOT data mixed with detection-only CrowdHuman.
        val: the same for the optional validation set (validation loss only).
        input_size: network input ``(H, W)`` in pixels, multiples of 32; frames are letterboxed to it.
        num_classes: number of object classes (heatmap channels); must equal ``model.num_classes``.
        class_names: one name per class, stored in checkpoints.
        class_map: MOTChallenge class id -> 0-based model class; classes not listed are ignored.
            ``None`` keeps the loader's default (pedestrians).
        min_visibility: ground-truth boxes less visible than this are ignored.
        augment: random photometric and geometric augmentation of training frames.
        photometric: ``basic`` (HSV jitter) or ``strong`` (also brightness, contrast, gamma, colour,
            noise and blur over wide ranges; :func:`ibntrack.data.transforms.photometric`).
        workers: DataLoader worker processes per rank (0 = load in the main process).
        frame_step: use every n-th frame of each sequence.
        max_objs: maximum objects per frame in the targets (extra objects are dropped).
    """

    train: tuple[str, ...] = ()
    train_weights: tuple[float, ...] = ()
    val: tuple[str, ...] = ()
    input_size: tuple[int, int] = (608, 1088)
    num_classes: int = 1
    class_names: tuple[str, ...] = ("pedestrian",)
    class_map: dict[int, int] | None = None
    min_visibility: float = 0.0
    augment: bool = True
    photometric: str = "basic"
    workers: int = 2
    frame_step: int = 1
    max_objs: int = 256

    def __post_init__(self) -> None:
        check_input_size(self.input_size, "data.input_size")
        if self.num_classes < 1:
            raise ValueError(f"data.num_classes must be >= 1, got {self.num_classes}")
        if len(self.class_names) != self.num_classes:
            raise ValueError(
                f"data.class_names has {len(self.class_names)} names but data.num_classes is "
                f"{self.num_classes}; give one name per class"
            )
        if not 0.0 <= self.min_visibility <= 1.0:
            raise ValueError(f"data.min_visibility must be in [0, 1], got {self.min_visibility}")
        if self.photometric not in PHOTOMETRIC:
            raise ValueError(f"data.photometric must be one of {PHOTOMETRIC}, got {self.photometric!r}")
        if self.workers < 0:
            raise ValueError(f"data.workers must be >= 0, got {self.workers}")
        if self.frame_step < 1:
            raise ValueError(f"data.frame_step must be >= 1, got {self.frame_step}")
        if self.max_objs < 1:
            raise ValueError(f"data.max_objs must be >= 1, got {self.max_objs}")
        if self.train_weights:
            w = self.train_weights
            if len(w) != len(self.train):
                raise ValueError(
                    f"data.train_weights has {len(w)} weights for {len(self.train)} data.train entries; "
                    "give one weight per entry (or none)"
                )
            if any(not math.isfinite(v) or v < 0 for v in w) or sum(w) <= 0:
                raise ValueError(f"data.train_weights must be finite, >= 0 and not all 0, got {list(w)}")


@dataclass(frozen=True)
class TrainConfig:
    """The optimisation loop (`ibntrack.training.train.fit`).

    Attributes:
        epochs: passes over the training data.
        batch_size: global batch size (split evenly over the ranks under torchrun).
        lr: base learning rate.
        optimizer: ``adam`` (FairMOT) or ``adamw``.
        weight_decay: L2 (adam) or decoupled (adamw) weight decay.
        schedule: ``step`` (multiply by ``gamma`` at each epoch in ``milestones``; no milestones = constant)
            or ``cosine`` (to ``min_lr_ratio * lr`` at the last step).
        milestones: epochs at which the step schedule decays.
        gamma: step-schedule decay factor.
        min_lr_ratio: final learning rate of the cosine schedule, as a fraction of ``lr``.
        warmup_iters: linear warm-up from 0 over this many optimizer steps.
        grad_clip: maximum global gradient norm (0 = no clipping).
        precision: number format of the forward and backward passes: ``fp32``, ``bf16`` (CPU or CUDA),
            ``fp16`` (CUDA, with gradient scaling) or ``auto`` — bf16 on a CPU with native bfloat16
            (avx512_bf16 / AMX), fp16 on CUDA, else fp32. Losses and normalisation statistics stay fp32.
            A bf16 request on a CPU without native bf16 warns and trains in fp32.
        channels_last: NHWC memory layout for the network and its inputs (faster convolutions under
            bf16 on CPU and AMP on CUDA; neutral in fp32).
        amp: allow mixed precision at all; ``false`` forces fp32 whatever ``precision`` says (older
            configs).
        freeze_stages: backbone stages kept frozen, counting the stem as the first: 0 = none,
            1 = stem, 2 = stem + layer1, ..., 5 = the whole backbone.
        seed: seed of every random generator (model init, shuffling, augmentation).
        out_dir: where checkpoints (``last.pt``, ``best.pt``), ``config.yaml``, ``train_log.jsonl`` and
            ``loss.png`` are written.
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda`` or ``cuda:N``; under torchrun each
            rank uses ``cuda:LOCAL_RANK``.
        val_every: validate every n epochs (0 = never; needs ``data.val``).
        log_every: write a step record to ``train_log.jsonl`` every n steps.
        save_every: also save ``last.pt`` every n steps (0 = at the end of each epoch only).
        train_scene: keywords describing the training scenes (stored in checkpoints); empty = the union
            of the training sequences' ``scene`` keywords.
        resume: continue an interrupted run exactly from this checkpoint.
        finetune: start from this checkpoint's weights (fresh optimizer; the identity classifier is
            re-initialised when the identity count differs; scene keywords are merged).
        max_steps: stop after this many optimizer steps in total (the schedule still spans ``epochs``).
    """

    epochs: int = 30
    batch_size: int = 12
    lr: float = 1e-4
    optimizer: Literal["adam", "adamw"] = "adam"
    weight_decay: float = 0.0
    schedule: Literal["step", "cosine"] = "step"
    milestones: tuple[int, ...] = (20,)
    gamma: float = 0.1
    min_lr_ratio: float = 0.0
    warmup_iters: int = 0
    grad_clip: float = 0.0
    precision: Literal["fp32", "bf16", "fp16", "auto"] = "auto"
    channels_last: bool = True
    amp: bool = True
    freeze_stages: int = 0
    seed: int = 0
    out_dir: str = "runs/train"
    device: str = "auto"
    val_every: int = 1
    log_every: int = 10
    save_every: int = 0
    train_scene: tuple[str, ...] = ()
    resume: str | None = None
    finetune: str | None = None
    max_steps: int | None = None

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # also for configs built in Python, not only from YAML
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"train.{f.name} must be a finite number, got {value}")
        positive = {"epochs": self.epochs, "batch_size": self.batch_size, "log_every": self.log_every}
        for name, value in positive.items():
            if value < 1:
                raise ValueError(f"train.{name} must be >= 1, got {value}")
        if not self.lr > 0:
            raise ValueError(f"train.lr must be > 0, got {self.lr}")
        nonneg = {
            "weight_decay": self.weight_decay,
            "warmup_iters": self.warmup_iters,
            "grad_clip": self.grad_clip,
            "val_every": self.val_every,
            "save_every": self.save_every,
            "min_lr_ratio": self.min_lr_ratio,
        }
        for name, value in nonneg.items():
            if value < 0:
                raise ValueError(f"train.{name} must be >= 0, got {value}")
        if not 0 <= self.freeze_stages <= 5:
            raise ValueError(f"train.freeze_stages must be in 0..5, got {self.freeze_stages}")
        if list(self.milestones) != sorted(self.milestones) or any(m < 1 for m in self.milestones):
            raise ValueError(f"train.milestones must be increasing epochs >= 1, got {self.milestones}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"train.max_steps must be >= 1 or null, got {self.max_steps}")
        if self.resume and self.finetune:
            raise ValueError("train.resume and train.finetune are exclusive; give one of them")
        if self.device != "auto" and self.device != "cpu" and not self.device.startswith("cuda"):
            raise ValueError(f"train.device must be auto, cpu, cuda or cuda:N, got {self.device!r}")


@dataclass(frozen=True)
class Config:
    """Everything `ibntrack train` needs: model, loss, data and loop."""

    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        model_classes = getattr(self.model, "num_classes", self.data.num_classes)
        if model_classes != self.data.num_classes:
            raise ValueError(
                f"model.num_classes ({model_classes}) and data.num_classes ({self.data.num_classes}) "
                "differ; set both to the number of object classes"
            )


def load_config(path: str | os.PathLike | None = None, overrides: Sequence[str] = ()) -> Config:
    """Read a YAML config and apply dotted overrides.

    Args:
        path: a YAML file mirroring `Config` (sections ``model``, ``loss``, ``data``, ``train``);
            ``None`` starts from the defaults.
        overrides: ``"section.key=value"`` strings; the value is parsed with ``yaml.safe_load``
            (``train.lr=1e-3``, ``data.input_size=[320,576]``, ``train.resume=null``).

    Returns:
        The validated, frozen `Config`.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: malformed YAML, an unknown key (the message names the file or override, the key and
            the allowed keys), a value of the wrong type, or an invalid combination of values.
    """
    raw: dict[str, Any] = {}
    source = "<defaults>"
    if path is not None:
        source = str(path)
        raw = read_mapping(Path(path))
    return build_config(Config, raw, source, overrides)


def save_config(cfg: Config, path: str | os.PathLike) -> Path:
    """Write ``cfg`` as YAML (atomically: temporary file in the same folder, then rename).

    ``load_config(path)`` gives back an equal `Config`.
    """
    return atomic_write_text(path, dump_config(cfg))
