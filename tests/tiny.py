"""The tiny checkpoint the pipeline tests track with: a quarter-width ResNet-18-IBN at 64x96 input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ibntrack.nn import build_model
from ibntrack.nn.checkpoint import save_checkpoint

TINY_INPUT = (64, 96)  # (H, W)


def save_tiny_checkpoint(
    path: Path,
    hm_bias: float = 3.0,
    class_names: tuple[str, ...] = ("pedestrian",),
    arch: str = "resnet18-ibn",
    **extra: Any,
) -> Path:
    """Writes a seeded tiny checkpoint whose heatmap logit bias is ``hm_bias`` (3.0 fires everywhere, so
    every stage has work); ``extra`` entries (e.g. ``tracker``) are added to the payload."""
    torch.manual_seed(0)
    model = build_model(arch, num_classes=len(class_names), emb_dim=8, width=0.25, head_conv=16)
    with torch.no_grad():
        model.heads.heads["hm"][-1].bias.fill_(hm_bias)
    save_checkpoint(
        path,
        {
            "model": model.state_dict(),
            "model_config": model.config.to_dict(),
            "class_names": list(class_names),
            "input_size": list(TINY_INPUT),
            "num_ids": 5,
            "train_scene": ["summer"],
            **extra,
        },
    )
    return path
