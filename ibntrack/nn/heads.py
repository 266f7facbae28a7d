"""Prediction heads read from the stride-4 neck map, declared by a ``{name: channels}`` spec.

Each head is ``3×3 conv(head_conv) → ReLU → 1×1 conv(channels)``. The FairMOT set
(:func:`fairmot_spec`) is:

* ``hm``: heatmap logits, one channel per class; final bias ``HM_BIAS_INIT = −2.19`` so the initial
  sigmoid is about 0.1 (CenterNet), which keeps the focal loss stable at the start;
* ``wh``: (left, top, right, bottom) distances from the centre to the box sides in stride-4 cells. The
  output is ``exp(clamp(raw, max=WH_LOG_MAX))``: non-negative, and bounded by ``e⁸ ≈ 2981`` cells. The
  final bias starts at ``WH_BIAS_INIT = log 4`` (weights near 0), so an untrained head predicts boxes of
  8×8 cells (32×32 input pixels) instead of degenerate ones;
* ``reg``: raw sub-cell centre offset (dx, dy);
* ``id``: raw appearance embedding (the ReID loss and the decoder normalise it).

Other names are raw outputs with the default init.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import Tensor, nn

__all__ = ["HM_BIAS_INIT", "Heads", "WH_BIAS_INIT", "WH_LOG_MAX", "fairmot_spec"]

HM_BIAS_INIT = -2.19  # -log((1 - 0.1) / 0.1): initial heatmap probability ~0.1
WH_BIAS_INIT = math.log(4.0)  # initial ltrb distances of 4 cells
WH_LOG_MAX = 8.0  # clamp of the raw wh output before exp
FINAL_WEIGHT_STD = 1e-3  # std of the final 1x1 conv weights of the non-heatmap heads (FairMOT)


def fairmot_spec(num_classes: int = 1, emb_dim: int = 128) -> dict[str, int]:
    """The FairMOT head spec ``{'hm': num_classes, 'wh': 4, 'reg': 2, 'id': emb_dim}``."""
    return {"hm": num_classes, "wh": 4, "reg": 2, "id": emb_dim}


class Heads(nn.Module):
    """One small conv head per entry of ``spec``.

    Args:
        in_channels: channels of the input map.
        spec: ``{name: output channels}``, e.g. :func:`fairmot_spec`.
        head_conv: channels of the hidden 3×3 conv.

    Shapes:
        ``forward(x: Tensor[N, in_channels, h, w]) -> {name: Tensor[N, spec[name], h, w]}``.
    """

    def __init__(self, in_channels: int, spec: Mapping[str, int], head_conv: int = 256) -> None:
        super().__init__()
        if not spec:
            raise ValueError("spec must name at least one head")
        for name, channels in spec.items():
            if isinstance(channels, bool) or not isinstance(channels, int) or channels <= 0:
                raise ValueError(f"spec[{name!r}] must be a positive int, got {channels!r}")
        if head_conv <= 0:
            raise ValueError(f"head_conv must be positive, got {head_conv!r}")
        self.spec = dict(spec)
        self.heads = nn.ModuleDict(
            {
                name: nn.Sequential(
                    nn.Conv2d(in_channels, head_conv, 3, padding=1, bias=True),
                    nn.ReLU(inplace=True),
                    nn.Conv2d(head_conv, channels, 1, bias=True),
                )
                for name, channels in spec.items()
            }
        )
        self._init_weights()

    def _init_weights(self) -> None:
        for name, head in self.heads.items():
            assert isinstance(head, nn.Sequential)
            final = head[-1]
            assert isinstance(final, nn.Conv2d) and final.bias is not None
            if name == "hm":
                nn.init.constant_(final.bias, HM_BIAS_INIT)
            elif name in ("wh", "reg", "id"):
                nn.init.normal_(final.weight, std=FINAL_WEIGHT_STD)
                nn.init.constant_(final.bias, WH_BIAS_INIT if name == "wh" else 0.0)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        out = {name: head(x) for name, head in self.heads.items()}
        if "wh" in out:
            out["wh"] = torch.exp(torch.clamp(out["wh"], max=WH_LOG_MAX))
        return out
