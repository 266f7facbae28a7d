"""Automatic relevance (no scene words): how far each domain's first-stage feature statistics are from the
BN statistics a model recorded in training, and the relevance and sparsity factor that follow.

    python scripts/auto_relevance.py --weights ibntrack/assets/synth_summer_resnet18_ibn.pt \\
        --data runs/cross_domain/data/test --frames 8
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import torch

from ibntrack.data.transforms import letterbox, to_tensor
from ibntrack.engine.stream import estimate_relevance, feature_shift
from ibntrack.nn.checkpoint import load_model
from ibntrack.scene import sparsity_factor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True, help="folder of <domain>/<sequence>/img1")
    parser.add_argument("--frames", type=int, default=8, help="frames per domain (every 10th)")
    args = parser.parse_args()
    model, ckpt = load_model(args.weights)
    size = tuple(ckpt["input_size"])
    print(f"{'domain':<8}{'shift D':>9}{'relevance':>11}{'s':>4}")
    for domain_dir in sorted(p for p in args.data.iterdir() if p.is_dir()):
        files = sorted(next(domain_dir.iterdir()).glob("img1/*.jpg"))[::10][: args.frames]
        images = torch.stack([to_tensor(letterbox(cv2.imread(str(f)), size)[0]) for f in files])
        d = feature_shift(model, images)
        r = estimate_relevance(model, images)
        print(f"{domain_dir.name:<8}{d:>9.3f}{r:>11.2f}{sparsity_factor(r):>4}")


if __name__ == "__main__":
    main()
