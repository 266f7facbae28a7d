"""Training loop: `fit(cfg)` on one CPU, one GPU, or many GPUs/machines under torchrun (DDP).

The same code runs everywhere. Without a ``RANK`` environment variable it trains in one process; under
``torchrun`` it joins the process group (NCCL on CUDA, gloo on CPU), shards the data with
`DistributedSampler`, splits the global batch over the ranks, and writes logs and checkpoints on rank 0
only. Model and loss are wrapped together in `TrainModule` so DDP keeps the identity classifier and the
learned task weights (`s_det`, `s_id`) in sync with the network.

:class:`Trainer` builds the run from its parts (:mod:`ibntrack.training.build`), then runs a short loop —
step, keep the position, call the hooks (:mod:`ibntrack.training.hooks`: progress bar, ``train_log.jsonl``,
``last.pt`` / ``best.pt``, ``loss.png``, user callbacks). Stopping and resuming (``train.resume``)
continues bit-for-bit on CPU: the shuffling order and the augmentation are functions of
(seed, epoch, index), and the checkpoint holds the position inside the epoch.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils.data import DataLoader

from ibntrack.config import Config, config_to_dict, save_config
from ibntrack.fileio import check_writable_dir, check_writable_file
from ibntrack.nn.checkpoint import bn_running_stats, load_checkpoint, load_state_checked
from ibntrack.precision import autocast, resolve_precision
from ibntrack.training.build import (
    TrainModule,
    build_module,
    build_optimizer,
    build_scheduler,
    check_data,
    freeze_stages,
    load_data,
    make_dataset,
    make_sampler,
    mix_seed,
    scene_words,
    seed_everything,
    set_train_mode,
    worker_init,
)
from ibntrack.training.distributed import DistEnv, barrier, setup_distributed
from ibntrack.training.hooks import Callback, CheckpointHook, JsonLogHook, PlotHook, ProgressHook, TrainState
from ibntrack.training.train_checkpoint import FORMAT_VERSION, check_resume, rng_state, set_rng_state

__all__ = ["Callback", "TrainModule", "TrainState", "Trainer", "TrainingError", "fit"]

log = logging.getLogger(__name__)

_PART_KEYS = ("total", "det", "hm", "box", "off", "id")  # fixed order for all-reduce and logs


class TrainingError(RuntimeError):
    """Training cannot go on (non-finite loss or gradients); the last good checkpoint is kept."""


def fit(cfg: Config, callbacks: Sequence[Callback] = ()) -> Path:
    """Train a model as configured.

    Args:
        cfg: the full configuration (`ibntrack.config.load_config`).
        callbacks: optional hooks (`Callback`).

    Returns:
        Path of ``best.pt`` in ``cfg.train.out_dir`` (``last.pt`` if no best was recorded).

    Raises:
        ValueError: bad data (no sequences, no identities, batch larger than the data), an unusable
            output folder, bad resume or fine-tune checkpoint (`CheckpointError`) — all before the first
            step.
        TrainingError: the loss or the gradients became NaN/inf (``last.pt`` keeps the last good state).
    """
    env = setup_distributed(cfg.train.device)
    try:
        return Trainer(cfg, env, callbacks).run()
    finally:
        if env.owns_group and dist.is_initialized():
            dist.destroy_process_group()


class Trainer:
    """One training run: ``__init__`` builds it (every check), :meth:`run` trains it.

    Args:
        cfg: the resolved configuration.
        env: this process's place in the run (:func:`ibntrack.training.distributed.setup_distributed`).
        callbacks: user hooks, called after the built-in progress and log hooks.
    """

    def __init__(self, cfg: Config, env: DistEnv, callbacks: Sequence[Callback] = ()) -> None:
        tc = cfg.train
        self.cfg, self.env = cfg, env
        self.out_dir = Path(tc.out_dir)
        seed_everything(tc.seed)
        if env.is_main:  # an unusable output folder fails now, not after the first epoch
            check_writable_dir(self.out_dir, "train.out_dir (--out)")
            for name in ("last.pt", "best.pt", "config.yaml", "train_log.jsonl"):
                check_writable_file(self.out_dir / name, "train.out_dir (--out)")  # also drops stale temps

        # 1. data (every check before the model is built)
        sequences = load_data(cfg.data.train, cfg, "train")
        self.dataset = make_dataset(sequences, cfg, augment=cfg.data.augment)
        self.num_ids = int(self.dataset.num_ids)
        check_data(cfg, env, self.num_ids, len(self.dataset))
        self.batch_per_rank = tc.batch_size // env.world_size
        self.sampler = make_sampler(self.dataset, sequences, cfg, env)
        self.steps_per_epoch = len(self.sampler) // self.batch_per_rank
        self.total_steps = self.steps_per_epoch * tc.epochs
        self.val_dataset = None
        if cfg.data.val and tc.val_every:
            self.val_dataset = make_dataset(load_data(cfg.data.val, cfg, "val"), cfg, augment=False)
        self.train_scene = scene_words(
            tc.train_scene or [w for s in sequences for w in getattr(s, "scene", ())]
        )

        # 2. network + loss, number format
        self.precision = resolve_precision(tc.precision if tc.amp else "fp32", env.device, "train.precision")
        self.memory_format = torch.channels_last if tc.channels_last else torch.contiguous_format
        self.module, finetune_scene = build_module(cfg, env, self.num_ids, self.memory_format)
        if tc.finetune:
            self.train_scene = scene_words(finetune_scene, self.train_scene)
        self.frozen = freeze_stages(self.module, tc.freeze_stages)  # after SyncBN, which replaces BN modules

        # 3. optimizer, schedule, gradient scaling (fp16 only: bf16 has fp32's range)
        self.optimizer, self.params = build_optimizer(self.module, tc)
        self.scheduler = build_scheduler(self.optimizer, tc, self.steps_per_epoch, self.total_steps)
        self.amp = self.precision == "fp16"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)

        # 4. position (a resume moves it)
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

        # 6. hooks: progress -> log -> user callbacks -> checkpoints on steps
        log_path = self.out_dir / "train_log.jsonl"
        self.logger = JsonLogHook(log_path, tc.log_every, self.step if tc.resume else None)
        self.checkpoints = CheckpointHook(
            self.out_dir, self.payload, tc.save_every, tc.max_steps, not tc.resume
        )
        self.step_hooks: list[Callback] = [
            ProgressHook(tc.batch_size),
            self.logger,
            *callbacks,
            self.checkpoints,
        ]
        self.epoch_hooks: list[Callback] = [
            self.checkpoints,
            self.logger,
            PlotHook(log_path, self.out_dir / "loss.png"),
            *callbacks,
        ]
        self.state = TrainState(
            self.module,
            self.optimizer,
            self.epoch,
            self.step,
            env.rank,
            env.world_size,
            self.out_dir,
            batch=self.batch,
            steps_per_epoch=self.steps_per_epoch,
            epochs=tc.epochs,
        )
        if env.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            save_config(cfg, self.out_dir / "config.yaml")
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

    # --------------------------------------------------------------------------------------------- loop
    def run(self) -> Path:
        """Trains to ``train.epochs`` (or ``train.max_steps``); returns ``best.pt`` (else ``last.pt``)."""
        tc, state = self.cfg.train, self.state
        for hook in _unique(self.step_hooks + self.epoch_hooks):
            hook.before_train(state)
        stopped = tc.max_steps is not None and self.step >= tc.max_steps
        while self.epoch < tc.epochs and not stopped:
            stopped = self._run_epoch()
        for hook in _unique(self.epoch_hooks + self.step_hooks):
            hook.on_train_end(state)
        barrier(self.env)
        best = self.out_dir / "best.pt"
        return best if best.exists() else self.out_dir / "last.pt"

    def _run_epoch(self) -> bool:
        """Trains the rest of the current epoch; True when ``max_steps`` stopped the run."""
        tc, state = self.cfg.train, self.state
        self.sampler.set_epoch(self.epoch)
        self.dataset.set_epoch(self.epoch)
        indices = list(self.sampler)[self.batch * self.batch_per_rank :]
        loader = DataLoader(
            self.dataset,
            batch_size=self.batch_per_rank,
            sampler=indices,
            drop_last=True,
            num_workers=self.cfg.data.workers,
            worker_init_fn=worker_init,
            generator=torch.Generator().manual_seed(mix_seed(tc.seed, self.epoch, self.env.rank)),
            pin_memory=self.env.device.type == "cuda",
        )
        set_train_mode(self.module, self.frozen)
        state.epoch, state.batch = self.epoch, self.batch
        for hook in self.step_hooks:
            hook.before_epoch(state)
        t_epoch = time.perf_counter()
        try:
            for images, targets in loader:
                parts = self._train_step(images, targets)
                self.batch += 1
                self.step += 1
                for k in _PART_KEYS:
                    self.acc[k] += parts[k]
                self.acc_n += 1
                state.step, state.batch, state.parts = self.step, self.batch, parts
                state.lr = self.optimizer.param_groups[0]["lr"]
                for hook in self.step_hooks:
                    hook.on_step_end(state)
                if (
                    tc.max_steps is not None
                    and self.step >= tc.max_steps
                    and self.batch < self.steps_per_epoch
                ):
                    return True  # the checkpoint hook saved last.pt mid-epoch
        finally:
            for hook in self.step_hooks:
                hook.after_epoch_steps(state)
        self._end_epoch(time.perf_counter() - t_epoch)
        return tc.max_steps is not None and self.step >= tc.max_steps

    def _train_step(self, images: Tensor, targets: dict[str, Tensor]) -> dict[str, float]:
        """One optimizer step on this rank's batch; returns the loss terms averaged over the ranks."""
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

    def _end_epoch(self, seconds: float) -> None:
        """Validation, then the position moves to the next epoch, then the epoch hooks."""
        tc, state = self.cfg.train, self.state
        train_means = {k: v / max(self.acc_n, 1) for k, v in self.acc.items()}
        val = None
        if self.val_dataset is not None and (self.epoch + 1) % tc.val_every == 0:
            val = self._validate()
        improved = False
        if self.val_dataset is None or val is not None:
            metric = val["det"] if val is not None else train_means["total"]
            improved = self.best is None or metric < self.best
            if improved:
                self.best = metric
        state.epoch, state.step, state.epoch_seconds = self.epoch, self.step, seconds
        self.epoch += 1
        self.batch = 0
        self.acc, self.acc_n = dict.fromkeys(_PART_KEYS, 0.0), 0
        state.train_means, state.val, state.improved = train_means, val, improved
        state.train_loss, state.val_loss = train_means["total"], (val or {}).get("det")
        for hook in self.epoch_hooks:
            hook.on_epoch_end(state)

    @torch.no_grad()
    def _validate(self) -> dict[str, float] | None:
        """Mean loss terms on the validation set, on rank 0 (identities unknown: detection terms only)."""
        result = None
        if self.env.is_main and self.val_dataset is not None:
            loader = DataLoader(
                self.val_dataset,
                batch_size=self.batch_per_rank,
                shuffle=False,
                num_workers=self.cfg.data.workers,
                worker_init_fn=worker_init,
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
            set_train_mode(self.module, self.frozen)
            result = {k: v / max(n, 1) for k, v in sums.items()}
        barrier(self.env)
        return result

    def _fail(self, message: str) -> None:
        last = self.out_dir / "last.pt"
        kept = f"; the last good checkpoint is {last}" if last.exists() else "; no checkpoint was saved yet"
        if self.env.is_main:
            self.logger.write(
                {"event": "error", "epoch": self.epoch + 1, "step": self.step, "message": message}
            )
            log.error("training stopped: %s%s", message, kept)
        raise TrainingError(
            f"training stopped: {message}{kept}. Lower train.lr, set train.grad_clip, or check the data."
        )

    # ------------------------------------------------------------------------------------- checkpoints
    def payload(self) -> dict[str, Any]:
        """The full checkpoint of the current position (layout: :mod:`ibntrack.nn.checkpoint`)."""
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
            "rng": rng_state(),
            "config": config_to_dict(self.cfg),
        }

    def _load_resume(self, path: str) -> None:
        ckpt = load_checkpoint(path)
        mine = self.module.model.config.to_dict()
        check_resume(ckpt, path, config_to_dict(self.cfg.train), mine, self.num_ids, self.steps_per_epoch)
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
            set_rng_state(ckpt["rng"])
        if self.env.is_main:
            log.info("resuming %s at epoch %d, step %d", path, self.epoch + 1, self.step)


def _unique(hooks: list[Callback]) -> list[Callback]:
    """Each hook once, in first-seen order (a hook may sit in both lists)."""
    seen: list[Callback] = []
    for h in hooks:
        if all(h is not s for s in seen):
            seen.append(h)
    return seen
