"""MOTDataset: item shapes, determinism, identities over several sequences, bad input."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from ibntrack.data.dataset import MOTDataset
from ibntrack.data.mot import load_sequence, load_sequences
from ibntrack.data.synth import generate_sequence

INPUT = (96, 160)


@pytest.fixture(scope="module")
def sequences(tmp_path_factory):
    root = tmp_path_factory.mktemp("ds")
    generate_sequence(root / "summer", "summer", frames=4, objects=10, size=(160, 96), seed=1)
    generate_sequence(root / "winter", "winter", frames=4, objects=10, size=(160, 96), seed=2)
    return load_sequences(root)


def test_item_shapes(sequences):
    ds = MOTDataset(sequences, input_size=INPUT, num_classes=2, max_objs=64, seed=0)
    assert len(ds) == 8 and ds.class_names == ("pedestrian", "vehicle")
    image, targets = ds[3]
    assert image.shape == (3, 96, 160) and image.dtype == torch.float32
    assert targets["hm"].shape == (2, 24, 40)
    assert targets["ind"].shape == (64,) and targets["ids"].shape == (64,)
    n = int(targets["mask"].sum())
    assert n > 0 and (targets["ids"][:n] >= 0).all() and (targets["ids"][:n] < ds.num_ids).all()
    batch = torch.utils.data.default_collate([ds[0], ds[1]])
    assert batch[0].shape == (2, 3, 96, 160) and batch[1]["hm"].shape == (2, 2, 24, 40)


def test_identities_are_global(sequences):
    ds = MOTDataset(sequences, input_size=INPUT, num_classes=2, augment=False)
    counts = ds.identity_counts
    assert sum(counts.values()) == ds.num_ids and len(counts) == 2
    seen = {seq_index: set() for seq_index in range(2)}
    for index, (seq_index, _) in enumerate(ds.samples):
        _, _, _, ids = ds.load(index)
        seen[seq_index] |= set(ids.tolist())
    assert not seen[0] & seen[1]  # the two sequences never share a label
    assert seen[0] | seen[1] <= set(range(ds.num_ids))


def test_deterministic_per_seed_epoch_index(sequences):
    a = MOTDataset(sequences, input_size=INPUT, num_classes=2, seed=3)
    b = pickle.loads(pickle.dumps(a))  # what a DataLoader worker receives
    img_a, boxes_a, _, _ = a.load(2)
    img_b, boxes_b, _, _ = b.load(2)
    assert np.array_equal(img_a, img_b) and np.array_equal(boxes_a, boxes_b)
    b.set_epoch(1)
    assert not np.array_equal(b.load(2)[0], img_a)
    a.set_epoch(1)
    assert np.array_equal(a.load(2)[0], b.load(2)[0])


def test_no_augment_matches_letterboxed_gt(sequences):
    ds = MOTDataset(sequences, input_size=(192, 320), num_classes=2, augment=False)
    seq_index, frame = ds.samples[0]
    _, boxes, classes, _ = ds.load(0)
    ann = sequences[seq_index].annotations[frame]
    np.testing.assert_allclose(boxes, ann.boxes * 2.0, atol=1e-4)  # 160x96 -> 320x192, no padding
    assert classes.tolist() == ann.classes.tolist()


def test_bad_input(sequences, tmp_path):
    with pytest.raises(ValueError, match="sequences is empty"):
        MOTDataset([], input_size=INPUT)
    with pytest.raises(ValueError, match="num_classes=1"):
        MOTDataset(sequences, input_size=INPUT, num_classes=1)
    test_only = generate_sequence(tmp_path, "fog", frames=2, objects=3, size=(160, 96), seed=4)
    (test_only / "gt" / "gt.txt").unlink()
    with pytest.raises(ValueError, match="no annotated frames"):
        MOTDataset([load_sequence(test_only)], input_size=INPUT, num_classes=2)
    vehicles_only = load_sequence(sequences[0].path, class_names=("vehicle",))
    with pytest.raises(ValueError, match="calls model class 0"):
        MOTDataset([sequences[0], vehicles_only], input_size=INPUT, num_classes=2)


def test_same_mot_class_under_two_names(sequences):
    as_car = load_sequence(sequences[0].path, class_map={1: 0, 3: 1})  # names: pedestrian, car
    assert as_car.class_names == ("pedestrian", "car")
    ds = MOTDataset([as_car, sequences[1]], input_size=INPUT, num_classes=2)  # car == vehicle: MOT class 3
    assert ds.class_names == ("pedestrian", "car")


def test_frame_step(sequences):
    ds = MOTDataset(sequences, input_size=INPUT, num_classes=2, frame_step=2)
    assert [f for _, f in ds.samples] == [1, 3, 1, 3]
