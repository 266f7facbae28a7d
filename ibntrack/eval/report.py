"""The result of an evaluation: :class:`EvalReport` (per sequence, per class, combined) and its formats.

Ratios (HOTA, MOTA, IDF1, …) are fractions (1.0 = 100 %), counts (IDSW, FP, FN, …) ints. Tables print
ratios as percentages with one decimal, MOTChallenge style. Made by :func:`ibntrack.eval.metrics.evaluate`.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ibntrack.fileio import atomic_write_text

__all__ = ["COMBINED", "COUNT_METRICS", "RATIO_METRICS", "TABLE_COLUMNS", "EvalReport"]

#: Row name of the combination over all sequences and classes.
COMBINED = "COMBINED"
#: Metrics that are fractions (shown as percentages in tables).
RATIO_METRICS: tuple[str, ...] = (
    "HOTA", "DetA", "AssA", "DetRe", "DetPr", "AssRe", "AssPr", "LocA",
    "MOTA", "MOTP", "Rcll", "Prcn", "IDF1", "IDR", "IDP",
)  # fmt: skip
#: Metrics that are counts.
COUNT_METRICS: tuple[str, ...] = (
    "IDSW", "Frag", "FP", "FN", "TP", "MT", "PT", "ML", "IDTP", "IDFP", "IDFN",
    "GT_Dets", "Dets", "GT_IDs", "IDs",
)  # fmt: skip
#: Columns of :meth:`EvalReport.to_table` by default.
TABLE_COLUMNS: tuple[str, ...] = (
    "HOTA", "DetA", "AssA", "MOTA", "IDF1", "IDSW", "MOTP", "DetRe", "DetPr", "FP", "FN", "Frag",
)  # fmt: skip


@dataclass(frozen=True)
class EvalReport:
    """Metrics of one tracker on a set of sequences.

    Attributes:
        per_sequence: ``{sequence name: {metric: value}}`` (combined over the evaluated classes).
        combined: ``{metric: value}`` over all sequences and classes.
        per_class: ``{class label: {metric: value}}`` over all sequences; one entry (``"all"`` for
            class-agnostic evaluation, else the MOT17 class name or ``"class<id>"``).
    """

    per_sequence: dict[str, dict[str, float]]
    combined: dict[str, float]
    per_class: dict[str, dict[str, float]] = field(default_factory=dict)

    def _rows(self) -> list[tuple[str, dict[str, float]]]:
        rows = list(self.per_sequence.items())
        if len(self.per_class) > 1:
            rows += [(f"class:{name}", m) for name, m in self.per_class.items()]
        rows.append((COMBINED, self.combined))
        return rows

    def to_table(self, columns: Sequence[str] = TABLE_COLUMNS) -> str:
        """Fixed-width text table: one row per sequence (then per class if several), then COMBINED.

        Ratios are printed as percentages with one decimal (MOTChallenge style), counts as integers.
        """
        unknown = [c for c in columns if c not in self.combined]
        if unknown:
            raise ValueError(f"columns: unknown metric(s) {unknown}; known: {', '.join(self.combined)}")
        rows = self._rows()
        name_w = max(len("Sequence"), *(len(n) for n, _ in rows))
        cells = [[_format_value(c, m[c]) for c in columns] for _, m in rows]
        widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
        lines = [
            "  ".join(["Sequence".ljust(name_w), *(c.rjust(w) for c, w in zip(columns, widths, strict=True))])
        ]
        for (name, _), row in zip(rows, cells, strict=True):
            lines.append(
                "  ".join([name.ljust(name_w), *(v.rjust(w) for v, w in zip(row, widths, strict=True))])
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form (what :meth:`to_json` writes)."""
        return {
            "per_sequence": self.per_sequence,
            "per_class": self.per_class,
            "combined": self.combined,
        }

    def to_json(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`to_dict` as JSON (atomically). Returns the path."""
        return atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")

    def to_csv(self, path: str | os.PathLike[str]) -> Path:
        """Write one CSV row per sequence (then ``class:<name>`` rows if several classes) and COMBINED.

        Columns: ``name`` then every metric; ratios as fractions, counts as integers. Atomic write.
        """
        metrics = list(self.combined)
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["name", *metrics])
        for name, m in self._rows():
            writer.writerow([name, *(m[k] for k in metrics)])
        return atomic_write_text(path, buf.getvalue())


def _format_value(name: str, value: float) -> str:
    if name in RATIO_METRICS:
        return f"{100.0 * value:.1f}"
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.3f}"
