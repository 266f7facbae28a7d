"""Test-time BN adaptation (beyond the patent): BatchNorm statistics re-estimated from the live stream.

IBN's instance norm strips a new scene's style, but the batch-norm channels (the BN half of every IBN
layer, and the stem, second-stage, shortcut and neck BNs) still normalise with the statistics recorded in
training. :class:`BNAdapter` re-estimates them from the first ``K`` frames of a stream and then freezes
them:

* frame ``t < K`` is normalised with the statistics of frames ``0 … t`` (no look-ahead, no buffering):
  at every BN layer the batch statistics of its input are pooled into the estimate *before* the layer
  normalises, so later layers see the earlier layers' adapted output;
* the pooled statistics of ``n`` frames are those of the ``n`` frames as one batch: mean ``μ_t`` and biased
  variance ``σ_t²`` over every pixel of every frame (per-frame moments combined exactly, Chan et al.);
* the source (training) statistics ``μ_s, σ_s²`` are a prior of strength ``N`` frames (Schneider et al.,
  "Improving robustness against common corruptions by covariate shift adaptation", NeurIPS 2020):

      μ = (N·μ_s + n·μ_t) / (N + n),    σ² = (N·σ_s² + n·σ_t²) / (N + n);

  ``N = 0`` uses the stream's statistics alone (frame 0 then normalises the BN channels with one image's
  statistics). The default :data:`DEFAULT_ADAPT_PRIOR` = 8 frames is a choice, not tuned (Schneider et
  al. tune ``N`` per target batch size): the first frame is normalised 89 % with the source statistics,
  the 8th (``t = 7``) half and half, and after ``K = 30`` frames the frozen estimate keeps 21 % of them;
* after ``K`` frames the estimate is frozen: the network is plain eval-mode BN again, with the adapted
  statistics, and can be folded (:func:`ibntrack.nn.fold.fold_model`).

The adapter works on the **unfolded** network (the one that computes BN); whoever runs a folded copy
runs the adapter's network for the first ``K`` frames and folds it again afterwards
(:class:`ibntrack.runtime.TorchBackend` does). It composes with sparse IN: the IBN layers keep their own
refresh schedule and cached IN statistics; only BN running statistics change. A running average that
never freezes is not offered: every frame would then run unfolded and refold.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch
from torch import Tensor, nn

from ibntrack.nn.fold import FoldedConvIBN
from ibntrack.nn.norm import IBN, running_stats

__all__ = ["DEFAULT_ADAPT_PRIOR", "BNAdapter", "check_adapt_frames"]

DEFAULT_ADAPT_PRIOR = 8.0
"""Prior strength ``N`` of the source statistics, in frames (see the module docstring)."""


def check_adapt_frames(k: object) -> int:
    """``k`` itself when it is an int ≥ 0 (0 = no adaptation).

    Raises:
        ValueError: ``k`` is not an int ≥ 0 (a bool, a float or a string included).
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise ValueError(f"adapt_bn (--adapt-bn) must be an int >= 0 frames (0 = off), got {k!r}")
    return k


def _check_prior(prior: object) -> float:
    if isinstance(prior, bool) or not isinstance(prior, int | float) or not 0.0 <= prior < math.inf:
        raise ValueError(f"adapt_bn_prior must be a finite number >= 0 (frames), got {prior!r}")
    return float(prior)


@dataclasses.dataclass
class _Site:
    """One BatchNorm whose statistics are adapted, hooked on the module that sees its input.

    ``owner`` is the BN itself, or the IBN layer holding it: IBN normalises its BN channels without
    calling the BN module on frames that reuse cached IN statistics, so the IBN's input is watched.
    """

    owner: nn.Module
    bn: nn.BatchNorm2d
    source_mean: Tensor  # [C] the training statistics
    source_var: Tensor
    mean: Tensor | None = None  # [C] pooled statistics of the frames seen, fp32
    var: Tensor | None = None

    def bn_input(self, x: Tensor) -> Tensor:
        """The channels of the owner's input ``x: [N, C_owner, H, W]`` that the BN normalises."""
        if isinstance(self.owner, IBN) and self.owner.mode == "split":
            return x[:, self.owner.in_channels :]
        return x


def _sites(model: nn.Module) -> list[_Site]:
    in_ibn = {id(m.bn) for m in model.modules() if isinstance(m, IBN) and m.bn is not None}
    sites = []
    for module in model.modules():
        owner: nn.Module
        bn: nn.BatchNorm2d | None
        if isinstance(module, IBN):
            owner, bn = module, module.bn
        elif isinstance(module, nn.BatchNorm2d) and id(module) not in in_ibn:
            owner, bn = module, module
        else:
            continue
        if bn is None or not bn.track_running_stats:  # no BN channels, or BN that always uses batch stats
            continue
        mean, var = running_stats(bn)
        sites.append(_Site(owner, bn, mean.detach().clone(), var.detach().clone()))
    return sites


