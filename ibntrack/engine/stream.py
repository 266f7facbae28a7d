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

from ibntrack.config.inference import DEFAULT_DRIFT_THRESHOLD
from ibntrack.nn import force_refresh, reset_stream, stream_stats
from ibntrack.nn.norm import running_stats
from ibntrack.nn.sparse import Streamable

__all__ = ["StreamController", "frame_statistics", "DEFAULT_DRIFT_THRESHOLD"]


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
        model: a network with IBN layers (folded or not), or a runtime backend.
        drift_threshold: drift above which the next frame recomputes IN statistics; ``None`` turns
            event-driven refresh off (pure every-s-frames schedule).
    """

    def __init__(self, model: Streamable, drift_threshold: float | None = DEFAULT_DRIFT_THRESHOLD) -> None:
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


# ------------------------------------------------------------------------------- automatic relevance
def _first_stage_norms(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The first-stage norm (``bn1``) of every block of layer1–layer3 of an unfolded TrackerNet."""
    backbone = getattr(model, "backbone", None)
    if backbone is None:
        raise ValueError("automatic relevance needs an unfolded ibntrack model (with .backbone)")
    return [block.bn1 for name in ("layer1", "layer2", "layer3") for block in getattr(backbone, name)]


def _bn_view(norm: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.nn.BatchNorm2d] | None:
    """The channels of the first-stage input ``x`` that the norm's BatchNorm part sees, and that part."""
    from ibntrack.nn import IBN

    if isinstance(norm, IBN):
        if norm.bn is None:  # all-IN layer: no training statistics to compare with
            return None
        return (x if norm.mode == "mix" else x[:, norm.in_channels :]), norm.bn
    if isinstance(norm, torch.nn.BatchNorm2d):
        return x, norm
    return None


def feature_shift(model: torch.nn.Module, images: torch.Tensor) -> float:
    """Distance D between live first-stage feature statistics and the training BN statistics.

    For each first-stage norm of layer1–layer3 and each channel c its BatchNorm part sees, the live
    mean μ and variance σ² of the conv output over the images and pixels are compared with the BN running
    statistics (μ_t, σ_t²) recorded in training by the symmetric Kullback–Leibler divergence of the two
    Gaussians:

        d_c = ¼ (σ²/σ_t² + σ_t²/σ² − 2) + ¼ (μ − μ_t)² (1/σ² + 1/σ_t²)

    D is the mean of d_c over all channels of all those layers (0 when the statistics match).

    Args:
        model: an unfolded ibntrack network in eval mode (BN running statistics from training).
        images: ``[N, 3, H, W]`` network inputs (normalised, letterboxed) from the live scene.
    """
    captured: list[float] = []
    eps = 1e-5

    def hook(module, inputs):
        view = _bn_view(module, inputs[0])
        if view is None:
            return
        x, bn = view
        mu = x.mean(dim=(0, 2, 3))
        var = x.var(dim=(0, 2, 3), unbiased=False) + eps
        mu_t, var_t = running_stats(bn)
        var_t = var_t + eps
        d = 0.25 * (var / var_t + var_t / var - 2) + 0.25 * (mu - mu_t) ** 2 * (1 / var + 1 / var_t)
        captured.extend(d.tolist())

    handles = [norm.register_forward_pre_hook(hook) for norm in _first_stage_norms(model)]
    was_training = model.training
    try:
        model.eval()
        with torch.inference_mode():
            model(images)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    if not captured:
        raise ValueError("the model has no first-stage BatchNorm statistics to compare with")
    return float(np.mean(captured))


DEFAULT_SHIFT_SCALE = 0.1
"""τ of :func:`estimate_relevance`: a feature shift of τ maps to relevance e⁻¹ ≈ 0.37. Calibrated on the
shipped summer model: its own domain shifts by D ≈ 0.03 (r ≈ 0.75, s = 4), winter by 0.14 (r ≈ 0.25,
s = 3), rain, night and fog by 0.21–0.35 (r ≤ 0.12, s = 2); see docs/RESULTS.md."""


def estimate_relevance(
    model: torch.nn.Module, images: torch.Tensor, tau: float = DEFAULT_SHIFT_SCALE
) -> float:
    """Relevance of the live scene to the training scene when no scene words are given (beyond the patent).

    ``r = exp(−D / τ)`` with D from :func:`feature_shift`: 1 when the live first-stage statistics equal
    the training ones, falling towards 0 as they move apart. Feed it to
    :func:`ibntrack.scene.sparsity_factor`.
    """
    if tau <= 0:
        raise ValueError(f"tau must be > 0, got {tau}")
    return float(np.exp(-feature_shift(model, images) / tau))
