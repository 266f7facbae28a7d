"""MOTChallenge metrics (HOTA, CLEAR, Identity) through TrackEval, for any class set.

``evaluate(gt, results_dir)`` scores result files ``<results_dir>/<seq>.txt``
(``frame,id,x,y,w,h,score,class,-1,-1``; ``class`` is ``-1`` for a class-less tracker) against the ground
truth of MOTChallenge sequences (``<seq>/gt/gt.txt`` = ``frame,id,x,y,w,h,flag,class,visibility`` and
``<seq>/seqinfo.ini`` with ``seqLength``), with the official TrackEval code (``pip install ibntrack[eval]``).
Ground truth is read by :func:`ibntrack.data.motio.read_gt`, like everywhere in ibntrack: files with 6–8
columns and the 10-column MOT15 layout ``frame,id,x,y,w,h,flag,x3d,y3d,z3d`` (world coordinates, not
class and visibility) are pedestrians (class 1) with visibility 1.

How classes are evaluated (TrackEval's MOTChallenge reader knows only "pedestrian"):

- Every input file is parsed and checked here first (errors name the file and the line). Each evaluated
  class is then written to a private temporary TrackEval layout as a single "pedestrian" class and scored
  with ``DO_PREPROC=False``: ground-truth rows with ``flag == 0`` are ignored (not counted as misses);
  results are not filtered (a result box on an ignored object is a false positive). An identity is a
  (class, id) pair, in ground truth and results alike: ids may repeat across classes.
- ``classes=None``: class-agnostic. All ground-truth rows (any class) against all result rows.
- ``classes=[1, 3]`` (MOT class ids, or MOT17 names such as ``"pedestrian"``, ``"car"``): each class is
  evaluated on its own: ground truth rows of that class against the result rows whose column 8 holds that
  class id. A result file without class labels (column 8 is ``-1`` or absent on every row) is used whole
  when exactly one class is evaluated (a single-class tracker) and rejected when several are.
- ``mot17_preproc=True`` reproduces the official MOT16/MOT17 pedestrian protocol instead (TrackEval's
  ``DO_PREPROC=True``): result boxes matched to distractor classes (2, 7, 8, 12) are removed before
  scoring. Only class 1 and ground truth with MOT17 class ids (1–13).

Results of the (sequence, class) pairs are combined with TrackEval's ``combine_sequences`` (which equals its
detection-averaged class combination): per sequence over classes, per class over sequences, and overall.
Ratios (HOTA, MOTA, IDF1, …) are stored as fractions (1.0 = 100 %); counts (IDSW, FP, FN, …) as ints.

A ground-truth sequence without a result file raises ``FileNotFoundError`` naming the file, unless
``allow_missing=True``: then it is scored as an empty result (every object missed) and a warning is logged.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from ibntrack.data.mot import MOT_CLASS_IDS as _DATA_CLASS_IDS
from ibntrack.eval.report import COUNT_METRICS, RATIO_METRICS, TABLE_COLUMNS, EvalReport
from ibntrack.eval.rows import (
    COL_CLASS,
    COL_FLAG,
    COL_FRAME,
    COL_ID,
    Rows,
    SeqSpec,
    check_frames,
    check_unique_ids,
    parse_gt_file,
    parse_mot_file,
    read_seq_spec,
    sequence_dirs,
)

__all__ = ["COUNT_METRICS", "MOT_CLASS_IDS", "RATIO_METRICS", "TABLE_COLUMNS", "EvalReport", "evaluate"]

logger = logging.getLogger(__name__)

#: MOTChallenge (MOT16/17/20) class ids by name (shared with :mod:`ibntrack.data.mot`).
MOT_CLASS_IDS: Mapping[str, int] = MappingProxyType(_DATA_CLASS_IDS)
_CLASS_NAMES: dict[int, str] = {}
for _name, _cid in MOT_CLASS_IDS.items():
    _CLASS_NAMES.setdefault(_cid, _name)  # first name wins: 3 -> "car"


_TRACKER_NAME = "ibntrack"
_ALL_CLASSES = "all"
_HOTA_FIELDS = ("HOTA", "DetA", "AssA", "DetRe", "DetPr", "AssRe", "AssPr", "LocA")
_CLEAR_FIELDS = {"MOTA": "MOTA", "MOTP": "MOTP", "Rcll": "CLR_Re", "Prcn": "CLR_Pr"}
_CLEAR_COUNTS = {"IDSW": "IDSW", "Frag": "Frag", "FP": "CLR_FP", "FN": "CLR_FN", "TP": "CLR_TP",
                 "MT": "MT", "PT": "PT", "ML": "ML"}  # fmt: skip
_MOT17_CLASS_IDS = frozenset(MOT_CLASS_IDS.values())


# --------------------------------------------------------------------------------------------- input


def _resolve_classes(classes: Any) -> list[int] | None:
    if classes is None:
        return None
    if isinstance(classes, (str, int)):
        classes = [classes]
    out: list[int] = []
    for c in classes:
        if isinstance(c, str) and c.lower() in MOT_CLASS_IDS:
            cid = MOT_CLASS_IDS[c.lower()]
        elif isinstance(c, (int, np.integer)) and not isinstance(c, bool) and c >= 1:
            cid = int(c)
        else:
            raise ValueError(
                f"classes: {c!r} is neither a MOT class id >= 1 nor one of {', '.join(MOT_CLASS_IDS)}"
            )
        if cid not in out:
            out.append(cid)
    if not out:
        raise ValueError("classes is empty: give MOT class ids (e.g. [1, 3]) or None for all")
    return out


def _class_label(cid: int | None) -> str:
    if cid is None:
        return _ALL_CLASSES
    return _CLASS_NAMES.get(cid, f"class{cid}")


def _select_results(rows: Rows, cid: int | None, n_classes: int) -> Rows:
    """Result rows of one class (see the module docstring for the convention)."""
    labels = rows.data[:, COL_CLASS]
    labelled = labels >= 1
    if cid is None or not labelled.any():
        if cid is not None and n_classes > 1 and len(labels):
            raise ValueError(
                f"{rows.path}: results have no class labels (column 8 is -1), so they cannot be split "
                "between several classes; write the MOT class id in column 8 or evaluate one class"
            )
        return rows
    if not labelled.all():
        i = np.flatnonzero(~labelled)[0]
        raise ValueError(f"{rows.path}:{rows.lines[i]}: no class label (column 8) while other rows have one")
    return rows.select(labels == cid)


# --------------------------------------------------------------------------------------------- scoring
def _import_trackeval() -> Any:
    try:
        import trackeval
    except ImportError as exc:
        raise ImportError("evaluation needs TrackEval: pip install ibntrack[eval]") from exc
    return trackeval


def _write_rows(path: Path, data: np.ndarray, col7: np.ndarray, col8: np.ndarray) -> None:
    """Write ``frame,id,x,y,w,h,col7,col8,-1`` rows for TrackEval (exact float round trip)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    out = np.column_stack([data[:, :6], col7, col8, np.full(len(data), -1.0)]) if len(data) else None
    with open(path, "w", encoding="utf-8") as fh:
        if out is not None:
            np.savetxt(fh, out, fmt="%.17g", delimiter=",")


