"""``ibntrack adapt`` end to end on a small generated sequence: labels, fine-tuning, the final checkpoint,
resume, and the errors a user meets."""

import numpy as np
import pytest
import torch

from ibntrack.adapt import AdaptConfig, PseudoLabelConfig, PseudoLabelError, adapt
from ibntrack.cli import main
from ibntrack.data.motio import read_gt
from ibntrack.data.synth import generate_sequence
from ibntrack.nn.checkpoint import load_checkpoint
from tests.tiny import TINY_INPUT, save_tiny_checkpoint


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class OracleTeacher:
    """A teacher that reads the generator's exact boxes (pedestrians) and counts its calls."""

    def __init__(self, seq):
        self.gt = read_gt(seq / "gt" / "gt.txt")
        self.frame = 0
        self.calls = 0

    def __call__(self, frame):
        self.calls += 1
        self.frame += 1
        rows = self.gt[(self.gt[:, 0] == self.frame) & (self.gt[:, 7] == 1)]
        boxes = np.concatenate([rows[:, 2:4], rows[:, 2:4] + rows[:, 4:6]], 1).astype(np.float32)
        return boxes, np.full(len(rows), 0.9, np.float32)


@pytest.fixture(scope="module")
def footage(tmp_path_factory):
    root = tmp_path_factory.mktemp("footage")
    seq = generate_sequence(root, domain="summer", frames=24, objects=3, size=(96, 64), seed=3, frame_rate=10)
    ckpt = save_tiny_checkpoint(root / "tiny.pt", class_names=("pedestrian", "vehicle"))
    return seq, ckpt


def _cfg(**kw):
    return AdaptConfig(
        steps=2,
        batch_size=2,
        input_size=TINY_INPUT,
        precision="fp32",
        scene=("campus",),
        labels=PseudoLabelConfig(min_track=3, use_background="off"),
        **kw,
    )


def test_adapt_writes_labels_and_a_checkpoint_that_records_the_footage(footage, tmp_path):
    seq, ckpt = footage
    teacher = OracleTeacher(seq)
    path = adapt([str(seq)], ckpt, tmp_path / "run", _cfg(), teacher=teacher)
    assert teacher.calls == 24
    labels = read_gt(tmp_path / "run" / "round0" / "labels" / seq.name / "gt" / "gt.txt")
    assert len(labels) > 0 and labels[:, 1].min() == 1  # tracklet ids are the identities
    assert len(list((tmp_path / "run" / "round0" / "labels" / seq.name / "img1").glob("*.jpg"))) == 24
    out = load_checkpoint(path)
    assert out["adapted_to"]["footage"][0]["name"] == seq.name
    assert out["adapted_to"]["footage"][0]["frames"] == 24
    assert {"campus", "real"} <= set(out["train_scene"])
    assert out["step"] == 2 and "optimizer" not in out
    # the weights moved away from the starting point
    start = load_checkpoint(ckpt)["model"]
    assert any(not torch.equal(start[k], v) for k, v in out["model"].items() if v.is_floating_point())

    # re-running reuses everything: the teacher is not asked again and nothing is retrained
    teacher2 = OracleTeacher(seq)
    adapt([str(seq)], ckpt, tmp_path / "run", _cfg(), teacher=teacher2)
    assert teacher2.calls == 0


def test_second_round_labels_with_the_student(footage, tmp_path):
    seq, ckpt = footage
    adapt([str(seq)], ckpt, tmp_path / "run", _cfg(rounds=2, student_score=0.0), teacher=OracleTeacher(seq))
    assert (tmp_path / "run" / "round1" / "labels" / seq.name / "gt" / "gt.txt").is_file()
    assert (tmp_path / "run" / "round1" / "train" / "done").is_file()
    assert load_checkpoint(tmp_path / "run" / "adapted.pt")["adapted_to"]["rounds"] == 2


def test_no_confident_labels_is_a_clear_error(footage, tmp_path):
    seq, ckpt = footage
    nothing = lambda frame: (np.zeros((0, 4), np.float32), np.zeros(0, np.float32))  # noqa: E731
    cfg = _cfg()
    cfg = AdaptConfig(**{**cfg.__dict__, "labels": PseudoLabelConfig(min_frames=5, use_background="off")})
    with pytest.raises(PseudoLabelError, match="no confident pseudo-labels"):
        adapt([str(seq)], ckpt, tmp_path / "run", cfg, teacher=nothing)


def test_cli_errors_name_the_problem(footage, tmp_path, capsys):
    seq, ckpt = footage
    assert (
        main(["adapt", str(seq), "--weights", str(tmp_path / "nope.pt"), "--out", str(tmp_path / "o")]) == 2
    )
    err = capsys.readouterr().err
    assert "--weights" in err and "nope.pt: no such checkpoint" in err
    assert (
        main(["adapt", str(tmp_path / "missing.mp4"), "--weights", str(ckpt), "--out", str(tmp_path / "o")])
        == 2
    )
    assert "missing.mp4" in capsys.readouterr().err
    # footage cut to 8 frames is too short for tracklets
    assert (
        main(
            [
                "adapt",
                str(seq),
                "--weights",
                str(ckpt),
                "--out",
                str(tmp_path / "o"),
                "--max-frames",
                "8",
                "--steps",
                "1",
                "--batch-size",
                "2",
                "--input-size",
                "96x64",
            ]
        )
        == 2
    )
    assert "8 frames; self-training needs at least 20" in capsys.readouterr().err
