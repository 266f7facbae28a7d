"""What happens around the training steps: progress bar, JSON log, checkpoints, loss chart, callbacks.

The loop in :mod:`ibntrack.training.train` only steps and keeps the position; everything else is a
:class:`Callback` called at fixed points (detectron2's hooks): ``before_train``, ``before_epoch``,
``on_step_end``, ``after_epoch_steps`` (the epoch's steps are over or stopped; always called),
``on_epoch_end`` (after validation) and ``on_train_end``. The built-in hooks run in the order
progress → log → user callbacks → checkpoint on steps, and checkpoint → log → chart → user callbacks at
the end of an epoch. Rank-0-only work checks ``state.rank``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from ibntrack.nn.checkpoint import save_checkpoint
from ibntrack.training.plot import plot_loss_curves
from ibntrack.training.train_checkpoint import RESUME_ONLY

__all__ = ["Callback", "CheckpointHook", "JsonLogHook", "PlotHook", "ProgressHook", "TrainState"]

log = logging.getLogger(__name__)


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
        batch: batches done in the current epoch; steps_per_epoch, epochs: the run's length.
        lr: learning rate of the last step; img_s: smoothed training throughput (images/s).
        train_means, val: all loss terms of the last finished epoch; improved: it set a new best;
            epoch_seconds: its wall time.
    """

    module: torch.nn.Module
    optimizer: torch.optim.Optimizer
    epoch: int
    step: int
    rank: int
    world_size: int
    out_dir: Path
    parts: dict[str, float] = dataclasses.field(default_factory=dict)
    train_loss: float | None = None
    val_loss: float | None = None
    batch: int = 0
    steps_per_epoch: int = 0
    epochs: int = 0
    lr: float = 0.0
    img_s: float = 0.0
    train_means: dict[str, float] = dataclasses.field(default_factory=dict)
    val: dict[str, float] | None = None
    improved: bool = False
    epoch_seconds: float = 0.0


class Callback:
    """Hooks into `fit` (all ranks call them; check ``state.rank`` for rank-0 work).

    Subclass and override what you need, e.g. a tracking-metrics evaluation in `on_epoch_end`.
    """

    def before_train(self, state: TrainState) -> None:
        """Once, after every check and before the first step."""

    def before_epoch(self, state: TrainState) -> None:
        """Before the (rest of the) epoch's steps."""

    def on_step_end(self, state: TrainState) -> None:
        """After each optimizer step."""

    def after_epoch_steps(self, state: TrainState) -> None:
        """When the epoch's steps are over, also when they stopped early or failed."""

    def on_epoch_end(self, state: TrainState) -> None:
        """After validation and checkpointing of each epoch."""

    def on_train_end(self, state: TrainState) -> None:
        """Once, after the last step (also after ``max_steps``)."""


class ProgressHook(Callback):
    """tqdm bar per epoch (loss terms, lr, images/s) on rank 0; keeps ``state.img_s`` (EMA) up to date.

    Args:
        batch_size: global batch size (images per step).
    """

    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size
        self._bar: tqdm | None = None
        self._t_last = 0.0

    def before_epoch(self, state: TrainState) -> None:
        self._bar = tqdm(
            total=state.steps_per_epoch,
            initial=state.batch,
            desc=f"epoch {state.epoch + 1}/{state.epochs}",
            disable=None if state.rank == 0 else True,
            dynamic_ncols=True,
        )
        self._t_last = time.perf_counter()
        state.img_s = 0.0

    def on_step_end(self, state: TrainState) -> None:
        now = time.perf_counter()
        inst = self.batch_size / max(now - self._t_last, 1e-9)
        state.img_s = inst if state.img_s == 0.0 else 0.9 * state.img_s + 0.1 * inst
        self._t_last = now
        if self._bar is not None:
            p = state.parts
            self._bar.update(1)
            self._bar.set_postfix(
                loss=f"{p['total']:.3f}",
                hm=f"{p['hm']:.3f}",
                box=f"{p['box']:.3f}",
                off=f"{p['off']:.3f}",
                id=f"{p['id']:.3f}",
                lr=f"{state.lr:.2e}",
                img_s=f"{state.img_s:.1f}",
                refresh=False,
            )

    def after_epoch_steps(self, state: TrainState) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class JsonLogHook(Callback):
    """``train_log.jsonl`` on rank 0: a step record every ``log_every`` steps, an epoch record per epoch.

    A fresh run starts a fresh log; a resumed run drops the records written after its checkpoint.
    """

    def __init__(self, path: Path, log_every: int, resume_step: int | None) -> None:
        self.path = path
        self.log_every = log_every
        self.resume_step = resume_step

    def write(self, record: dict[str, Any]) -> None:
        """Appends one record (rank 0 calls it)."""
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    def before_train(self, state: TrainState) -> None:
        if state.rank != 0:
            return
        if self.resume_step is None:
            self.path.unlink(missing_ok=True)
        elif self.path.exists():
            keep = []
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    if json.loads(line).get("step", 0) <= self.resume_step:
                        keep.append(line)
                except json.JSONDecodeError:
                    continue
            self.path.write_text("".join(f"{line}\n" for line in keep), encoding="utf-8")

    def on_step_end(self, state: TrainState) -> None:
        if state.rank == 0 and (state.step % self.log_every == 0 or state.step == 1):
            self.write(
                {
                    "event": "step",
                    "epoch": state.epoch + 1,
                    "step": state.step,
                    "lr": state.lr,
                    "img_s": round(state.img_s, 2),
                    **state.parts,
                }
            )

    def on_epoch_end(self, state: TrainState) -> None:
        if state.rank != 0:
            return
        self.write(
            {
                "event": "epoch",
                "epoch": state.epoch + 1,
                "step": state.step,
                "seconds": round(state.epoch_seconds, 2),
                "train": state.train_means,
                "val": state.val,
                "best": state.improved,
            }
        )
        log.info(
            "epoch %d/%d: train loss %.4f%s%s",
            state.epoch + 1,
            state.epochs,
            state.train_means["total"],
            f", val det loss {state.val['det']:.4f}" if state.val else "",
            " (best)" if state.improved else "",
        )


