"""Streaming sparse instance normalisation: event-driven refresh of the cached IN statistics.

With sparsity factor s the IBN layers recompute their instance-norm statistics every s frames and reuse
the cached ones in between (see :mod:`ibntrack.nn.norm`). That is safe while the scene's style stays the
same; a camera cut or a light switched on changes it at once. :class:`StreamController` watches cheap
statistics of the input and forces a refresh when they drift.

Drift measure (documented, deliberately simple): the frame is shrunk to a ``thumb`` (64×36 by default,
area interpolation) and scaled to [0, 1]; per colour channel c we take the mean μ_c and standard deviation
σ_c. At each refresh these become the reference (μ*, σ*). On every later frame

    drift = max_c ( |μ_c − μ*_c| + |σ_c − σ*_c| )

and a refresh is forced when ``drift > drift_threshold`` (default 0.1, i.e. a tenth of the full intensity
range). People walking through a static scene move it by less than 0.01 on our synthetic world; a cut
between domains or a light switched on moves it by 0.1–0.5.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from ibntrack.nn import force_refresh, reset_stream, stream_stats

__all__ = ["StreamController", "frame_statistics", "DEFAULT_DRIFT_THRESHOLD"]

DEFAULT_DRIFT_THRESHOLD = 0.1


def frame_statistics(frame_bgr: np.ndarray, thumb: tuple[int, int] = (64, 36)) -> np.ndarray:
    """Per-channel mean and standard deviation of a downscaled frame.

    Args:
        frame_bgr: ``[H, W, 3] uint8``.
        thumb: (width, height) of the thumbnail.

    Returns:
        ``float32 [2, 3]``: row 0 the means, row 1 the standard deviations, in [0, 1] units.
    """
    small = cv2.resize(frame_bgr, thumb, interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    flat = small.reshape(-1, small.shape[-1])  # [h*w, 3]
    return np.stack([flat.mean(0), flat.std(0)])


class StreamController:
    """Forces an IN refresh when the input's style drifts (beyond the patent's fixed interval).

    Args:
        model: a network with IBN layers (folded or not).
        drift_threshold: drift above which the next frame recomputes IN statistics; ``None`` turns
            event-driven refresh off (pure every-s-frames schedule).
    """

    def __init__(self, model: torch.nn.Module, drift_threshold: float | None = DEFAULT_DRIFT_THRESHOLD) -> None:
        if drift_threshold is not None and drift_threshold <= 0:
            raise ValueError(f"drift_threshold must be > 0 or None, got {drift_threshold}")
        self.model = model
        self.drift_threshold = drift_threshold
        self.reference: np.ndarray | None = None
        self.forced = 0
        self.last_drift = 0.0
        self._pending: np.ndarray | None = None
        self._refreshes_before = 0

    def reset(self) -> None:
        """New stream: clears cached IN statistics and the reference."""
        reset_stream(self.model)
        self.reference = None
        self.forced = 0

    def before_frame(self, frame_bgr: np.ndarray) -> bool:
        """Call before the network sees ``frame_bgr``; returns True when a refresh was forced."""
        forced = False
        if self.drift_threshold is not None:
            stats = frame_statistics(frame_bgr)
            if self.reference is not None:
                self.last_drift = float(np.abs(stats - self.reference).sum(0).max())
                if self.last_drift > self.drift_threshold:
                    force_refresh(self.model)
                    self.forced += 1
                    forced = True
            self._pending = stats
        self._refreshes_before = stream_stats(self.model)["refreshes"]
        return forced

    def after_frame(self) -> None:
        """Call after the network ran: a frame that refreshed IN becomes the drift reference."""
        if self._pending is not None and stream_stats(self.model)["refreshes"] > self._refreshes_before:
            self.reference = self._pending

    def stats(self) -> dict[str, int]:
        """``frames`` seen, IN ``refreshes`` done, and how many refreshes drift ``forced``."""
        return {**stream_stats(self.model), "forced": self.forced}
