"""Per-dataset sampling weights (data.train_weights)."""

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from ibntrack.config import load_config
from ibntrack.data.mixing import WeightedMixSampler, dataset_groups, sample_groups, share_counts


def test_share_counts_by_hand():
    assert share_counts([1, 1], 10) == [5, 5]
    assert share_counts([1.0, 0.5], 10) == [7, 3]  # 6.67 / 3.33 -> largest remainder to the first
    assert share_counts([1, 1, 1], 10) == [4, 3, 3]
    assert share_counts([0, 2], 5) == [0, 5]
    for bad in ([0, 0], [1, -1], [1, float("nan")]):
        with pytest.raises(ValueError, match="weights"):
            share_counts(bad, 4)


def test_sampler_shares_repeats_and_epochs():
    groups = [list(range(0, 4)), list(range(4, 104))]  # 4 frames vs 100 frames
    s = WeightedMixSampler(groups, [1.0, 1.0], seed=3)
    order = list(s)
    assert len(order) == len(s) == 104
    counts = Counter(i < 4 for i in order)
    assert counts[True] == 52 and counts[False] == 52  # equal shares whatever the sizes
    small = Counter(i for i in order if i < 4)
    assert sorted(small.values()) == [13, 13, 13, 13]  # drawn without replacement, lap after lap
    assert len(set(i for i in order if i >= 4)) == 52  # the big one: 52 distinct frames this epoch
    assert list(s) == order  # same epoch, same order
    s.set_epoch(1)
    assert list(s) != order


def test_sampler_ranks_split_one_order():
    groups = [list(range(5)), list(range(5, 12))]
    full = WeightedMixSampler(groups, [2, 1], seed=0).epoch_order()
    ranks = [list(WeightedMixSampler(groups, [2, 1], num_replicas=3, rank=r, seed=0)) for r in range(3)]
    assert [len(r) for r in ranks] == [4, 4, 4]  # ceil(12 / 3)
    merged = [ranks[i % 3][i // 3] for i in range(12)]
    assert merged == full.tolist()
    with pytest.raises(ValueError, match="no annotated frames"):
        WeightedMixSampler([[0, 1], []], [1, 1])


def test_groups_follow_data_train_entries(tmp_path):
    class Seq:
        def __init__(self, p):
            self.path = Path(p)

    (tmp_path / "mot" / "s1").mkdir(parents=True)
    (tmp_path / "mot" / "s2").mkdir(parents=True)
    (tmp_path / "crowd").mkdir()
    seqs = [Seq(tmp_path / "mot" / "s1"), Seq(tmp_path / "crowd"), Seq(tmp_path / "mot" / "s2")]
    g = dataset_groups(seqs, [str(tmp_path / "mot"), str(tmp_path / "crowd")])
    assert g == [0, 1, 0]
    samples = [(0, 1), (1, 1), (1, 2), (2, 5)]
    assert sample_groups(samples, g, 2) == [[0, 3], [1, 2]]
    with pytest.raises(ValueError, match="under none"):
        dataset_groups([Seq(tmp_path)], [str(tmp_path / "mot")])


def test_config_checks_one_weight_per_entry():
    with pytest.raises(ValueError, match="2 weights for 1 data.train entries"):
        load_config(None, ["data.train=[a]", "data.train_weights=[1, 2]"])
    with pytest.raises(ValueError, match="train_weights"):
        load_config(None, ["data.train=[a, b]", "data.train_weights=[0, 0]"])
    cfg = load_config(None, ["data.train=[a, b]", "data.train_weights=[1, 0.5]"])
    assert cfg.data.train_weights == (1.0, 0.5)


def test_mixed_training_run(tmp_path):
    """A MOT sequence with identities + a detection-only sequence (ids -1), weights [1, 3]."""
    import torch

    from ibntrack.data.motio import write_gt
    from ibntrack.data.synth import generate_sequence
    from ibntrack.training.train import fit

    mot = generate_sequence(tmp_path / "mot", "summer", frames=4, objects=3, size=(192, 128), seed=0,
                            classes=("pedestrian",))  # fmt: skip
    det = generate_sequence(tmp_path / "det", "winter", frames=4, objects=3, size=(192, 128), seed=1,
                            classes=("pedestrian",))  # fmt: skip
    from ibntrack.data.motio import read_gt

    rows = read_gt(det / "gt" / "gt.txt")
    rows[:, 1] = -1  # detection-only
    write_gt(det / "gt" / "gt.txt", rows)
    torch.set_num_threads(1)
    cfg = load_config(
        None,
        [
            "model.emb_dim=8", "model.neck_channels=8", "model.head_conv=8", "model.width=0.25",
            "data.input_size=[64, 96]", "data.augment=false", "data.workers=0",
            f"data.train=[{tmp_path / 'mot'}, {tmp_path / 'det'}]", "data.train_weights=[1, 3]",
            "train.batch_size=2", "train.epochs=1", "train.device=cpu", "train.amp=false",
            "train.val_every=0",
            "train.milestones=[]", f"train.out_dir={tmp_path / 'run'}",
        ],
    )  # fmt: skip
    fit(cfg)
    from ibntrack.nn.checkpoint import load_checkpoint

    ckpt = load_checkpoint(tmp_path / "run" / "last.pt")
    ids_mot = len(np.unique(read_gt(mot / "gt" / "gt.txt")[:, 1]))
    assert ckpt["num_ids"] == ids_mot  # the detection-only boxes add no identity
    assert ckpt["step"] == 4  # 8 frames per epoch / batch 2