class CheckpointHook(Callback):
    """``last.pt`` at each epoch end, every ``save_every`` steps and at ``max_steps``; ``best.pt`` when an
    epoch improves (without the resume-only entries). Rank 0 writes; the writes are atomic.

    Args:
        out_dir: the run folder.
        payload: returns the full checkpoint dict of the current position.
        save_every: also save every n steps (0 = epoch ends only).
        max_steps: the run's step limit, if any.
        fresh: a new run (not a resume): an earlier run's ``best.pt`` is removed first.
    """

    def __init__(
        self,
        out_dir: Path,
        payload: Callable[[], dict[str, Any]],
        save_every: int,
        max_steps: int | None,
        fresh: bool,
    ) -> None:
        self.out_dir = out_dir
        self.payload = payload
        self.save_every = save_every
        self.max_steps = max_steps
        self.fresh = fresh

    def save_last(self, state: TrainState) -> None:
        if state.rank == 0:
            save_checkpoint(self.out_dir / "last.pt", self.payload())

    def before_train(self, state: TrainState) -> None:
        if state.rank == 0 and self.fresh:  # a fresh run never returns an earlier run's best.pt
            if (self.out_dir / "last.pt").exists():
                log.warning("%s holds an earlier run; its checkpoints will be replaced", self.out_dir)
            (self.out_dir / "best.pt").unlink(missing_ok=True)

    def on_step_end(self, state: TrainState) -> None:
        if state.batch >= state.steps_per_epoch:
            return  # the epoch end saves
        stop = self.max_steps is not None and state.step >= self.max_steps
        if stop or (self.save_every and state.step % self.save_every == 0):
            self.save_last(state)
        if stop:
            log.info(
                "stopped at train.max_steps=%d (epoch %d, batch %d)", state.step, state.epoch + 1, state.batch
            )

    def on_epoch_end(self, state: TrainState) -> None:
        if state.rank != 0:
            return
        self.save_last(state)
        if state.improved:  # for inference and fine-tuning: no optimizer state (resume from last.pt)
            payload = self.payload()
            for key in RESUME_ONLY:
                payload.pop(key)
            save_checkpoint(self.out_dir / "best.pt", payload)


class PlotHook(Callback):
    """``loss.png`` from ``train_log.jsonl`` after each epoch and at the end (rank 0)."""

    def __init__(self, log_path: Path, out: Path) -> None:
        self.log_path = log_path
        self.out = out

    def _plot(self) -> None:
        try:
            plot_loss_curves(self.log_path, self.out)
        except (OSError, ValueError) as exc:  # a chart is never worth a crash
            log.warning("could not draw %s: %s", self.out, exc)

    def on_epoch_end(self, state: TrainState) -> None:
        if state.rank == 0:
            self._plot()

    def on_train_end(self, state: TrainState) -> None:
        if state.rank == 0 and (state.out_dir / "last.pt").exists():
            self._plot()
