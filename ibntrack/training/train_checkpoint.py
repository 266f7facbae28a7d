"""What a training checkpoint holds and how a run resumes or fine-tunes from one.

``last.pt`` is the whole run state (weights, loss, optimizer, scheduler, scaler, position inside the
epoch, running epoch sums, RNG states, resolved config), so ``train.resume`` continues bit-for-bit on CPU;
``best.pt`` drops the resume-only entries (:data:`RESUME_ONLY`). The key layout is documented in
:mod:`ibntrack.nn.checkpoint`.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from ibntrack.nn.checkpoint import CheckpointError, load_checkpoint, load_state_checked

__all__ = [
    "FORMAT_VERSION",
    "RESUME_FIXED",
    "RESUME_KEYS",
    "RESUME_ONLY",
    "check_resume",
    "load_finetune",
    "rng_state",
    "set_rng_state",
]

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
#: entries of ``last.pt`` that ``best.pt`` leaves out (it is for inference and fine-tuning)
RESUME_ONLY = ("optimizer", "scheduler", "scaler", "rng", "epoch_sums", "epoch_count")
#: entries without which a checkpoint cannot be resumed
RESUME_KEYS = ("model", "loss", "optimizer", "scheduler", "epoch", "step", "batch")
#: ``train.*`` keys restored from the checkpoint on resume (optimizer param groups, RNG state): a new
#: value would be silently ignored, so resuming with a changed one is refused
RESUME_FIXED = ("lr", "optimizer", "weight_decay", "seed")


def rng_state() -> dict[str, Any]:
    """Global RNG states as tensors and plain lists (``weights_only``-loadable)."""
    legacy = np.random.get_state(legacy=True)
    assert isinstance(legacy, tuple)  # legacy=True: ("MT19937", keys, pos, has_gauss, cached)
    _, keys, pos, has_gauss, cached = legacy
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


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restores what :func:`rng_state` saved."""
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


def check_resume(
    ckpt: Mapping[str, Any],
    path: str,
    train_now: Mapping[str, Any],
    model_config: Mapping[str, Any],
    num_ids: int,
    steps_per_epoch: int,
) -> None:
    """Refuses a checkpoint this run cannot continue exactly.

    Args:
        ckpt: the loaded ``last.pt``.
        path: its path (for messages).
        train_now: this run's ``train`` section as plain values (``config_to_dict(cfg.train)``).
        model_config: this run's ``ModelConfig.to_dict()``.
        num_ids: identities in this run's data.
        steps_per_epoch: optimizer steps per epoch of this run.

    Raises:
        CheckpointError: not a resumable checkpoint (e.g. ``best.pt``).
        ValueError: a changed optimisation setting, model, identity count or epoch length.
    """
    missing = [k for k in RESUME_KEYS if k not in ckpt]
    if missing:
        raise CheckpointError(
            f"checkpoint {path} cannot be resumed: it has no {', '.join(missing)} "
            "(resume from last.pt; best.pt is for inference and train.finetune)"
        )
    saved_train = (ckpt.get("config") or {}).get("train") or {}
    changed = [
        f"train.{k}: {saved_train[k]!r} in the checkpoint, {train_now[k]!r} now"
        for k in RESUME_FIXED
        if k in saved_train and saved_train[k] != train_now[k]
    ]
    if changed:
        raise ValueError(
            f"train.resume: {path} continues its run exactly, but the config changes "
            f"{'; '.join(changed)}. Resume with the checkpoint's values, or start a new run from its "
            "weights with train.finetune"
        )
    if ckpt.get("model_config") != dict(model_config):
        raise ValueError(
            f"train.resume: checkpoint {path} was trained with model config {ckpt.get('model_config')}, "
            f"the config asks for {dict(model_config)}; resume with the same model (or use train.finetune)"
        )
    if ckpt.get("num_ids") != num_ids:
        raise ValueError(
            f"train.resume: checkpoint {path} has {ckpt.get('num_ids')} identities, the data has "
            f"{num_ids}; resume on the same data (or use train.finetune)"
        )
    if ckpt.get("steps_per_epoch") != steps_per_epoch and ckpt["batch"]:
        raise ValueError(
            f"train.resume: checkpoint {path} stopped inside an epoch of {ckpt.get('steps_per_epoch')} "
            f"steps, this run has {steps_per_epoch} (data, batch size or world size changed)"
        )


def load_finetune(model: nn.Module, loss: nn.Module, path: str, num_ids: int) -> list[str]:
    """Loads a checkpoint's weights for fine-tuning; returns its training scene keywords.

    The network must match; loss entries of another shape (the identity classifier when the identity
    count differs) are re-initialised and logged.

    Raises:
        CheckpointError: not an ibntrack checkpoint, or weights of another architecture.
    """
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
            num_ids,
        )
    return list(ckpt.get("train_scene") or [])