def _summarise(hota: dict, clear: dict, ident: dict, count: dict) -> dict[str, float]:
    out: dict[str, float] = {name: float(np.mean(hota[name])) for name in _HOTA_FIELDS}
    out.update({name: float(clear[key]) for name, key in _CLEAR_FIELDS.items()})
    out.update({name: float(ident[name]) for name in ("IDF1", "IDR", "IDP")})
    out.update({name: int(clear[key]) for name, key in _CLEAR_COUNTS.items()})
    out.update({name: int(ident[name]) for name in ("IDTP", "IDFP", "IDFN")})
    out.update({name: int(count[name]) for name in ("GT_Dets", "Dets", "GT_IDs", "IDs")})
    return {k: out[k] for k in (*RATIO_METRICS, *COUNT_METRICS)}


class _Scorer:
    """TrackEval metric objects and their combination of raw per-(sequence, class) results."""

    def __init__(self, trackeval: Any, iou_threshold: float) -> None:
        cfg = {"THRESHOLD": iou_threshold, "PRINT_CONFIG": False}
        m = trackeval.metrics
        self.metrics = {
            "HOTA": m.HOTA(),
            "CLEAR": m.CLEAR(cfg),
            "Identity": m.Identity(cfg),
            "Count": m.Count(),
        }

    def eval_sequence(self, data: dict) -> dict[str, dict]:
        return {name: metric.eval_sequence(data) for name, metric in self.metrics.items()}

    def combine(self, raws: list[dict[str, dict]]) -> dict[str, float]:
        if len(raws) == 1:
            raw = raws[0]
        else:
            raw = {
                name: metric.combine_sequences({str(i): r[name] for i, r in enumerate(raws)})
                for name, metric in self.metrics.items()
            }
        return _summarise(raw["HOTA"], raw["CLEAR"], raw["Identity"], raw["Count"])


