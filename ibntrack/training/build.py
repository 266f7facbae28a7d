"""The parts a training run is built from: data, sampler, network + loss, optimizer and schedule.

Each function takes the resolved config (and the process layout) and returns one part; the
:class:`~ibntrack.training.train.Trainer` calls them in order, so every check on the data runs before the
network is built and everything runs before the first step.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DistributedSampler

from ibntrack.config import Config, TrainConfig
from ibntrack.training.distributed import DistEnv
from ibntrack.training.train_checkpoint import load_finetune

__all__ = [
    "EpochSampler",
    "TrainModule",
    "build_module",
    "build_optimizer",
    "build_scheduler",
    "check_data",
    "freeze_stages",
    "load_data",
    "lr_factor",
    "make_dataset",
    "make_sampler",
    "mix_seed",
    "scene_words",
    "seed_everything",
    "set_train_mode",
    "worker_init",
]

log = logging.getLogger(__name__)

_STEM = ("conv1", "bn1")
_STAGES = ("layer1", "layer2", "layer3", "layer4")


class TrainModule(nn.Module):
    """The network and its loss as one module, so one optimizer and one DDP wrapper see both.

    Args:
        model: the tracker network (``images [N,3,H,W] -> {hm, wh, reg, id}``).
        loss: `MotLoss` (owns ``s_det``, ``s_id`` and the ReID classifier).
    """

    def __init__(self, model: nn.Module, loss: nn.Module) -> None:
        super().__init__()
        self.model: Any = model  # a TrackerNet (or any network with ``.config``)
        self.loss: Any = loss

    def forward(self, images: Tensor, targets: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        """``images [N,3,H,W]`` float32, batched targets of `build_targets` -> ``(loss, parts)``.

        The network may run under autocast; the loss is always computed in float32.
        """
        outputs = self.model(images)
        with torch.autocast(device_type=images.device.type, enabled=False):
            outputs = {k: v.float() for k, v in outputs.items()}
            return self.loss(outputs, targets)


# ------------------------------------------------------------------------------------------------ seeds


def seed_everything(seed: int) -> None:
    """Seeds Python's, NumPy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def worker_init(worker_id: int) -> None:
    """Seed NumPy's and Python's global generators in each DataLoader worker from its torch seed."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def mix_seed(*values: int) -> int:
    """One 32-bit seed from several integers (seed, epoch, rank)."""
    return int(np.random.SeedSequence([v % 2**32 for v in values]).generate_state(1)[0])


# ------------------------------------------------------------------------------------------------- data


def load_data(paths: Sequence[str], cfg: Config, what: str) -> list[Any]:
    """Every sequence under ``paths`` (``data.train`` or ``data.val``), with the config's class map.

    Raises:
        ValueError: an empty list, a missing path or a path without sequences (naming ``data.<what>``).
    """
    from ibntrack.data import load_sequences

    if not paths:
        raise ValueError(f"data.{what} is empty: give at least one dataset root or sequence folder")
    sequences = []
    for p in paths:
        if not Path(p).exists():
            raise ValueError(f"data.{what}: {p} does not exist")
        try:
            found = load_sequences(p, **_loader_kwargs(cfg))
        except FileNotFoundError as exc:
            raise ValueError(f"data.{what}: {exc}") from exc
        if not found:
            raise ValueError(
                f"data.{what}: no MOTChallenge sequences under {p} (expected <seq>/img1/ and <seq>/gt/gt.txt)"
            )
        sequences.extend(found)
    return sequences


def _loader_kwargs(cfg: Config) -> dict[str, Any]:
    d = cfg.data
    kwargs: dict[str, Any] = {"min_visibility": d.min_visibility, "class_names": tuple(d.class_names)}
    if d.class_map is not None:
        kwargs["class_map"] = dict(d.class_map)
    return kwargs


def check_data(cfg: Config, env: DistEnv, num_ids: int, frames: int) -> None:
    """Refuses data the run cannot train on: no identities, a batch that does not divide over the
    ranks or is larger than the data (``frames``).
    """
    tc = cfg.train
    if num_ids < 1:
        raise ValueError(
            f"the training data ({', '.join(cfg.data.train)}) has no identities: every track id is "
            "unknown, so the ReID branch cannot be trained; check gt.txt and data.class_map"
        )
    if tc.batch_size % env.world_size:
        raise ValueError(
            f"train.batch_size ({tc.batch_size}) must be divisible by the number of processes "
            f"({env.world_size}); it is the global batch, split evenly over the ranks"
        )
    if frames < tc.batch_size:
        raise ValueError(
            f"train.batch_size ({tc.batch_size}) is larger than the training set ({frames} "
            "frames); lower train.batch_size or add data"
        )


def make_dataset(sequences: list[Any], cfg: Config, augment: bool) -> Any:
    """The :class:`~ibntrack.data.MOTDataset` of ``sequences`` at the configured input size."""
    from ibntrack.data import MOTDataset
    from ibntrack.data.transforms import AugmentConfig

    d = cfg.data
    return MOTDataset(
        sequences,
        input_size=(int(d.input_size[0]), int(d.input_size[1])),
        num_classes=d.num_classes,
        augment=augment,
        max_objs=d.max_objs,
        seed=cfg.train.seed,
        frame_step=d.frame_step,
        augment_config=AugmentConfig(photometric=d.photometric),
    )


class EpochSampler(Protocol):
    """A sampler of one rank's share of each epoch (``DistributedSampler``, ``WeightedMixSampler``)."""

    def __iter__(self) -> Iterator[int]: ...

    def __len__(self) -> int: ...

    def set_epoch(self, epoch: int) -> None: ...


