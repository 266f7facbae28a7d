"""``model.pretrained`` in training: the report is logged at the start, a misfit stops the run unless
``--allow-partial``."""

from __future__ import annotations

import logging

import pytest
import torch

from ibntrack.cli import main
from ibntrack.nn.checkpoint import load_checkpoint

from ..nn.test_pretrained import reference_state

TINY = [
    "model.arch=resnet18-ibn",
    "model.emb_dim=8",
    "model.neck_channels=8",
    "model.head_conv=8",
    "data.input_size=[64, 96]",
    "data.augment=false",
    "data.workers=0",
    "train.batch_size=2",
    "train.lr=1e-3",
    "train.milestones=[]",
    "train.device=cpu",
    "train.amp=false",
    "train.max_steps=1",
    "train.val_every=0",
]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from ibntrack.data.synth import generate_sequence

    root = tmp_path_factory.mktemp("pre")
    return generate_sequence(
        root, "summer", frames=3, objects=3, size=(192, 128), seed=0, classes=("pedestrian",)
    )


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("weights")
    torch.save(reference_state(18, ibn_a=True), root / "resnet18_ibn_a.pth")
    torch.save(reference_state(34), root / "resnet34.pth")
    return root


def _train(data, out, *extra):
    torch.set_num_threads(1)
    return main(["train", "--data", str(data), "--out", str(out), *extra, *TINY])


def test_pretrained_backbone_is_loaded_and_reported(data, files, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="ibntrack")
    pth = files / "resnet18_ibn_a.pth"
    assert _train(data, tmp_path / "run", "--config", _config(tmp_path), "--pretrained", str(pth)) == 0
    text = caplog.text
    assert "ibn-net layout, resnet18_ibn_a weights -> resnet18-ibn backbone" in text
    assert "0 missing, 0 unexpected, 0 shape-mismatched" in text
    ckpt = load_checkpoint(tmp_path / "run" / "last.pt")
    assert "pretrained" not in ckpt["model_config"]  # how training started is not the architecture
    src = reference_state(18, ibn_a=True)
    # one Adam step moves each weight by at most ~lr: the trained stem is still the file's stem
    delta = (ckpt["model"]["backbone.conv1.weight"] - src["conv1.weight"]).abs().max().item()
    assert delta < 2e-3
    delta = (ckpt["model"]["backbone.layer1.0.bn1.in_weight"] - src["layer1.0.bn1.IN.weight"]).abs().max()
    assert delta.item() < 2e-3  # IBN-Net's IN affine landed in our IN half


def test_another_architecture_stops_unless_allow_partial(data, files, tmp_path, capsys):
    pth = files / "resnet34.pth"
    code = _train(data, tmp_path / "a", "--config", _config(tmp_path), "--pretrained", str(pth))
    err = capsys.readouterr().err
    assert code == 2 and "resnet34 weights, the model is resnet18-ibn" in err and "--allow-partial" in err
    assert not (tmp_path / "a" / "last.pt").exists()
    code = _train(
        data, tmp_path / "b", "--config", _config(tmp_path), "--pretrained", str(pth), "--allow-partial"
    )
    assert code == 0 and (tmp_path / "b" / "last.pt").exists()


def _config(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model: {arch: resnet18-ibn}\n")
    return str(path)