@dataclass(frozen=True)
class _SeqInput:
    """What TrackEval gets for one sequence and class: gt rows with their class column, result rows."""

    gt: np.ndarray  # [M, 8]
    gt_classes: np.ndarray  # [M]
    results: np.ndarray  # [K, 8]
    length: int


def _load_pair(
    spec: SeqSpec, results_dir: Path, allow_missing: bool, mot17_preproc: bool
) -> tuple[Rows, Rows, int]:
    """Parse and check the ground truth and result file of one sequence → ``(gt, results, length)``."""
    gt = parse_gt_file(spec.gt_file)
    res_file = results_dir / f"{spec.name}.txt"
    if res_file.is_file():
        res = parse_mot_file(res_file)
    elif allow_missing:
        logger.warning("no result file %s: sequence %s scored as an empty result", res_file, spec.name)
        res = Rows(res_file, np.zeros((0, 8)), np.zeros(0, dtype=np.int64))
    else:
        raise FileNotFoundError(f"result file not found for sequence {spec.name}: {res_file}")
    length = spec.length
    if length is None:
        length = int(max(gt.data[:, COL_FRAME].max(initial=1), res.data[:, COL_FRAME].max(initial=1)))
    check_frames(gt, length)
    check_frames(res, length)
    if mot17_preproc:
        bad = np.flatnonzero(~np.isin(gt.data[:, COL_CLASS], list(_MOT17_CLASS_IDS)))
        if bad.size:
            i = bad[0]
            raise ValueError(
                f"{gt.path}:{gt.lines[i]}: mot17_preproc needs MOT17 class ids 1-13, "
                f"got {gt.data[i, COL_CLASS]:g}"
            )
        check_unique_ids(gt)
    return gt, res, length


def _identities(data: np.ndarray) -> np.ndarray:
    """``data [M, 8]`` with ids renumbered 1.. by (class, id): identities never merge across classes."""
    out = data.copy()
    if len(out):
        _, inverse = np.unique(out[:, [COL_CLASS, COL_ID]], axis=0, return_inverse=True)
        out[:, COL_ID] = inverse.reshape(-1) + 1
    return out


def _select(
    gt: Rows, res: Rows, length: int, cid: int | None, n_groups: int, mot17_preproc: bool
) -> _SeqInput:
    """Rows of one class group (see the module docstring)."""
    if mot17_preproc:  # TrackEval keeps class 1 with flag != 0 and uses the other classes as distractors
        gt_sel, gt_classes = gt, gt.data[:, COL_CLASS]
    else:
        gt_sel = gt if cid is None else gt.select(gt.data[:, COL_CLASS] == cid)
        gt_sel = gt_sel.select(gt_sel.data[:, COL_FLAG] != 0)
        gt_classes = np.ones(len(gt_sel.lines))
        check_unique_ids(gt_sel)
    res_sel = _select_results(res, cid, n_groups)
    check_unique_ids(res_sel)
    return _SeqInput(_identities(gt_sel.data), gt_classes, _identities(res_sel.data), length)


def _run_trackeval(
    trackeval: Any, scorer: _Scorer, workdir: Path, seqs: dict[str, _SeqInput], mot17_preproc: bool
) -> dict[str, dict[str, dict]]:
    """Write one TrackEval layout (gt + one tracker) and return raw metric results per sequence."""
    gt_root, trk_root = workdir / "gt", workdir / "trackers"
    for name, seq in seqs.items():
        _write_rows(gt_root / name / "gt" / "gt.txt", seq.gt, seq.gt[:, COL_FLAG], seq.gt_classes)
        # Results as class 1 ("pedestrian"), the only class TrackEval's MOT reader accepts.
        _write_rows(
            trk_root / _TRACKER_NAME / f"{name}.txt",
            seq.results,
            seq.results[:, 6],
            np.ones(len(seq.results)),
        )
    config = {
        "GT_FOLDER": str(gt_root),
        "TRACKERS_FOLDER": str(trk_root),
        "OUTPUT_FOLDER": str(workdir / "out"),
        "TRACKERS_TO_EVAL": [_TRACKER_NAME],
        "CLASSES_TO_EVAL": ["pedestrian"],
        "BENCHMARK": "MOT17",
        "SKIP_SPLIT_FOL": True,
        "TRACKER_SUB_FOLDER": "",
        "SEQ_INFO": {name: seq.length for name, seq in seqs.items()},
        "DO_PREPROC": mot17_preproc,
        "PRINT_CONFIG": False,
    }
    out: dict[str, dict[str, dict]] = {}
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            dataset = trackeval.datasets.MotChallenge2DBox(config)
            for name in seqs:
                raw = dataset.get_raw_seq_data(_TRACKER_NAME, name)
                data = dataset.get_preprocessed_seq_data(raw, "pedestrian")
                out[name] = scorer.eval_sequence(data)
        except trackeval.utils.TrackEvalException as exc:
            raise ValueError(f"TrackEval rejected the input: {exc}") from exc
    return out


