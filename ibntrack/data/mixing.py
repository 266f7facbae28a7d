"""Per-dataset sampling weights for mixed training data (``data.train_weights``).

``data.train: [data/MOT17/train, data/crowdhuman]`` with ``data.train_weights: [1.0, 0.5]`` draws, in every
epoch, a share ``w_d / Σ w`` of the epoch's samples from dataset ``d`` (the ``d``-th entry of
``data.train``, all the sequences found under it), whatever the datasets' sizes. The epoch keeps the
length of the whole training set. Inside a dataset frames are drawn without replacement (a fresh random
order each time the dataset is used up), so a dataset with a large share repeats frames and one with a
small share sees a different subset every epoch. The order depends only on ``(seed, epoch)``, so a resumed
run draws the same batches; under DDP each rank takes every ``world_size``-th index of one shared order.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from torch.utils.data import Sampler

__all__ = ["WeightedMixSampler", "dataset_groups", "sample_groups", "share_counts"]


def share_counts(weights: Sequence[float], total: int) -> list[int]:
    """``total`` split in proportion to ``weights`` (largest remainders; ties to the earlier dataset).

    Raises:
        ValueError: a weight that is negative or not finite, or weights summing to 0.
    """
    w = np.asarray(weights, np.float64)
    if w.ndim != 1 or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"sampling weights must be finite, >= 0 and not all 0, got {list(weights)}")
    exact = total * w / w.sum()
    counts = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: total - int(counts.sum())]] += 1
    return counts.tolist()


def dataset_groups(sequences: Sequence, roots: Sequence[str | os.PathLike]) -> list[int]:
    """Index of the ``roots`` entry (``data.train``) each sequence was found under (the first that holds it).

    Raises:
        ValueError: a sequence under none of the roots.
    """
    resolved = [Path(r).resolve() for r in roots]
    out = []
    for seq in sequences:
        path = Path(seq.path).resolve()
        for i, root in enumerate(resolved):
            if path == root or root in path.parents:
                out.append(i)
                break
        else:
            raise ValueError(f"sequence {seq.path} is under none of data.train {list(map(str, roots))}")
    return out


def sample_groups(
    dataset_samples: Sequence[tuple[int, int]], seq_groups: Sequence[int], n: int
) -> list[list[int]]:
    """Dataset item indices per group: item ``i`` (``(sequence index, frame)``) of sequence ``s`` goes to
    group ``seq_groups[s]``; ``n`` groups."""
    groups: list[list[int]] = [[] for _ in range(n)]
    for i, (s, _frame) in enumerate(dataset_samples):
        groups[seq_groups[s]].append(i)
    return groups


class WeightedMixSampler(Sampler[int]):
    """Indices of a dataset made of groups, each group drawn with its share of every epoch.

    Args:
        groups: per dataset, the item indices belonging to it.
        weights: one sampling weight per group (``>= 0``, not all 0); a group with weight 0 is never
            drawn; a group without items and a positive weight is an error.
        num_samples: items per epoch over all ranks (default: all items of all groups).
        num_replicas: DDP world size.
        rank: this process's rank.
        seed: base seed; the order of an epoch depends on ``(seed, epoch)`` only.

    ``len(sampler)`` is the number of indices this rank gets per epoch (``ceil(num_samples /
    num_replicas)``, the shared order padded by wrapping around, as ``DistributedSampler``).
    """

    def __init__(
        self,
        groups: Sequence[Sequence[int]],
        weights: Sequence[float],
        num_samples: int | None = None,
        num_replicas: int = 1,
        rank: int = 0,
        seed: int = 0,
    ) -> None:
        if len(groups) != len(weights):
            raise ValueError(
                f"{len(weights)} sampling weights for {len(groups)} datasets: give one per dataset"
            )
        self.groups = [np.asarray(g, np.int64) for g in groups]
        empty = [i for i, g in enumerate(self.groups) if g.size == 0 and weights[i] > 0]
        if empty:
            raise ValueError(f"dataset(s) {empty} have a sampling weight but no annotated frames")
        total = sum(int(g.size) for g in self.groups)
        self.num_samples = int(num_samples if num_samples is not None else total)
        if self.num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {self.num_samples}")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank must be in [0, {num_replicas}), got {rank}")
        self.counts = share_counts(weights, self.num_samples)
        self.weights = [float(w) for w in weights]
        self.num_replicas, self.rank, self.seed = int(num_replicas), int(rank), int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose order :meth:`__iter__` gives."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return math.ceil(self.num_samples / self.num_replicas)

    def epoch_order(self) -> np.ndarray:
        """The shared order of this epoch (all ranks), ``[num_samples]`` item indices."""
        rng = np.random.default_rng([self.seed, self.epoch, 0x5EED])
        parts = []
        for group, count in zip(self.groups, self.counts, strict=True):
            if count == 0:
                continue
            laps = math.ceil(count / group.size)
            parts.append(np.concatenate([rng.permutation(group) for _ in range(laps)])[:count])
        order = np.concatenate(parts)
        return order[rng.permutation(order.size)]

    def __iter__(self) -> Iterator[int]:
        order = self.epoch_order()
        padded = len(self) * self.num_replicas
        if padded > order.size:
            order = np.concatenate([order, order[: padded - order.size]])
        return iter(order[self.rank : padded : self.num_replicas].tolist())
