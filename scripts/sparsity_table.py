"""HOTA of one model at several IN sparsity factors on the held-out shifted-domain sequences.

Reuses the data and scoring of ``scripts/cross_domain.py`` (same sequences, same thresholds), e.g. for
the shipped IBN model of the strong recipe::

    python scripts/sparsity_table.py --weights runs/strong/models/ibn-seed0/last.pt --data runs/strong/data

Prints a markdown table (mean HOTA / MOTA over each domain's sequences) and writes it with ``--out``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cross_domain import SHIFTED, score  # noqa: E402

from ibntrack.fileio import atomic_write_text  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", type=Path, required=True)
    p.add_argument(
        "--data", type=Path, required=True, help="the cross_domain data folder (with test/<domain>/)"
    )
    p.add_argument("--sparsity", type=int, nargs="+", default=[1, 2, 5, 10])
    p.add_argument("--work", type=Path, default=Path("runs/sparsity"))
    p.add_argument("--out", type=Path, help="write the markdown table here")
    args = p.parse_args()
    torch.set_num_threads(1)
    lines = ["| s | " + " | ".join(SHIFTED) + " |", "|---|" + "---|" * len(SHIFTED)]
    for s in args.sparsity:
        cells = []
        for domain in SHIFTED:
            seqs = sorted(p for p in (args.data / "test" / domain).iterdir() if p.is_dir())
            m = score(args.weights, seqs, args.work / f"s{s}" / domain, sparsity=s)
            cells.append(f"{100 * m['HOTA']:.1f} / {100 * m['MOTA']:.1f}")
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
    text = "HOTA / MOTA (%)\n\n" + "\n".join(lines) + "\n"
    print(text)
    if args.out:
        atomic_write_text(args.out, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
