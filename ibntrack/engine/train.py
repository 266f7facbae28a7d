"""Training loop: `fit(cfg)` on one CPU, one GPU, or many GPUs/machines under torchrun (DDP).

The same code runs everywhere. Without a ``RANK`` environment variable it trains in one process; under
``torchrun`` it joins the process group (NCCL on CUDA, gloo on CPU), shards the data with
`DistributedSampler`, splits the global batch over the ranks, and writes logs and checkpoints on rank 0
only. Model and loss are wrapped together in `TrainModule` so DDP keeps the identity classifier and the
learned task weights (`s_det`, `s_id`) in sync with the network.

Each epoch: a progress bar (loss terms, images/s), step records in ``train_log.jsonl``, then optional
validation, ``last.pt`` / ``best.pt`` (atomic) and the ``loss.png`` chart. Stopping and resuming
(``train.resume``) continues bit-for-bit on CPU: the shuffling order and the augmentation are functions of
(seed, epoch, index), and the checkpoint holds the position inside the epoch.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import random
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from ibntrack.config import Config, config_to_dict, save_config
from ibntrack.engine.checkpoint import (
    CheckpointError,
    bn_running_stats,
    load_checkpoint,
    load_state_checked,
    save_checkpoint,
)
from ibntrack.engine.plot import plot_loss_curves
from ibntrack.fileio import check_writable_dir, check_writable_file
from ibntrack.precision import autocast, resolve_precision

__all__ = ["Callback", "TrainModule", "TrainState", "TrainingError", "fit"]

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
_PART_KEYS = ("total", "det", "hm", "box", "off", "id")  # fixed order for all-reduce and logs
_RESUME_ONLY = ("optimizer", "scheduler", "scaler", "rng", "epoch_sums", "epoch_count")
_STEM = ("conv1", "bn1")
_STAGES = ("layer1", "layer2", "layer3", "layer4")


class TrainingError(RuntimeError):
    """Training cannot go on (non-finite loss or gradients); the last good checkpoint is kept."""


class TrainModule(nn.Module):
    """The network and its loss as one module, so one optimizer and one DDP wrapper see both.

    Args:
        model: the tracker network (``images [N,3,H,W] -> {hm, wh, reg, id}``).
        loss: `MotLoss` (owns ``s_det``, ``s_id`` and the ReID classifier).
    """

    def __init__(self, model: nn.Module, loss: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.loss = loss

    def forward(self, images: Tensor, targets: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        """``images [N,3,H,W]`` float32, batched targets of `build_targets` -> ``(loss, parts)``.

        The network may run under autocast; the loss is always computed in float32.
        """
        outputs = self.model(images)
        with torch.autocast(device_type=images.device.type, enabled=False):
            outputs = {k: v.float() for k, v in outputs.items()}
            return self.loss(outputs, targets)


@dataclasses.dataclass
class TrainState:
    """What callbacks see (mutable; read it, don't keep it).

    Attributes:
        module: the unwrapped `TrainModule` (``module.model`` is the network).
        optimizer: the optimizer.
        epoch: the current epoch (0-based).
        step: optimizer steps done so far.
        rank, world_size: process rank and count (0 and 1 without torchrun).
        out_dir: the run folder.
        parts: loss terms of the last step (averaged over ranks).
        train_loss, val_loss: means of the last finished epoch (``val_loss`` None when not validated).
    """

    module: TrainModule
    optimizer: torch.optim.Optimizer
    epoch: int
    step: int
    rank: int
    world_size: int
    out_dir: Path
    parts: dict[str, float] = dataclasses.field(default_factory=dict)
    train_loss: float | None = None
    val_loss: float | None = None


class Callback:
    """Hooks into `fit` (all ranks call them; check ``state.rank`` for rank-0 work).

    Subclass and override what you need, e.g. a tracking-metrics evaluation in `on_epoch_end`.
    """

    def on_step_end(self, state: TrainState) -> None:
        """After each optimizer step."""

    def on_epoch_end(self, state: TrainState) -> None:
        """After validation and checkpointing of each epoch."""

    def on_train_end(self, state: TrainState) -> None:
        """Once, after the last step (also after ``max_steps``)."""


# restored from the checkpoint on resume (optimizer param groups, RNG state), so a new value would be ignored
_RESUME_FIXED = ("lr", "optimizer", "weight_decay", "seed")


def fit(cfg: Config, callbacks: Sequence[Callback] = ()) -> Path:
    """Train a model as configured.

    Args:
        cfg: the full configuration (`ibntrack.config.load_config`).
        callbacks: optional hooks (`Callback`).

    Returns:
        Path of ``best.pt`` in ``cfg.train.out_dir`` (``last.pt`` if no best was recorded).

    Raises:
        ValueError: bad data (no sequences, no identities, batch larger than the data), bad resume or
            fine-tune checkpoint (`CheckpointError`) — all before the first step.
        TrainingError: the loss or the gradients became NaN/inf (``last.pt`` keeps the last good state).
    """
    env = _setup_distributed(cfg.train.device)
    try:
        return _Trainer(cfg, env, callbacks).run()
    finally:
        if env.owns_group and dist.is_initialized():
            dist.destroy_process_group()


# --------------------------------------------------------------------------------------------- internals


@dataclasses.dataclass(frozen=True)
class _Env:
    rank: int
    local_rank: int
    world_size: int
    device: torch.device
    owns_group: bool

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _setup_distributed(device_name: str) -> _Env:
    """Single process without ``RANK``; otherwise join (or reuse) the torchrun process group."""
    if device_name == "auto":
        device_name = "cuda" if torch.cuda.is_available() else "cpu"
    if device_name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"train.device is {device_name!r} but CUDA is not available; use cpu or auto")
    if "RANK" not in os.environ:
        return _Env(0, 0, 1, torch.device(device_name), owns_group=False)
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if device_name.startswith("cuda"):
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        device = torch.device("cpu")
        backend = "gloo"
    owns = False
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
        owns = True
    return _Env(rank, local_rank, world_size, device, owns_group=owns)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _worker_init(worker_id: int) -> None:
    """Seed NumPy's and Python's global generators in each DataLoader worker from its torch seed."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def _mix_seed(*values: int) -> int:
    return int(np.random.SeedSequence([v % 2**32 for v in values]).generate_state(1)[0])


def _load_data(paths: Sequence[str], cfg: Config, what: str) -> list[Any]:
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


def _make_dataset(sequences: list[Any], cfg: Config, augment: bool) -> Any:
    from ibntrack.data import MOTDataset

    d = cfg.data
    return MOTDataset(
        sequences,
        input_size=tuple(d.input_size),
        num_classes=d.num_classes,
        augment=augment,
        max_objs=d.max_objs,
        seed=cfg.train.seed,
        frame_step=d.frame_step,
    )


def _scene_words(*groups: Iterable[str]) -> list[str]:
    """Union of keyword groups in canonical form (`ibntrack.scene`), [] when there are none."""
    from ibntrack.scene import parse_scene

    words = [w for g in groups for w in g if str(w).strip()]
    try:
        return parse_scene(words).to_list() if words else []
    except ValueError:  # nothing left after normalisation
        return []


def _lr_factor(
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


def _rng_state() -> dict[str, Any]:
    """Global RNG states as tensors and plain lists (``weights_only``-loadable)."""
    _, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": [version, list(internal), gauss_next],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"].cpu())
    npst = state["numpy"]
    np.random.set_state(
        (
            "MT19937",
            npst["keys"].numpy().astype(np.uint32),
            npst["pos"],
            npst["has_gauss"],
            npst["cached_gaussian"],
        )
    )
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


