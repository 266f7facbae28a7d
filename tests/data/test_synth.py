"""The synthetic world: determinism, geometry shared by domains, occlusion, styles."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from ibntrack.data.mot import load_sequence
from ibntrack.data.styles import DOMAINS, StyleError, load_style
from ibntrack.data.synth import SynthScene, generate_dataset, generate_sequence
from ibntrack.data.synth_world import box_visibility

SIZE = (160, 96)
FRAMES = 10


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def winter_twice(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    a = generate_sequence(root / "a", "winter", frames=FRAMES, objects=12, size=SIZE, seed=7)
    b = generate_sequence(root / "b", "winter", frames=FRAMES, objects=12, size=SIZE, seed=7)
    summer = generate_sequence(root / "c", "summer", frames=FRAMES, objects=12, size=SIZE, seed=7)
    return a, b, summer


def test_layout_and_seqinfo(winter_twice):
    a, _, _ = winter_twice
    assert a.name == "synth-winter-0007"
    assert sorted(p.name for p in (a / "img1").iterdir()) == [f"{i:06d}.jpg" for i in range(1, FRAMES + 1)]
    info = (a / "seqinfo.ini").read_text()
    assert "sceneKeywords=winter,snow,street,daytime" in info and "classNames=pedestrian,vehicle" in info
    seq = load_sequence(a)
    assert (seq.width, seq.height, seq.length) == SIZE + (FRAMES,)
    assert seq.class_names == ("pedestrian", "vehicle") and dict(seq.class_map) == {1: 0, 3: 1}
    assert len(seq.annotations) == FRAMES and seq.num_boxes() > 5 * FRAMES


def test_same_seed_same_bytes(winter_twice):
    a, b, _ = winter_twice
    assert _digest(a / "gt" / "gt.txt") == _digest(b / "gt" / "gt.txt")
    for frame in (1, 5, FRAMES):
        name = f"img1/{frame:06d}.jpg"
        assert _digest(a / name) == _digest(b / name)


def test_domains_share_geometry(winter_twice):
    a, _, summer = winter_twice
    assert (a / "gt" / "gt.txt").read_bytes() == (summer / "gt" / "gt.txt").read_bytes()
    assert _digest(a / "img1/000001.jpg") != _digest(summer / "img1/000001.jpg")


def test_other_seed_other_scene():
    a = SynthScene("summer", frames=3, objects=6, size=SIZE, seed=1).gt_rows()
    b = SynthScene("summer", frames=3, objects=6, size=SIZE, seed=2).gt_rows()
    assert a.shape != b.shape or not np.allclose(a, b)


def test_render_in_any_order_is_identical():
    scene = SynthScene("rain", frames=4, objects=6, size=SIZE, seed=3)
    late_first = scene.render(4).copy()
    scene.render(1)
    assert np.array_equal(scene.render(4), late_first)
    fresh = SynthScene("rain", frames=4, objects=6, size=SIZE, seed=3)
    assert np.array_equal(fresh.render(4), late_first)
    assert late_first.shape == (SIZE[1], SIZE[0], 3) and late_first.dtype == np.uint8


def test_box_visibility_hand_numbers():
    # 10x10 box half covered by a nearer box; a third box half outside the 100x100 image
    boxes = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [95, 50, 105, 60]], float)
    depth = np.array([2.0, 1.0, 3.0])
    np.testing.assert_allclose(box_visibility(boxes, depth, 100, 100), [0.5, 1.0, 0.5])
    # two overlapping nearer boxes cover 50 + 50 - 25 = 75 of the 100 px box
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 5], [0, 0, 5, 10], [40, 40, 50, 50]], float)
    np.testing.assert_allclose(box_visibility(boxes, np.array([3.0, 1.0, 2.0, 0.5]), 100, 100)[0], 0.25)


def test_visibility_consistent_with_overlap():
    """Pedestrians only: the nearer pedestrian is the one whose feet are lower in the image."""
    scene = SynthScene("summer", frames=6, objects=25, size=(320, 180), seed=11, classes=("pedestrian",))
    rows = scene.gt_rows()
    assert set(rows[:, 7]) == {1.0}
    checked = 0
    for f in range(1, 7):
        st = scene.world.states[f - 1]
        r = rows[rows[:, 0] == f]
        for row in r:
            k = int(np.flatnonzero(st.ids == row[1])[0])
            full = st.boxes[k]
            nearer = st.boxes[st.boxes[:, 3] > full[3]]
            # rasterise the full box at 1/8 px and remove nearer boxes and the outside of the image
            xs = np.arange(full[0], full[2], 0.125) + 0.0625
            ys = np.arange(full[1], full[3], 0.125) + 0.0625
            gx, gy = np.meshgrid(xs, ys)
            seen = (gx >= 0) & (gx < 320) & (gy >= 0) & (gy < 180)
            for b in nearer:
                seen &= ~((gx >= b[0]) & (gx < b[2]) & (gy >= b[1]) & (gy < b[3]))
            assert row[8] == pytest.approx(seen.mean(), abs=0.03)
            checked += row[8] < 0.99
    assert checked >= 3  # some boxes really are occluded


def test_dense_scene_and_classes():
    scene = SynthScene("night", frames=5, objects=32, size=(320, 180), seed=0)
    rows = scene.gt_rows()
    per_frame = np.bincount(rows[:, 0].astype(int))[1:]
    assert per_frame.min() >= 20
    assert {1.0, 3.0} <= set(rows[:, 7])
    assert (
        (rows[:, 4] > 0).all() and (rows[:, 2] >= 0).all() and (rows[:, 2] + rows[:, 4] <= 320 + 1e-6).all()
    )


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="domain must be one of"):
        generate_sequence(tmp_path, "autumn", frames=2, size=SIZE)
    with pytest.raises(ValueError, match="classes"):
        generate_sequence(tmp_path, "summer", frames=2, size=SIZE, classes=("cat",))
    with pytest.raises(ValueError, match="WIDTHxHEIGHT"):
        generate_sequence(tmp_path, "summer", frames=2, size="160by96")


def test_yaml_style(tmp_path):
    path = tmp_path / "dusk.yaml"
    path.write_text(
        "name: dusk\nbase: night\nkeywords: [dusk, street]\nbrightness: 0.6\n"
        "palette: {sky_top: [60, 60, 110]}\nparticles: {kind: snow, density: 0.5}\n"
    )
    style = load_style(path)
    assert style.name == "dusk" and style.keywords == ("dusk", "street")
    assert style.brightness == 0.6 and style.lights == DOMAINS["night"].lights
    assert style.palette["sky_top"] == (60, 60, 110) and style.particles.kind == "snow"
    seq = generate_sequence(tmp_path / "out", style=path, frames=2, objects=4, size=SIZE, seed=1)
    assert "sceneKeywords=dusk,street" in (seq / "seqinfo.ini").read_text()
    night = generate_sequence(tmp_path / "out", "night", frames=2, objects=4, size=SIZE, seed=1)
    assert (seq / "gt" / "gt.txt").read_bytes() == (night / "gt" / "gt.txt").read_bytes()


@pytest.mark.parametrize(
    "text, key",
    [
        ("britness: 0.5\n", "'britness'"),
        ("contrast: high\n", "'contrast'"),
        ("palette: {skye: [1, 2, 3]}\n", "palette.skye"),
        ("palette: {road: [1, 2]}\n", "palette.road"),
        ("particles: {kind: hail}\n", "particles.kind"),
        ("base: autumn\n", "'base'"),
    ],
)
def test_style_errors_name_file_and_key(tmp_path, text, key):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(StyleError) as err:
        load_style(path)
    assert str(path) in str(err.value) and key in str(err.value)


def test_generate_dataset_layout(tmp_path):
    paths = generate_dataset(tmp_path, ["summer", "fog"], 2, frames=2, objects=4, size=SIZE, seed=5)
    assert [p.relative_to(tmp_path).as_posix() for p in paths] == [
        "summer/synth-summer-0005",
        "summer/synth-summer-0006",
        "fog/synth-fog-0007",
        "fog/synth-fog-0008",
    ]
    shared = generate_dataset(
        tmp_path / "s", ["summer", "fog"], 1, frames=2, objects=4, size=SIZE, shared_geometry=True
    )
    assert (shared[0] / "gt/gt.txt").read_bytes() == (shared[1] / "gt/gt.txt").read_bytes()
