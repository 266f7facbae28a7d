"""Checkpoints: atomic save, safe (``weights_only``) load, and model reconstruction.

A checkpoint written by `ibntrack.training.train.fit` is a dict of tensors and plain values only, so
``torch.load(..., weights_only=True)`` reads it without running pickled code:

- ``format_version``: int, currently 1
- ``model``: the network's ``state_dict``; ``model_config``: ``ModelConfig.to_dict()`` (rebuilds it)
- ``class_names``: list, index = model class; ``input_size``: ``[H, W]`` of training
- ``num_ids``: identities of the ReID classifier; ``train_scene``: keywords of the training scenes
- ``bn_stats``: ``{bn_module_name: {"mean": Tensor[C], "var": Tensor[C]}}``, BN running statistics
- ``loss``: the loss module's ``state_dict`` (``s_det``, ``s_id``, identity classifier)
- ``optimizer``, ``scheduler``, ``scaler``: their state dicts
- ``epoch``, ``batch``, ``step``, ``steps_per_epoch``: resume position (epoch in progress, batches done in
  it, optimizer steps); ``best_loss``; ``epoch_sums``, ``epoch_count``: the running epoch means
- ``rng``: ``{"torch": ByteTensor, "numpy": {...}, "python": [...]}``
- ``config``: the resolved training config as a plain dict

``best.pt`` leaves out the optimizer, scheduler, scaler and RNG states (resume from ``last.pt``).
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ibntrack.fileio import atomic_open
from ibntrack.nn.model import ModelConfig, TrackerNet, build_model_from_config
from ibntrack.nn.norm import running_stats

__all__ = [
    "CheckpointError",
    "bn_running_stats",
    "load_checkpoint",
    "load_model",
    "load_state_checked",
    "save_checkpoint",
]

_PRIMITIVES = (str, int, float, bool, type(None))


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable, or does not fit the model it is loaded into."""


def save_checkpoint(path: str | os.PathLike, payload: Mapping[str, Any]) -> Path:
    """Write ``payload`` with ``torch.save`` atomically.

    The bytes go to a temporary file in the destination folder, are flushed and fsynced, and the file
    is renamed over ``path`` (``os.replace``), so a crash never leaves a half-written checkpoint and
    readers see either the old or the new file.

    Args:
        path: destination file (its folder is created).
        payload: a dict of tensors, str/int/float/bool/None, and lists/tuples/dicts of them — exactly
            what ``torch.load(weights_only=True)`` accepts.

    Raises:
        ValueError: ``payload`` holds another type (the message gives the key path).
    """
    if not isinstance(payload, Mapping):
        raise ValueError(f"checkpoint payload must be a dict, got {type(payload).__name__}")
    _check_plain(payload, "payload")
    path = Path(path)
    with atomic_open(path, "wb") as f:
        torch.save(dict(payload), f)
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``torch.load(weights_only=True)``.

    Raises:
        CheckpointError: the file does not exist, is not a torch file (corrupt, truncated, another
            format), holds objects other than tensors and plain values, or is not a dict.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"checkpoint {path} is corrupt or holds objects other than tensors and plain values "
            f"(weights_only load refused it): {str(exc).splitlines()[0]}"
        ) from exc
    except Exception as exc:  # the unpickler fails in many ways on bad bytes (IndexError, EOFError, ...)
        raise CheckpointError(f"checkpoint {path} is corrupt or not a torch checkpoint: {exc}") from exc
    if not isinstance(obj, dict):
        raise CheckpointError(
            f"checkpoint {path} is not a checkpoint: it holds a {type(obj).__name__}, not a dict"
        )
    return obj


def load_model(
    path: str | os.PathLike, device: str | torch.device = "cpu"
) -> tuple[TrackerNet, dict[str, Any]]:
    """Rebuild the network stored in a checkpoint.

    Args:
        path: a checkpoint written by `fit` (needs ``model`` and ``model_config``).
        device: where to put the model.

    Returns:
        ``(model, ckpt)``: the model in eval mode with the checkpoint's weights, and the checkpoint dict
        (``class_names``, ``num_ids``, ``train_scene``, ``bn_stats``, ...).

    Raises:
        CheckpointError: unreadable file, missing keys, or weights that do not fit the architecture.
    """
    ckpt = load_checkpoint(path)
    for key in ("model", "model_config"):
        if key not in ckpt:
            raise CheckpointError(
                f"checkpoint {path} has no {key!r}: not an ibntrack model checkpoint "
                f"(keys: {', '.join(map(str, ckpt))})"
            )
    try:
        config = ModelConfig.from_dict(ckpt["model_config"])
    except (TypeError, ValueError, KeyError) as exc:
        raise CheckpointError(f"checkpoint {path} has an invalid model_config: {exc}") from exc
    model = build_model_from_config(config)
    load_state_checked(model, ckpt["model"], source=path, arch=_arch(ckpt["model_config"]))
    model.to(device)
    model.eval()
    return model, ckpt


def load_state_checked(
    model: nn.Module, state: Mapping[str, torch.Tensor], source: str | os.PathLike, arch: str | None = None
) -> None:
    """``model.load_state_dict(state)`` (strict) with an error that says what does not match.

    Raises:
        CheckpointError: "checkpoint X is for arch A, the model is arch B: N missing keys (...), ...".
    """
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
        for k in own
        if k in state and isinstance(state[k], torch.Tensor) and state[k].shape != own[k].shape
    ]
    if missing or unexpected or shapes:
        model_arch = _arch(getattr(model, "config", None))
        problems = []
        if missing:
            problems.append(f"{len(missing)} missing keys ({_few(missing)})")
        if unexpected:
            problems.append(f"{len(unexpected)} unexpected keys ({_few(unexpected)})")
        if shapes:
            problems.append(f"{len(shapes)} shape mismatches ({_few(shapes)})")
        raise CheckpointError(
            f"checkpoint {source} is for arch {arch or 'unknown'}, the model is arch "
            f"{model_arch or 'unknown'}: " + "; ".join(problems)
        )
    model.load_state_dict(state, strict=True)


def bn_running_stats(model: nn.Module) -> dict[str, dict[str, torch.Tensor]]:
    """Running statistics of every BatchNorm layer (IBN's BN half included), on CPU.

    Returns:
        ``{module_name: {"mean": Tensor[C] float32, "var": Tensor[C] float32}}``.
    """
    stats = {}
    for name, module in model.named_modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.running_mean is not None:
            mean, var = running_stats(module)
            stats[name] = {
                "mean": mean.detach().float().cpu().clone(),
                "var": var.detach().float().cpu().clone(),
            }
    return stats


def _arch(model_config: Any) -> str | None:
    if model_config is None:
        return None
    if isinstance(model_config, Mapping):
        return model_config.get("arch")
    return getattr(model_config, "arch", None)


def _few(items: list[str], n: int = 3) -> str:
    return ", ".join(items[:n]) + (", ..." if len(items) > n else "")


def _check_plain(obj: Any, where: str) -> None:
    if isinstance(obj, torch.Tensor) or isinstance(obj, _PRIMITIVES):
        return
    if isinstance(obj, Mapping):
        for key, value in obj.items():
            if not isinstance(key, (str, int)):
                raise ValueError(f"checkpoint {where} has a key of type {type(key).__name__}; use str or int")
            _check_plain(value, f"{where}[{key!r}]")
        return
    if isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            _check_plain(value, f"{where}[{i}]")
        return
    raise ValueError(
        f"checkpoint {where} is a {type(obj).__name__}; only tensors, str/int/float/bool/None and "
        "lists/tuples/dicts of them load with weights_only=True"
    )