def make_sampler(dataset: Any, sequences: list[Any], cfg: Config, env: DistEnv) -> EpochSampler:
    """This rank's share of each epoch: shuffled frames, or per-dataset shares (``data.train_weights``)."""
    tc = cfg.train
    if cfg.data.train_weights:  # per-dataset shares of every epoch (ibntrack.data.mixing)
        from ibntrack.data.mixing import WeightedMixSampler, dataset_groups, sample_groups

        groups = sample_groups(
            dataset.samples, dataset_groups(sequences, cfg.data.train), len(cfg.data.train)
        )
        return WeightedMixSampler(
            groups, cfg.data.train_weights, num_replicas=env.world_size, rank=env.rank, seed=tc.seed
        )
    return DistributedSampler(dataset, num_replicas=env.world_size, rank=env.rank, shuffle=True, seed=tc.seed)


def scene_words(*groups: Iterable[str]) -> list[str]:
    """Union of keyword groups in canonical form (`ibntrack.scene`), [] when there are none."""
    from ibntrack.scene import parse_scene

    words = [w for g in groups for w in g if str(w).strip()]
    try:
        return parse_scene(words).to_list() if words else []
    except ValueError:  # nothing left after normalisation
        return []


# -------------------------------------------------------------------------------------- network + loss


def build_module(
    cfg: Config, env: DistEnv, num_ids: int, memory_format: torch.memory_format
) -> tuple[TrainModule, list[str]]:
    """Network and loss on the run's device: pretrained backbone or fine-tuning weights loaded.

    Returns:
        ``(module, finetune_scene)``: the :class:`TrainModule` (SyncBatchNorm under multi-GPU DDP) and
        the training scene keywords of the ``train.finetune`` checkpoint ([] without one).
    """
    from ibntrack.losses.total import MotLoss
    from ibntrack.nn.model import build_model_from_config

    tc = cfg.train
    model = build_model_from_config(cfg.model)
    if cfg.model.pretrained and (tc.resume or tc.finetune):
        log.info("model.pretrained ignored: the weights come from train.resume / train.finetune")
    elif cfg.model.pretrained:  # a local ImageNet backbone file; the report is logged
        from ibntrack.nn.pretrained import load_for_training

        load_for_training(
            model, cfg.model.pretrained, cfg.model.pretrained_allow_partial, announce=env.is_main
        )
    loss = MotLoss(cfg.loss, emb_dim=int(model.config.emb_dim), num_ids=num_ids)
    if not cfg.loss.uncertainty:  # fixed task weights: s_det/s_id get no gradient (DDP needs to know)
        for p in (loss.s_det, loss.s_id):
            p.requires_grad_(False)
    finetune_scene = load_finetune(model, loss, tc.finetune, num_ids) if tc.finetune else []
    module = TrainModule(model, loss).to(env.device)
    module = module.to(memory_format=memory_format)  # type: ignore[call-overload]  # not in torch's stubs
    if env.device.type == "cuda" and env.world_size > 1:  # DDP on CPU refuses SyncBatchNorm
        module = nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return module, finetune_scene


def freeze_stages(module: TrainModule, stages: int) -> list[nn.Module]:
    """Freeze the stem and the first ``stages - 1`` backbone stages; returns the frozen modules."""
    if not stages:
        return []
    backbone = getattr(module.model, "backbone", None)
    if backbone is None:
        raise ValueError("train.freeze_stages needs a model with a .backbone (ResNet trunk)")
    names = [_STEM, *((s,) for s in _STAGES)][:stages]
    frozen = [getattr(backbone, n) for group in names for n in group]
    for m in frozen:
        for p in m.parameters():
            p.requires_grad_(False)
    return frozen


def set_train_mode(module: nn.Module, frozen: Sequence[nn.Module]) -> None:
    """Training mode, except the BN layers of frozen stages, which keep their statistics."""
    module.train()
    for m in frozen:
        for sub in m.modules():
            if isinstance(sub, nn.modules.batchnorm._BatchNorm):
                sub.eval()


# ------------------------------------------------------------------------------- optimizer + schedule


def build_optimizer(module: nn.Module, tc: TrainConfig) -> tuple[torch.optim.Optimizer, list[nn.Parameter]]:
    """Adam or AdamW over the trainable parameters; returns ``(optimizer, params)``."""
    params = [p for p in module.parameters() if p.requires_grad]
    opt_cls = torch.optim.Adam if tc.optimizer == "adam" else torch.optim.AdamW
    return opt_cls(params, lr=tc.lr, weight_decay=tc.weight_decay), params


def build_scheduler(
    optimizer: torch.optim.Optimizer, tc: TrainConfig, steps_per_epoch: int, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """The learning-rate schedule of ``tc`` as a per-step :class:`LambdaLR` (see :func:`lr_factor`)."""

    def factor(step: int) -> float:
        return lr_factor(
            step,
            schedule=tc.schedule,
            steps_per_epoch=steps_per_epoch,
            total_steps=total_steps,
            milestones=tc.milestones,
            gamma=tc.gamma,
            min_ratio=tc.min_lr_ratio,
            warmup=tc.warmup_iters,
        )

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def lr_factor(
    step: int,
    *,
    schedule: str,
    steps_per_epoch: int,
    total_steps: int,
    milestones: Sequence[int],
    gamma: float,
    min_ratio: float,
    warmup: int,
) -> float:
    """Learning-rate multiplier at optimizer step ``step`` (0-based)."""
    if schedule == "step":
        epoch = step // steps_per_epoch
        factor = gamma ** sum(epoch >= m for m in milestones)
    else:  # cosine over the whole run
        t = min(step, total_steps) / max(total_steps, 1)
        factor = min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * t))
    if warmup and step < warmup:
        factor *= (step + 1) / warmup
    return factor