class BNAdapter:
    """Re-estimates the BatchNorm statistics of ``model`` from the first ``frames`` frames of a stream.

    Args:
        model: an unfolded network in eval mode (e.g. :class:`~ibntrack.nn.model.TrackerNet`); its BN
            running statistics are changed in place (:meth:`reset` restores the training ones).
        frames: ``K``, frames adapted before the statistics freeze (int ≥ 1).
        prior: ``N``, strength of the training statistics as a prior, in frames (≥ 0; 0 = none).

    Attributes:
        model, frames, prior: as given.
        seen: frames adapted since the last reset (at most ``frames``).

    Raises:
        ValueError: bad ``frames`` or ``prior``; a folded network (its BN is inside the convolutions).
    """

    def __init__(self, model: nn.Module, frames: int, prior: float = DEFAULT_ADAPT_PRIOR) -> None:
        if check_adapt_frames(frames) < 1:
            raise ValueError(f"frames must be an int >= 1, got {frames!r}")
        if any(isinstance(m, FoldedConvIBN) for m in model.modules()):
            raise ValueError("BNAdapter needs the unfolded network (a folded one has BN in its convolutions)")
        self.model = model
        self.frames = frames
        self.prior = _check_prior(prior)
        self.seen = 0
        self._sites = _sites(model)

    @property
    def active(self) -> bool:
        """The next frame is still adapted (fewer than ``frames`` seen since the last reset)."""
        return self.seen < self.frames

    @property
    def remaining(self) -> int:
        """Frames left to adapt."""
        return self.frames - self.seen

    @property
    def num_layers(self) -> int:
        """BatchNorm layers adapted (IBN layers' BN halves included)."""
        return len(self._sites)

    @torch.no_grad()
    def reset(self) -> None:
        """A new stream: restore the training statistics; the next frame adapts from scratch."""
        for site in self._sites:
            mean, var = running_stats(site.bn)
            mean.copy_(site.source_mean)
            var.copy_(site.source_var)
            site.mean = site.var = None
        self.seen = 0

    def step(self, images: Tensor) -> Any:
        """Run ``model(images)`` on the next ``N`` frames of the stream, adapting as it goes.

        Every BN pools the statistics of its input into the estimate, writes the estimate (mixed with the
        prior) into its running statistics, then normalises with them. The ``N`` frames of one call share
        one estimate (which includes all of them): feed one frame per call for no look-ahead.

        Args:
            images: the network input ``[N, 3, H, W]``; ``N`` at most :attr:`remaining`.

        Returns:
            What ``model`` returns.

        Raises:
            ValueError: the model is in training mode, or ``N`` exceeds the frames left to adapt.
        """
        n = int(images.shape[0])
        if self.model.training:
            raise ValueError("BNAdapter.step needs the model in eval mode")
        if n > self.remaining:
            raise ValueError(f"step got {n} frames, only {self.remaining} of {self.frames} left to adapt")
        handles = [site.owner.register_forward_pre_hook(self._hook(site, n)) for site in self._sites]
        try:
            out = self.model(images)
        finally:
            for handle in handles:
                handle.remove()
        self.seen += n
        return out

    def _hook(self, site: _Site, n: int):
        def hook(module: nn.Module, inputs: tuple[Tensor, ...]) -> None:
            self._update(site, site.bn_input(inputs[0]), n)

        return hook

    @torch.no_grad()
    def _update(self, site: _Site, x: Tensor, n: int) -> None:
        """Pool the statistics of ``x: [n, C, H, W]`` (the BN's input) and write the estimate into the BN."""
        x = x.detach().float()
        frame_mean = x.mean(dim=(2, 3))  # [n, C]
        frame_var = (x - frame_mean[:, :, None, None]).square().mean(dim=(2, 3))  # [n, C], biased
        batch_mean = frame_mean.mean(0)  # [C]: the n frames as one batch
        batch_var = frame_var.mean(0) + (frame_mean - batch_mean).square().mean(0)
        seen = self.seen
        total = seen + n
        if site.mean is None or site.var is None or seen == 0:
            mean, var = batch_mean, batch_var
        else:  # Chan et al.'s exact combination of two groups' mean and biased variance
            delta = batch_mean - site.mean
            mean = site.mean + delta * (n / total)
            var = (site.var * seen + batch_var * n) / total + delta.square() * (seen * n / total**2)
        site.mean, site.var = mean, var
        w = self.prior / (self.prior + total)  # weight of the training statistics
        running_mean, running_var = running_stats(site.bn)
        running_mean.copy_(w * site.source_mean.to(mean) + (1.0 - w) * mean)
        running_var.copy_(w * site.source_var.to(var) + (1.0 - w) * var)

    def __repr__(self) -> str:
        return (
            f"BNAdapter(frames={self.frames}, prior={self.prior:g}, seen={self.seen}, "
            f"layers={self.num_layers})"
        )
