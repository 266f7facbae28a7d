"""Globally unique identity labels over several sequences and datasets.

MOTChallenge identity ids are local to a sequence (``id 1`` of MOT17-02 is not ``id 1`` of MOT17-04), so
when sequences from one or several datasets are mixed into one training set every sequence receives an
offset: global label = offset of the sequence + rank of the local id among the sequence's ids. The ReID
classifier then has ``num_ids`` classes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ibntrack.data.mot import Sequence

__all__ = ["IdentityMap", "assign_global_ids"]

_LOG = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class IdentityMap:
    """Local (sequence, MOT id) -> global identity label in ``[0, num_ids)``.

    Attributes:
        names: sequence names, in the order given.
        offsets: int [S], first global label of each sequence.
        local_ids: per sequence, the sorted unique local ids (int64) that received labels.
        num_ids: total number of identities.
    """

    names: tuple[str, ...]
    offsets: tuple[int, ...]
    local_ids: tuple[np.ndarray, ...]
    num_ids: int

    @property
    def counts(self) -> dict[str, int]:
        """Identities contributed by each sequence (name -> count; repeated names get ``#k`` suffixes)."""
        out: dict[str, int] = {}
        for name, ids in zip(self.names, self.local_ids, strict=True):
            key, k = name, 1
            while key in out:
                k += 1
                key = f"{name}#{k}"
            out[key] = int(ids.size)
        return out

    def to_global(self, seq_index: int, ids: np.ndarray) -> np.ndarray:
        """Global labels (int64, same shape as ``ids``) of local ids of sequence ``seq_index``.

        Ids that are negative or were not seen when the map was built map to -1 (unknown identity).
        """
        ids = np.asarray(ids, np.int64)
        table = self.local_ids[seq_index]
        pos = np.searchsorted(table, ids)
        pos_clipped = np.minimum(pos, max(table.size - 1, 0))
        found = (table.size > 0) & (ids >= 0)
        if table.size:
            found = found & (table[pos_clipped] == ids)
        return np.where(found, self.offsets[seq_index] + pos_clipped, -1).astype(np.int64)


def assign_global_ids(sequences: Iterable[Sequence], log: bool = True) -> IdentityMap:
    """Gives every identity of every sequence a globally unique label, in sequence order.

    Args:
        sequences: loaded sequences; their annotations (after filtering) define which ids exist.
        log: log the identities contributed per dataset (parent directory) and per sequence.

    Returns:
        An :class:`IdentityMap` (``num_ids``, ``counts`` per sequence, ``offsets``).
    """
    sequences = list(sequences)
    names, offsets, tables = [], [], []
    offset = 0
    for seq in sequences:
        chunks = [a.ids for a in seq.annotations.values()]
        ids = np.unique(np.concatenate(chunks)) if chunks else np.zeros(0, np.int64)
        ids = ids[ids >= 0].astype(np.int64)
        names.append(seq.name)
        offsets.append(offset)
        tables.append(ids)
        offset += int(ids.size)
    identity_map = IdentityMap(tuple(names), tuple(offsets), tuple(tables), offset)
    if log:
        per_dataset: dict[str, list[int]] = {}
        for seq, ids in zip(sequences, tables, strict=True):
            per_dataset.setdefault(seq.path.parent.name or str(seq.path), []).append(int(ids.size))
        summary = ", ".join(f"{d} {sum(c)} ({len(c)} seq)" for d, c in per_dataset.items())
        per_seq = ", ".join(f"{k} {v}" for k, v in identity_map.counts.items())
        _LOG.info("identities: %d in total; per dataset: %s; per sequence: %s", offset, summary, per_seq)
    return identity_map