def evaluate(
    gt_root_or_seqs: str | os.PathLike[str] | Iterable[Any],
    results_dir: str | os.PathLike[str],
    classes: Iterable[int | str] | int | str | None = None,
    *,
    allow_missing: bool = False,
    mot17_preproc: bool = False,
    iou_threshold: float = 0.5,
) -> EvalReport:
    """Score MOTChallenge result files against ground truth with TrackEval.

    Args:
        gt_root_or_seqs: a folder of sequence folders, one sequence folder (containing ``gt/gt.txt``), or a
            list of sequence folders (or objects with a ``path`` attribute, e.g. ``data.mot.Sequence``).
            Sequences are named by their folder; ``seqinfo.ini``'s ``seqLength`` gives the frame count
            (without it, the last frame of the ground truth or results).
        results_dir: folder with one ``<sequence name>.txt`` per sequence.
        classes: None for class-agnostic evaluation, else MOT class ids / MOT17 names, each evaluated
            on its own (results split by column 8; see the module docstring).
        allow_missing: score a sequence without a result file as an empty result (warning) instead of
            raising ``FileNotFoundError``.
        mot17_preproc: official MOT16/17 pedestrian preprocessing (distractor removal).
        iou_threshold: IoU needed for a match in CLEAR and Identity metrics (HOTA averages 0.05–0.95).

    Returns:
        An :class:`EvalReport`.

    Raises:
        FileNotFoundError: missing ground truth, results folder or result file (see ``allow_missing``).
        ValueError: malformed line (names file and line), bad arguments, unsplittable results.
        ImportError: TrackEval not installed.
    """
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold!r}")
    class_ids = _resolve_classes(classes)
    if mot17_preproc and class_ids not in (None, [1]):
        raise ValueError(
            f"mot17_preproc evaluates pedestrians only: classes must be None or [1], got {classes!r}"
        )
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise FileNotFoundError(f"results folder not found: {results_dir}")
    specs = [read_seq_spec(d) for d in sequence_dirs(gt_root_or_seqs)]
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"sequence names must be unique, got {names}")
    trackeval = _import_trackeval()

    # 1. Parse and check every file.
    parsed = {spec.name: _load_pair(spec, results_dir, allow_missing, mot17_preproc) for spec in specs}
    empty = [spec.gt_file for spec in specs if len(parsed[spec.name][0].data) == 0]
    if len(empty) == len(specs):
        raise ValueError(
            f"nothing to evaluate: the ground truth is empty ({', '.join(map(str, empty[:5]))}); "
            "every score would be 0"
        )
    for path in empty:
        logger.warning(
            "%s is empty: that sequence has no objects to find (it can only add false positives)", path
        )

    # 2. Score each class group in its own TrackEval layout.
    groups: list[int | None] = [None] if class_ids is None else list(class_ids)
    scorer = _Scorer(trackeval, iou_threshold)
    raw: dict[str, dict[str, dict[str, dict]]] = {}  # class label -> sequence -> metric -> raw result
    with tempfile.TemporaryDirectory(prefix="ibntrack-eval-") as tmp:
        for gi, cid in enumerate(groups):
            seqs = {name: _select(*pair, cid, len(groups), mot17_preproc) for name, pair in parsed.items()}
            workdir = Path(tmp) / f"group{gi}"
            raw[_class_label(cid)] = _run_trackeval(trackeval, scorer, workdir, seqs, mot17_preproc)

    # 3. Combine (TrackEval's sums and weighted averages): per sequence, per class, overall.
    labels = list(raw)
    per_sequence = {name: scorer.combine([raw[c][name] for c in labels]) for name in parsed}
    per_class = {c: scorer.combine(list(raw[c].values())) for c in labels}
    combined = scorer.combine([raw[c][name] for c in labels for name in parsed])
    return EvalReport(per_sequence=per_sequence, combined=combined, per_class=per_class)
