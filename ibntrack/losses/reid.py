"""Re-identification loss: identity classification of the appearance embeddings (FairMOT)."""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ReIDLoss"]

_IGNORE = -1


class ReIDLoss(nn.Module):
    """Cross-entropy over training identities of L2-normalised, scaled embeddings.

    The embedding is normalised and multiplied by FairMOT's `emb_scale = sqrt(2)·log(num_ids − 1)` (1.0
    when `num_ids <= 2`, where the formula is undefined or zero), then classified by `classifier`
    (`nn.Linear(emb_dim, num_ids)`, trained with the loss and discarded at inference).

    Args:
        emb_dim: embedding size `E`.
        num_ids: number of training identities (global, across all sequences).
    """

    def __init__(self, emb_dim: int, num_ids: int) -> None:
        super().__init__()
        if emb_dim < 1:
            raise ValueError(f"emb_dim must be >= 1, got {emb_dim}")
        if num_ids < 1:
            raise ValueError(f"num_ids must be >= 1, got {num_ids}")
        self.emb_dim = emb_dim
        self.num_ids = num_ids
        self.emb_scale = math.sqrt(2) * math.log(num_ids - 1) if num_ids > 2 else 1.0
        self.classifier = nn.Linear(emb_dim, num_ids)

    def forward(self, embeddings: Tensor, ids: Tensor) -> Tensor:
        """Mean cross-entropy over entries with a known identity.

        Args:
            embeddings: raw embeddings `[..., E]` (e.g. `[N, K, E]` gathered at object centres).
            ids: long `[...]` identity in `[0, num_ids)`, or −1 to ignore the entry.

        Returns:
            Scalar loss; 0 (still attached to the graph) when no entry has a known identity.
        """
        if embeddings.shape[-1] != self.emb_dim or embeddings.shape[:-1] != ids.shape:
            raise ValueError(
                f"embeddings must have shape [..., {self.emb_dim}] and ids its leading shape, got "
                f"{tuple(embeddings.shape)} and {tuple(ids.shape)}"
            )
        flat_emb = embeddings.reshape(-1, self.emb_dim)  # [..., E] -> [M, E]
        flat_ids = ids.reshape(-1).long()  # [...] -> [M]
        if flat_ids.numel() and (flat_ids.min() < _IGNORE or flat_ids.max() >= self.num_ids):
            raise ValueError(
                f"ids must be -1 or in [0, {self.num_ids}), got range "
                f"[{int(flat_ids.min())}, {int(flat_ids.max())}]"
            )
        logits = self.classifier(self.emb_scale * F.normalize(flat_emb, dim=-1))  # [M, num_ids]
        total = F.cross_entropy(logits, flat_ids, ignore_index=_IGNORE, reduction="sum")
        count = (flat_ids != _IGNORE).sum().clamp(min=1)
        return total / count.to(total.dtype)

    def extra_repr(self) -> str:
        return f"emb_dim={self.emb_dim}, num_ids={self.num_ids}, emb_scale={self.emb_scale:.4f}"
