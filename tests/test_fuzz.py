"""Property-based fuzzing (Hypothesis) of every reader and of ``MultiObjectTracker.update``.

Random and mutated inputs may only raise the project's documented errors (``MOTFormatError``,
``StyleError``, ``ValueError`` naming the argument) — never ``IndexError``, ``KeyError``, ``TypeError``,
``configparser`` or YAML internals — and valid inputs round-trip. Example counts are bounded so the whole
file runs in well under a minute.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from ibntrack.config import config_to_dict, load_config, save_config  # noqa: E402
from ibntrack.data.motio import (  # noqa: E402
    MOTFormatError,
    read_gt,
    read_results,
    read_seqinfo,
    write_gt,
    write_results,
    write_seqinfo,
)
from ibntrack.data.styles import StyleError, load_style  # noqa: E402
from ibntrack.tracking import MultiObjectTracker  # noqa: E402

# the suite's profile: bounded and repeatable; `IBNTRACK_FUZZ=deep pytest tests/test_fuzz.py` searches longer
settings.register_profile(
    "suite", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
settings.register_profile("deep", max_examples=1500, deadline=None, suppress_health_check=list(HealthCheck))
settings.load_profile(os.environ.get("IBNTRACK_FUZZ", "suite"))
FUZZ = settings()

# text made of the characters that matter to these formats, plus anything
_FORMAT_CHARS = st.sampled_from(list("0123456789,.-+eE \t\n[]=:%#;{}'\"!&*|>nainf") + ["\r\n", "\x00", "é"])
format_text = st.one_of(st.text(max_size=300), st.lists(_FORMAT_CHARS, max_size=300).map("".join))


def _write(tmp: Path, name: str, data: str | bytes) -> Path:
    path = tmp / name
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data, encoding="utf-8")
    return path


def _number(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.integers(int(lo * 100), int(hi * 100)).map(lambda v: v / 100)  # two decimals: exact in text


# ------------------------------------------------------------------------------------- gt / results


def _mutations(base: str) -> st.SearchStrategy[str]:
    """``base`` with a random slice replaced by random text (the mutated-input half of the fuzzing)."""
    return st.tuples(st.integers(0, len(base)), st.integers(0, 20), format_text).map(
        lambda t: base[: t[0]] + t[2] + base[t[0] + t[1] :]
    )


_GT_SAMPLE = "1,1,10,20,30,40,1,1,1\n2,1,11,21,30,40,1,1,0.5\n3,2,0,0,5,5,0,3,1\n"


@FUZZ
@given(st.one_of(format_text, _mutations(_GT_SAMPLE), st.binary(max_size=200)))
def test_gt_reader_raises_only_format_errors(data):
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp), "gt.txt", data)
        for reader in (read_gt, read_results):
            try:
                rows = reader(path)
            except MOTFormatError as exc:
                assert str(path) in str(exc)
            else:
                assert rows.ndim == 2 and np.isfinite(rows[:, :6]).all()


gt_rows = st.lists(
    st.tuples(
        st.integers(1, 5000),  # frame
        st.integers(0, 10_000),  # id
        _number(-100, 5000),
        _number(-100, 5000),
        _number(0, 900),
        _number(0, 900),
        st.integers(0, 1),
        st.integers(1, 12),
        _number(0, 1),
    ),
    max_size=30,
)


@FUZZ
@given(gt_rows)
def test_gt_round_trips(rows):
    with tempfile.TemporaryDirectory() as tmp:
        path = write_gt(Path(tmp) / "gt.txt", np.asarray(rows, np.float64).reshape(-1, 9))
        back = read_gt(path)
    want = np.asarray(sorted(rows, key=lambda r: (r[0], r[1])), np.float64).reshape(-1, 9)
    # rows with equal (frame, id) keep their relative order in both sorts
    np.testing.assert_allclose(back, want, atol=1e-9)


@FUZZ
@given(
    st.lists(
        st.tuples(
            st.integers(1, 5000),
            st.integers(1, 10_000),
            _number(-100, 5000),
            _number(-100, 5000),
            _number(0, 900),
            _number(0, 900),
            _number(0, 1),
        ),
        max_size=30,
    )
)
def test_results_round_trip(rows):
    with tempfile.TemporaryDirectory() as tmp:
        path = write_results(Path(tmp) / "r.txt", np.asarray(rows, np.float64).reshape(-1, 7))
        back = read_results(path)
    want = np.asarray(sorted(rows, key=lambda r: (r[0], r[1])), np.float64).reshape(-1, 7)
    np.testing.assert_allclose(back, want, atol=1e-9)


# ------------------------------------------------------------------------------------------ seqinfo

_INI_SAMPLE = "[Sequence]\nname=MOT17-02\nimDir=img1\nframeRate=30\nseqLength=600\nimWidth=1920\n"


@FUZZ
@given(st.one_of(format_text, _mutations(_INI_SAMPLE), st.binary(max_size=200)))
def test_seqinfo_reader_raises_only_format_errors(data):
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp), "seqinfo.ini", data)
        try:
            info = read_seqinfo(path)
        except MOTFormatError as exc:
            assert str(path) in str(exc)
        else:
            assert all(isinstance(k, str) and isinstance(v, str) for k, v in info.items())


_ini_word = (
    st.text(
        alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters=",\n\r"),
        min_size=1,
        max_size=12,
    )
    .map(str.strip)
    .filter(bool)
)


@FUZZ
@given(
    _ini_word,
    st.integers(1, 240),
    st.integers(1, 10_000),
    st.integers(1, 4096),
    st.integers(1, 4096),
    st.lists(_ini_word, max_size=4),
)
def test_seqinfo_round_trips_with_any_characters(name, fps, length, width, height, scene):
    with tempfile.TemporaryDirectory() as tmp:
        path = write_seqinfo(Path(tmp), name, fps, length, width, height, scene=scene)
        info = read_seqinfo(path)
    assert info["name"] == name
    assert (info["framerate"], info["seqlength"]) == (str(fps), str(length))
    assert (info["imwidth"], info["imheight"]) == (str(width), str(height))
    assert [w for w in info.get("scenekeywords", "").split(",") if w] == list(scene)


# ------------------------------------------------------------------------------------ YAML readers

yaml_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(10**6), 10**6),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=10),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
_CONFIG_KEYS = {
    "model": ["arch", "emb_dim", "ibn_ratio", "width", "num_classes"],
    "loss": ["box_loss", "id_weight"],
    "data": ["input_size", "train", "num_classes", "augment", "min_visibility"],
    "train": ["lr", "epochs", "grad_clip", "batch_size", "milestones", "optimizer"],
    "bogus": ["x"],
}
config_docs = st.dictionaries(
    st.sampled_from(sorted(_CONFIG_KEYS)),
    st.one_of(
        yaml_values,
        st.dictionaries(
            st.sampled_from(sorted({k for ks in _CONFIG_KEYS.values() for k in ks})), yaml_values
        ),
    ),
    max_size=4,
)


def _dump(doc) -> str:
    import yaml

    return yaml.safe_dump(doc, allow_unicode=True)


@FUZZ
@given(st.one_of(config_docs.map(_dump), format_text, _mutations("train:\n  lr: 0.001\n  epochs: 3\n")))
def test_config_reader_raises_only_value_errors(text):
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp), "c.yaml", text)
        try:
            cfg = load_config(path)
        except ValueError as exc:
            assert str(path) in str(exc) or "override" in str(exc)
        else:
            assert cfg.train.lr > 0 and np.isfinite(cfg.train.lr)


@FUZZ
@given(
    st.sampled_from(["train.lr", "train.epochs", "train.grad_clip", "data.input_size", "model.arch", "x.y"]),
    st.one_of(yaml_values.map(lambda v: _dump(v).strip()), format_text),
)
def test_config_overrides_raise_only_value_errors_naming_the_override(key, value):
    text = f"{key}={value}"
    try:
        load_config(None, [text])
    except ValueError as exc:
        assert "override" in str(exc)


@FUZZ
@given(
    _number(1e-5, 1.0).filter(lambda v: v > 0),
    st.integers(1, 100),
    st.sampled_from(["resnet18", "resnet18-ibn", "resnet34-ibn"]),
    st.lists(st.text(min_size=1, max_size=8), max_size=3),
)
def test_config_round_trips(lr, epochs, arch, scene):
    overrides = [f"train.lr={lr}", f"train.epochs={epochs}", f"model.arch={arch}"]
    cfg = load_config(None, overrides)
    cfg = load_config(None, [*overrides, f"train.train_scene={_dump(list(scene)).strip()}"])
    with tempfile.TemporaryDirectory() as tmp:
        back = load_config(save_config(cfg, Path(tmp) / "c.yaml"))
    assert config_to_dict(back) == config_to_dict(cfg)


_STYLE_KEYS = [
    "base",
    "name",
    "keywords",
    "brightness",
    "contrast",
    "saturation",
    "noise",
    "blur",
    "sky",
    "x",
]
style_docs = st.dictionaries(st.sampled_from(_STYLE_KEYS), yaml_values, max_size=5)


@FUZZ
@given(st.one_of(style_docs.map(_dump), format_text, _mutations("base: winter\nname: dusk\n")))
def test_style_reader_raises_only_style_errors(text):
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp), "s.yaml", text)
        try:
            load_style(path)
        except StyleError as exc:
            assert str(path) in str(exc)


# -------------------------------------------------------------------------- MultiObjectTracker.update

_coord = st.one_of(
    st.floats(-50, 700, allow_nan=False),
    st.sampled_from([float("nan"), float("inf"), -float("inf"), 3e38, -3e38, 1e30, 0.0]),
)
_score = st.one_of(st.floats(0, 1), st.sampled_from([-0.1, 1.5, 5.0, float("nan")]))


@st.composite
def detection_frames(draw):
    n = draw(st.integers(0, 6))
    boxes = np.asarray(draw(st.lists(st.tuples(_coord, _coord, _coord, _coord), min_size=n, max_size=n)))
    scores = np.asarray(draw(st.lists(_score, min_size=n, max_size=n)))
    emb = draw(
        st.one_of(
            st.none(),
            st.just(np.zeros((n, 4))),
            st.lists(
                st.lists(st.floats(-2, 2, allow_nan=False), min_size=4, max_size=4), min_size=n, max_size=n
            ).map(lambda v: np.asarray(v).reshape(n, 4)),
        )
    )
    return boxes.reshape(n, 4), scores, emb


@settings(max_examples=40 if settings().derandomize else 1000)
@given(st.lists(detection_frames(), min_size=1, max_size=8))
def test_tracker_update_raises_only_value_errors_and_returns_sane_tracks(frames):
    mot = MultiObjectTracker()
    for boxes, scores, emb in frames:
        try:
            tracks = mot.update(boxes, scores, emb)
        except ValueError as exc:
            assert any(name in str(exc) for name in ("boxes_xyxy", "scores", "embeddings"))
            continue
        for t in tracks:
            box = np.asarray(t.box, np.float64)
            assert np.isfinite(box).all(), f"track box {box} from inputs {boxes}"
            assert box[2] >= box[0] and box[3] >= box[1]
            assert 0.0 <= float(t.score) <= 1.0
