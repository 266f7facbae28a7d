"""Training charts: the loss curves of a ``train_log.jsonl`` drawn into a PNG with OpenCV."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from ibntrack.fileio import atomic_write_bytes

__all__ = ["plot_loss_curves"]

_SERIES = (
    ("total", (200, 80, 20)),
    ("det", (40, 140, 40)),
    ("id", (30, 30, 200)),
    ("val det", (160, 40, 160)),
)


def plot_loss_curves(log_path: Path, png_path: Path, size: tuple[int, int] = (900, 500)) -> None:
    """Draw the loss curves of a ``train_log.jsonl`` into a PNG (OpenCV; atomic write).

    Step records give ``total``, ``det`` and ``id`` against the optimizer step; epoch records with a
    validation result give ``val det`` points.
    """
    import cv2

    series: dict[str, list[tuple[float, float]]] = {name: [] for name, _ in _SERIES}
    for line in log_path.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if rec.get("event") == "step":
            for key in ("total", "det", "id"):
                if math.isfinite(rec.get(key, math.nan)):
                    series[key].append((rec["step"], rec[key]))
        elif rec.get("event") == "epoch" and rec.get("val"):
            series["val det"].append((rec["step"], rec["val"]["det"]))
    points = [p for pts in series.values() for p in pts]
    if not points:
        return
    width, height = size
    left, right, top, bottom = 80, 150, 40, 60
    img = np.full((height, width, 3), 255, np.uint8)
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    x0, x1 = min(xs), max(max(xs), min(xs) + 1)
    y0, y1 = min(ys), max(ys)
    if y1 - y0 < 1e-9:
        y0, y1 = y0 - 0.5, y1 + 0.5
    pad = 0.05 * (y1 - y0)
    y0, y1 = y0 - pad, y1 + pad

    def to_px(x: float, y: float) -> tuple[int, int]:
        px = left + (x - x0) / (x1 - x0) * (width - left - right)
        py = height - bottom - (y - y0) / (y1 - y0) * (height - top - bottom)
        return int(round(px)), int(round(py))

    font, black, grey = cv2.FONT_HERSHEY_SIMPLEX, (0, 0, 0), (225, 225, 225)
    for i in range(6):  # grid and tick labels
        yv = y0 + (y1 - y0) * i / 5
        xv = x0 + (x1 - x0) * i / 5
        _, py = to_px(x0, yv)
        px, _ = to_px(xv, y0)
        cv2.line(img, (left, py), (width - right, py), grey, 1)
        cv2.line(img, (px, top), (px, height - bottom), grey, 1)
        cv2.putText(img, f"{yv:.3g}", (5, py + 5), font, 0.45, black, 1, cv2.LINE_AA)
        cv2.putText(img, f"{xv:.0f}", (px - 12, height - bottom + 20), font, 0.45, black, 1, cv2.LINE_AA)
    cv2.rectangle(img, (left, top), (width - right, height - bottom), black, 1)
    cv2.putText(
        img, "step", ((left + width - right) // 2 - 15, height - 15), font, 0.55, black, 1, cv2.LINE_AA
    )
    cv2.putText(img, "loss", (5, top - 15), font, 0.55, black, 1, cv2.LINE_AA)
    cv2.putText(img, "ibntrack training loss", (left + 150, top - 15), font, 0.6, black, 1, cv2.LINE_AA)
    for row, (name, color) in enumerate(_SERIES):
        pts = series[name]
        if not pts:
            continue
        poly = np.array([to_px(x, y) for x, y in pts], np.int32).reshape(-1, 1, 2)  # [P, 1, 2] for cv2
        if len(pts) > 1 and name != "val det":
            cv2.polylines(img, [poly], False, color, 2, cv2.LINE_AA)
        for p in poly[:, 0] if name == "val det" or len(pts) == 1 else ():
            cv2.circle(img, (int(p[0]), int(p[1])), 4, color, -1, cv2.LINE_AA)
        ly = top + 20 + 22 * row
        cv2.line(img, (width - right + 15, ly), (width - right + 45, ly), color, 3)
        cv2.putText(img, name, (width - right + 52, ly + 5), font, 0.5, black, 1, cv2.LINE_AA)
    ok, buf = cv2.imencode(".png", img)
    if not ok:
        raise ValueError("PNG encoding failed")
    atomic_write_bytes(png_path, buf.tobytes())
