"""The shipped real-footage model: what its card says, and that ``ibntrack track`` uses it by default."""

import torch

from ibntrack.cli import main
from ibntrack.data.synth import generate_sequence
from ibntrack.demo import shipped_weights
from ibntrack.nn.checkpoint import load_checkpoint


def test_real_model_records_the_footage_it_adapted_to():
    ckpt = load_checkpoint(shipped_weights("real"))
    assert ckpt["model_config"]["arch"] == "resnet18-ibn"
    footage = ckpt["adapted_to"]["footage"]
    assert len(footage) == 1 and footage[0]["size"] == [768, 576] and footage[0]["frames"] == 397
    assert ckpt["adapted_to"]["teacher"] == "hog"
    assert "real" in ckpt["train_scene"]
    assert "optimizer" not in ckpt
    assert all(v.dtype == torch.float16 for v in ckpt["model"].values() if v.is_floating_point())


def test_track_without_weights_uses_the_real_model(tmp_path, capsys):
    seq = generate_sequence(tmp_path / "data", frames=3, objects=8, size=(384, 224), seed=0)
    torch.set_num_threads(1)
    assert main(["track", str(seq), "--out", str(tmp_path / "out"), "--precision", "fp32"]) == 0
    real = ["--weights", str(shipped_weights("real"))]
    assert main(["track", str(seq), "--out", str(tmp_path / "real"), "--precision", "fp32", *real]) == 0
    synthetic = ["--weights", str(shipped_weights("ibn"))]
    assert main(["track", str(seq), "--out", str(tmp_path / "syn"), "--precision", "fp32", *synthetic]) == 0
    default = (tmp_path / "out" / f"{seq.name}.txt").read_text()
    assert default == (tmp_path / "real" / f"{seq.name}.txt").read_text()
    assert default != (tmp_path / "syn" / f"{seq.name}.txt").read_text()