class _Trainer:
    """One training run; `run()` does setup (all checks) and the loop."""

    def __init__(self, cfg: Config, env: _Env, callbacks: Sequence[Callback]) -> None:
        self.cfg = cfg
        self.env = env
        self.callbacks = list(callbacks)
        self.out_dir = Path(cfg.train.out_dir)
        self.log_path = self.out_dir / "train_log.jsonl"

    # ------------------------------------------------------------------------------------------ setup
    def _setup(self) -> None:
        cfg, env = self.cfg, self.env
        tc = cfg.train
        _seed_everything(tc.seed)
        if env.is_main:  # an unusable output folder fails now, not after the first epoch
            check_writable_dir(self.out_dir, "train.out_dir (--out)")
            for name in ("last.pt", "best.pt", "config.yaml", "train_log.jsonl"):
                check_writable_file(self.out_dir / name, "train.out_dir (--out)")  # also drops stale temps

        # 1. data (every check before the model is built)
        sequences = _load_data(cfg.data.train, cfg, "train")
        self.dataset = _make_dataset(sequences, cfg, augment=cfg.data.augment)
        self.num_ids = int(self.dataset.num_ids)
        if self.num_ids < 1:
            raise ValueError(
                f"the training data ({', '.join(cfg.data.train)}) has no identities: every track id is "
                "unknown, so the ReID branch cannot be trained; check gt.txt and data.class_map"
            )
        if tc.batch_size % env.world_size:
            raise ValueError(
                f"train.batch_size ({tc.batch_size}) must be divisible by the number of processes "
                f"({env.world_size}); it is the global batch, split evenly over the ranks"
            )
        self.batch_per_rank = tc.batch_size // env.world_size
        if len(self.dataset) < tc.batch_size:
            raise ValueError(
                f"train.batch_size ({tc.batch_size}) is larger than the training set ({len(self.dataset)} "
                "frames); lower train.batch_size or add data"
            )
        if cfg.data.train_weights:  # per-dataset shares of every epoch (ibntrack.data.mixing)
            from ibntrack.data.mixing import WeightedMixSampler, dataset_groups, sample_groups

            groups = sample_groups(
                self.dataset.samples, dataset_groups(sequences, cfg.data.train), len(cfg.data.train)
            )
            self.sampler = WeightedMixSampler(
                groups, cfg.data.train_weights, num_replicas=env.world_size, rank=env.rank, seed=tc.seed
            )
        else:
            self.sampler = DistributedSampler(
                self.dataset, num_replicas=env.world_size, rank=env.rank, shuffle=True, seed=tc.seed
            )
        self.steps_per_epoch = len(self.sampler) // self.batch_per_rank
        self.total_steps = self.steps_per_epoch * tc.epochs
        self.val_dataset = None
        if cfg.data.val and tc.val_every:
            self.val_dataset = _make_dataset(_load_data(cfg.data.val, cfg, "val"), cfg, augment=False)
        seq_scene = [w for s in sequences for w in getattr(s, "scene", ())]
        self.train_scene = _scene_words(tc.train_scene or seq_scene)

        # 2. model + loss
        from ibntrack.losses.total import MotLoss
        from ibntrack.nn.model import build_model_from_config

        model = build_model_from_config(cfg.model)
        if cfg.model.pretrained and (tc.resume or tc.finetune):
            log.info("model.pretrained ignored: the weights come from train.resume / train.finetune")
        elif cfg.model.pretrained:  # a local ImageNet backbone file; the report is logged
            from ibntrack.nn.pretrained import load_for_training

            load_for_training(
                model, cfg.model.pretrained, cfg.model.pretrained_allow_partial, announce=env.is_main
            )
        emb_dim = int(model.config.emb_dim)
        loss = MotLoss(cfg.loss, emb_dim=emb_dim, num_ids=self.num_ids)
        if not cfg.loss.uncertainty:  # fixed task weights: s_det/s_id get no gradient (DDP needs to know)
            for p in (loss.s_det, loss.s_id):
                p.requires_grad_(False)
        if tc.finetune:
            self._load_finetune(model, loss, tc.finetune)
        self.memory_format = torch.channels_last if tc.channels_last else torch.contiguous_format
        self.module = TrainModule(model, loss).to(env.device, memory_format=self.memory_format)
        if env.device.type == "cuda" and env.world_size > 1:  # DDP on CPU refuses SyncBatchNorm
            self.module = nn.SyncBatchNorm.convert_sync_batchnorm(self.module)
        self.frozen = self._freeze(tc.freeze_stages)  # after the conversion, which replaces BN modules

        # 3. optimizer, schedule, scaler
        params = [p for p in self.module.parameters() if p.requires_grad]
        opt_cls = torch.optim.Adam if tc.optimizer == "adam" else torch.optim.AdamW
        self.optimizer = opt_cls(params, lr=tc.lr, weight_decay=tc.weight_decay)
        self.params = params

        def factor(step: int) -> float:
            return _lr_factor(
                step,
                schedule=tc.schedule,
                steps_per_epoch=self.steps_per_epoch,
                total_steps=self.total_steps,
                milestones=tc.milestones,
                gamma=tc.gamma,
                min_ratio=tc.min_lr_ratio,
                warmup=tc.warmup_iters,
            )

        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, factor)
        self.precision = resolve_precision(tc.precision if tc.amp else "fp32", env.device, "train.precision")
        self.amp = self.precision == "fp16"  # gradient scaling: fp16 only (bf16 has fp32's range)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)

        # 4. position
        self.epoch, self.batch, self.step = 0, 0, 0
        self.best: float | None = None
        self.acc: dict[str, float] = dict.fromkeys(_PART_KEYS, 0.0)
        self.acc_n = 0
        if tc.resume:
            self._load_resume(tc.resume)

        # 5. DDP
        self.ddp: nn.Module = self.module
        if env.world_size > 1:
            device_ids = [env.device.index] if env.device.type == "cuda" else None
            self.ddp = nn.parallel.DistributedDataParallel(self.module, device_ids=device_ids)

        if env.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            save_config(cfg, self.out_dir / "config.yaml")
            if tc.resume:
                self._trim_log(self.step)
            else:  # a fresh run starts a fresh log and never returns an earlier run's best.pt
                if (self.out_dir / "last.pt").exists():
                    log.warning("%s holds an earlier run; its checkpoints will be replaced", self.out_dir)
                self.log_path.unlink(missing_ok=True)
                (self.out_dir / "best.pt").unlink(missing_ok=True)
            log.info(
                "training %s on %d sequences (%d frames, %d identities), %d steps/epoch x %d epochs, "
                "batch %d on %d process(es), device %s, %s%s",
                cfg.model.arch,
                len(sequences),
                len(self.dataset),
                self.num_ids,
                self.steps_per_epoch,
                tc.epochs,
                tc.batch_size,
                env.world_size,
                env.device,
                self.precision,
                ", channels_last" if tc.channels_last else "",
            )

    def _freeze(self, stages: int) -> list[nn.Module]:
        """Freeze the stem and the first ``stages - 1`` backbone stages; returns the frozen modules."""
        if not stages:
            return []
        backbone = getattr(self.module.model, "backbone", None)
        if backbone is None:
            raise ValueError("train.freeze_stages needs a model with a .backbone (ResNet trunk)")
        names = [_STEM, *((s,) for s in _STAGES)][:stages]
        frozen = [getattr(backbone, n) for group in names for n in group]
        for m in frozen:
            for p in m.parameters():
                p.requires_grad_(False)
        return frozen

    def _set_train_mode(self) -> None:
        self.module.train()
        for m in self.frozen:  # frozen stages keep their BN statistics too
            for sub in m.modules():
                if isinstance(sub, nn.modules.batchnorm._BatchNorm):
                    sub.eval()

    def _load_finetune(self, model: nn.Module, loss: nn.Module, path: str) -> None:
        ckpt = load_checkpoint(path)
        if "model" not in ckpt:
            raise CheckpointError(f"checkpoint {path} has no 'model' weights: not an ibntrack checkpoint")
        arch = (ckpt.get("model_config") or {}).get("arch")
        load_state_checked(model, ckpt["model"], source=path, arch=arch)
        own = loss.state_dict()
        fresh = []
        for key, value in (ckpt.get("loss") or {}).items():
            if key in own and own[key].shape == value.shape:
                own[key] = value
            else:
                fresh.append(key)
        fresh += [k for k in own if k not in (ckpt.get("loss") or {})]
        loss.load_state_dict(own)
        if fresh:
            log.info(
                "fine-tuning from %s: re-initialised %s (identities %s -> %d)",
                path,
                ", ".join(sorted(set(fresh))),
                ckpt.get("num_ids"),
                self.num_ids,
            )
        self.train_scene = _scene_words(ckpt.get("train_scene") or [], self.train_scene)

    def _load_resume(self, path: str) -> None:
        ckpt = load_checkpoint(path)
        missing = [
            k for k in ("model", "loss", "optimizer", "scheduler", "epoch", "step", "batch") if k not in ckpt
        ]
        if missing:
            raise CheckpointError(
                f"checkpoint {path} cannot be resumed: it has no {', '.join(missing)} "
                "(resume from last.pt; best.pt is for inference and train.finetune)"
            )
        saved_train = (ckpt.get("config") or {}).get("train") or {}
        now_train = config_to_dict(self.cfg.train)
        changed = [
            f"train.{k}: {saved_train[k]!r} in the checkpoint, {now_train[k]!r} now"
            for k in _RESUME_FIXED
            if k in saved_train and saved_train[k] != now_train[k]
        ]
        if changed:  # the optimizer and RNG states restored below would silently override these
            raise ValueError(
                f"train.resume: {path} continues its run exactly, but the config changes "
                f"{'; '.join(changed)}. Resume with the checkpoint's values, or start a new run from its "
                "weights with train.finetune"
            )
        mine = self.module.model.config.to_dict()
        if ckpt.get("model_config") != mine:
            raise ValueError(
                f"train.resume: checkpoint {path} was trained with model config {ckpt.get('model_config')}, "
                f"the config asks for {mine}; resume with the same model (or use train.finetune)"
            )
        if ckpt.get("num_ids") != self.num_ids:
            raise ValueError(
                f"train.resume: checkpoint {path} has {ckpt.get('num_ids')} identities, the data has "
                f"{self.num_ids}; resume on the same data (or use train.finetune)"
            )
        if ckpt.get("steps_per_epoch") != self.steps_per_epoch and ckpt["batch"]:
            raise ValueError(
                f"train.resume: checkpoint {path} stopped inside an epoch of {ckpt.get('steps_per_epoch')} "
                f"steps, this run has {self.steps_per_epoch} (data, batch size or world size changed)"
            )
        load_state_checked(self.module.model, ckpt["model"], source=path, arch=mine.get("arch"))
        self.module.loss.load_state_dict(ckpt["loss"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        if ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        self.epoch, self.batch, self.step = int(ckpt["epoch"]), int(ckpt["batch"]), int(ckpt["step"])
        self.best = ckpt.get("best_loss")
        self.acc = {k: float(v) for k, v in (ckpt.get("epoch_sums") or self.acc).items()}
        self.acc_n = int(ckpt.get("epoch_count", 0))
        self.train_scene = list(ckpt.get("train_scene") or self.train_scene)
        if "rng" in ckpt:
            _set_rng_state(ckpt["rng"])
        if self.env.is_main:
            log.info("resuming %s at epoch %d, step %d", path, self.epoch + 1, self.step)

    # ------------------------------------------------------------------------------------------- loop
    def run(self) -> Path:
        self._setup()
        tc = self.cfg.train
        state = TrainState(
            self.module,
            self.optimizer,
            self.epoch,
            self.step,
            self.env.rank,
            self.env.world_size,
            self.out_dir,
        )
        stopped = tc.max_steps is not None and self.step >= tc.max_steps
        while self.epoch < tc.epochs and not stopped:
            stopped = self._run_epoch(state)
        if self.env.is_main and (self.out_dir / "last.pt").exists():
            self._plot()
        for cb in self.callbacks:
            cb.on_train_end(state)
        self._barrier()
        best = self.out_dir / "best.pt"
        return best if best.exists() else self.out_dir / "last.pt"

    def _run_epoch(self, state: TrainState) -> bool:
        """Train the rest of the current epoch; True when ``max_steps`` stopped the run."""
        tc, env = self.cfg.train, self.env
        epoch = self.epoch
        self.sampler.set_epoch(epoch)
        self.dataset.set_epoch(epoch)
        indices = list(self.sampler)[self.batch * self.batch_per_rank :]
        generator = torch.Generator().manual_seed(_mix_seed(tc.seed, epoch, env.rank))
        loader = DataLoader(
            self.dataset,
            batch_size=self.batch_per_rank,
            sampler=indices,
            drop_last=True,
            num_workers=self.cfg.data.workers,
            worker_init_fn=_worker_init,
            generator=generator,
            pin_memory=env.device.type == "cuda",
        )
        self._set_train_mode()
        bar = tqdm(
            total=self.steps_per_epoch,
            initial=self.batch,
            desc=f"epoch {epoch + 1}/{tc.epochs}",
            disable=None if env.is_main else True,
            dynamic_ncols=True,
        )
        t_epoch = time.perf_counter()
        t_last, ips = time.perf_counter(), 0.0
        try:
            for images, targets in loader:
                parts = self._train_step(images, targets)
                self.batch += 1
                self.step += 1
                for k in _PART_KEYS:
                    self.acc[k] += parts[k]
                self.acc_n += 1
                now = time.perf_counter()
                inst = tc.batch_size / max(now - t_last, 1e-9)
                ips = inst if ips == 0.0 else 0.9 * ips + 0.1 * inst
                t_last = now
                lr = self.optimizer.param_groups[0]["lr"]
                bar.update(1)
                bar.set_postfix(
                    loss=f"{parts['total']:.3f}",
                    hm=f"{parts['hm']:.3f}",
                    box=f"{parts['box']:.3f}",
                    off=f"{parts['off']:.3f}",
                    id=f"{parts['id']:.3f}",
                    lr=f"{lr:.2e}",
                    img_s=f"{ips:.1f}",
                    refresh=False,
                )
                if env.is_main and (self.step % tc.log_every == 0 or self.step == 1):
                    self._log(
                        {
                            "event": "step",
                            "epoch": epoch + 1,
                            "step": self.step,
                            "lr": lr,
                            "img_s": round(ips, 2),
                            **parts,
                        }
                    )
                state.epoch, state.step, state.parts = epoch, self.step, parts
                for cb in self.callbacks:
                    cb.on_step_end(state)
                done = tc.max_steps is not None and self.step >= tc.max_steps
                if done and self.batch < self.steps_per_epoch:
                    self._save_last()
                    log.info(
                        "stopped at train.max_steps=%d (epoch %d, batch %d)", self.step, epoch + 1, self.batch
                    )
                    return True
                if tc.save_every and self.step % tc.save_every == 0 and self.batch < self.steps_per_epoch:
                    self._save_last()
        finally:
            bar.close()
        self._end_epoch(state, time.perf_counter() - t_epoch)
        return tc.max_steps is not None and self.step >= tc.max_steps

    def _train_step(self, images: Tensor, targets: dict[str, Tensor]) -> dict[str, float]:
        env, tc = self.env, self.cfg.train
        images = images.to(env.device, non_blocking=True, memory_format=self.memory_format)
        targets = {k: v.to(env.device, non_blocking=True) for k, v in targets.items()}
        with autocast(self.precision, env.device):
            loss, parts = self.ddp(images, targets)
        stats = torch.tensor(
            [0.0 if math.isfinite(float(loss.detach())) else 1.0] + [parts[k] for k in _PART_KEYS],
            dtype=torch.float64,
            device=env.device,
        )
        if env.world_size > 1:
            dist.all_reduce(stats)
            stats[1:] /= env.world_size
        if stats[0] > 0:
            self._fail(f"non-finite loss at step {self.step + 1} (epoch {self.epoch + 1}): {parts}")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if tc.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            norm = torch.nn.utils.clip_grad_norm_(self.params, tc.grad_clip)
            if not self.amp and not torch.isfinite(norm):
                self._fail(f"non-finite gradient norm at step {self.step + 1} (epoch {self.epoch + 1})")
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return {k: float(v) for k, v in zip(_PART_KEYS, stats[1:].tolist(), strict=True)}

    def _fail(self, message: str) -> None:
        last = self.out_dir / "last.pt"
        kept = f"; the last good checkpoint is {last}" if last.exists() else "; no checkpoint was saved yet"
        if self.env.is_main:
            self._log({"event": "error", "epoch": self.epoch + 1, "step": self.step, "message": message})
            log.error("training stopped: %s%s", message, kept)
        raise TrainingError(
            f"training stopped: {message}{kept}. Lower train.lr, set train.grad_clip, or check the data."
        )

    def _end_epoch(self, state: TrainState, seconds: float) -> None:
        tc = self.cfg.train
        train_means = {k: v / max(self.acc_n, 1) for k, v in self.acc.items()}
        val = None
        if self.val_dataset is not None and (self.epoch + 1) % tc.val_every == 0:
            val = self._validate()
        self.epoch += 1
        self.batch = 0
        self.acc, self.acc_n = dict.fromkeys(_PART_KEYS, 0.0), 0
        improved = False
        if self.val_dataset is None or val is not None:
            metric = val["det"] if val is not None else train_means["total"]
            improved = self.best is None or metric < self.best
            if improved:
                self.best = metric
        if self.env.is_main:
            self._save_last()
            if improved:  # for inference and fine-tuning: no optimizer state (resume from last.pt)
                payload = self._payload()
                for key in _RESUME_ONLY:
                    payload.pop(key)
                save_checkpoint(self.out_dir / "best.pt", payload)
            self._log(
                {
                    "event": "epoch",
                    "epoch": self.epoch,
                    "step": self.step,
                    "seconds": round(seconds, 2),
                    "train": train_means,
                    "val": val,
                    "best": improved,
                }
            )
            self._plot()
            log.info(
                "epoch %d/%d: train loss %.4f%s%s",
                self.epoch,
                tc.epochs,
                train_means["total"],
                f", val det loss {val['det']:.4f}" if val else "",
                " (best)" if improved else "",
            )
        state.epoch, state.step = self.epoch - 1, self.step
        state.train_loss, state.val_loss = train_means["total"], (val or {}).get("det")
        for cb in self.callbacks:
            cb.on_epoch_end(state)

    @torch.no_grad()
    def _validate(self) -> dict[str, float] | None:
        """Mean loss terms on the validation set, on rank 0 (identities unknown: detection terms only)."""
        result = None
        if self.env.is_main:
            loader = DataLoader(
                self.val_dataset,
                batch_size=self.batch_per_rank,
                shuffle=False,
                num_workers=self.cfg.data.workers,
                worker_init_fn=_worker_init,
            )
            self.module.eval()
            sums, n = dict.fromkeys(("det", "hm", "box", "off"), 0.0), 0
            for images, targets in loader:
                images = images.to(self.env.device, memory_format=self.memory_format)
                targets = {k: v.to(self.env.device) for k, v in targets.items()}
                targets["ids"] = torch.full_like(targets["ids"], -1)  # val identities != training classes
                with autocast(self.precision, self.env.device):
                    _, parts = self.module(images, targets)
                for k in sums:
                    sums[k] += parts[k] * images.shape[0]
                n += images.shape[0]
            self._set_train_mode()
            result = {k: v / max(n, 1) for k, v in sums.items()}
        self._barrier()
        return result

    # --------------------------------------------------------------------------------------- outputs
    def _payload(self) -> dict[str, Any]:
        model = self.module.model
        return {
            "format_version": FORMAT_VERSION,
            "model": model.state_dict(),
            "model_config": model.config.to_dict(),
            "class_names": list(self.cfg.data.class_names),
            "input_size": list(self.cfg.data.input_size),
            "num_ids": self.num_ids,
            "train_scene": list(self.train_scene),
            "bn_stats": bn_running_stats(model),
            "loss": self.module.loss.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": self.epoch,
            "batch": self.batch,
            "step": self.step,
            "steps_per_epoch": self.steps_per_epoch,
            "best_loss": self.best,
            "epoch_sums": dict(self.acc),
            "epoch_count": self.acc_n,
            "rng": _rng_state(),
            "config": config_to_dict(self.cfg),
        }

    def _save_last(self) -> None:
        if self.env.is_main:
            save_checkpoint(self.out_dir / "last.pt", self._payload())

    def _log(self, record: dict[str, Any]) -> None:
        with open(self.log_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    def _trim_log(self, step: int) -> None:
        """Drop log records written after the checkpoint we resume from."""
        if not self.log_path.exists():
            return
        keep = []
        for line in self.log_path.read_text(encoding="utf-8").splitlines():
            try:
                if json.loads(line).get("step", 0) <= step:
                    keep.append(line)
            except json.JSONDecodeError:
                continue
        self.log_path.write_text("".join(f"{line}\n" for line in keep), encoding="utf-8")

    def _plot(self) -> None:
        try:
            plot_loss_curves(self.log_path, self.out_dir / "loss.png")
        except (OSError, ValueError) as exc:  # a chart is never worth a crash
            log.warning("could not draw %s: %s", self.out_dir / "loss.png", exc)

    def _barrier(self) -> None:
        if self.env.world_size > 1 and dist.is_initialized():
            dist.barrier()
