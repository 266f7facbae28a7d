"""Checkpoints: atomic writes, weights_only loads, clear errors, model reconstruction."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ibntrack.nn import checkpoint as ckpt_mod
from ibntrack.nn.checkpoint import (
    CheckpointError,
    bn_running_stats,
    load_checkpoint,
    load_model,
    save_checkpoint,
)
from ibntrack.nn.model import ModelConfig, build_model_from_config

TINY = ModelConfig(arch="resnet18-ibn", emb_dim=8, neck_channels=16, head_conv=16)


def _payload(model: torch.nn.Module) -> dict:
    return {
        "model": model.state_dict(),
        "model_config": model.config.to_dict(),
        "class_names": ["pedestrian"],
        "num_ids": 3,
        "train_scene": ["summer", "street"],
        "bn_stats": bn_running_stats(model),
        "rng": {"python": [3, [1, 2, 3], None], "torch": torch.get_rng_state()},
        "nested": (1, 2.5, "x", True, None),
    }


def test_save_is_atomic_and_weights_only_loadable(tmp_path):
    torch.manual_seed(0)
    model = build_model_from_config(TINY)
    path = save_checkpoint(tmp_path / "run" / "last.pt", _payload(model))
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.pt"]  # temp file renamed away
    raw = torch.load(path, weights_only=True)  # the contract: plain torch, no pickled code
    assert raw["train_scene"] == ["summer", "street"] and raw["num_ids"] == 3
    ckpt = load_checkpoint(path)
    assert torch.equal(ckpt["model"]["backbone.conv1.weight"], model.state_dict()["backbone.conv1.weight"])
    assert ckpt["bn_stats"]["backbone.bn1"]["mean"].shape == (64,)


def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "last.pt", {"step": 1})

    def broken_save(obj, f):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(ckpt_mod.torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"step": 2})
    monkeypatch.undo()
    assert load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_save_rejects_objects_weights_only_cannot_load(tmp_path):
    with pytest.raises(ValueError, match=r"payload\['meta'\]\['path'\] is a PosixPath"):
        save_checkpoint(tmp_path / "x.pt", {"meta": {"path": Path("/tmp")}})
    assert not list(tmp_path.iterdir())


class _Custom:
    pass


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(CheckpointError, match="missing.pt does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"this is not a checkpoint at all")
    with pytest.raises(CheckpointError, match="garbage.pt"):
        load_checkpoint(garbage)
    good = save_checkpoint(tmp_path / "good.pt", {"w": torch.ones(1000)})
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="truncated.pt"):
        load_checkpoint(truncated)
    tensor_only = tmp_path / "tensor.pt"
    torch.save(torch.zeros(2), tensor_only)
    with pytest.raises(CheckpointError, match="tensor.pt is not a checkpoint"):
        load_checkpoint(tensor_only)
    pickled = tmp_path / "pickled.pt"
    torch.save({"obj": _Custom()}, pickled)
    with pytest.raises(CheckpointError, match="pickled.pt.*weights_only"):
        load_checkpoint(pickled)
    assert issubclass(CheckpointError, ValueError)


def test_load_model_rebuilds_the_network(tmp_path):
    torch.manual_seed(0)
    model = build_model_from_config(TINY).eval()
    path = save_checkpoint(tmp_path / "best.pt", _payload(model))
    loaded, ckpt = load_model(path)
    assert not loaded.training and ckpt["class_names"] == ["pedestrian"]
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        a, b = model(x), loaded(x)
    for key in a:
        assert torch.equal(a[key], b[key])


def test_load_model_mismatch_names_the_archs(tmp_path):
    model = build_model_from_config(TINY)
    payload = _payload(model)
    payload["model_config"] = ModelConfig(
        arch="resnet34-ibn", emb_dim=8, neck_channels=16, head_conv=16
    ).to_dict()
    path = save_checkpoint(tmp_path / "wrong.pt", payload)
    with pytest.raises(CheckpointError, match=r"wrong.pt is for arch resnet34-ibn.*missing keys"):
        load_model(path)
    not_model = save_checkpoint(tmp_path / "nomodel.pt", {"step": 3})
    with pytest.raises(CheckpointError, match="no 'model'"):
        load_model(not_model)


def test_bn_running_stats_cover_every_batchnorm():
    model = build_model_from_config(TINY)
    stats = bn_running_stats(model)
    bns = [n for n, m in model.named_modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert sorted(stats) == sorted(bns)
    name = bns[0]
    assert torch.equal(stats[name]["var"], dict(model.named_modules())[name].running_var)


def test_half_precision_weights_load_into_float32(tmp_path):
    from ibntrack.nn import build_model
    from ibntrack.nn.checkpoint import load_model, save_checkpoint

    model = build_model("resnet18-ibn", emb_dim=8, width=0.25, head_conv=8)
    state = {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    path = save_checkpoint(tmp_path / "half.pt", {"model": state, "model_config": model.config.to_dict()})
    loaded, _ = load_model(path)
    w, w0 = loaded.backbone.conv1.weight, model.backbone.conv1.weight
    assert w.dtype == torch.float32 and torch.allclose(w, w0, atol=1e-3)
