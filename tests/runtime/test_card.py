"""ModelCard: one typed description of a model, from a checkpoint dict or from export metadata."""

import json

import pytest

from ibntrack.nn.model import ModelConfig
from ibntrack.runtime import ModelCard

CONFIG = ModelConfig(arch="resnet18-ibn", num_classes=2, emb_dim=16).to_dict()


def test_from_checkpoint_reads_every_field() -> None:
    ckpt = {
        "model_config": CONFIG,
        "input_size": [64, 96],
        "class_names": ["car", "person"],
        "train_scene": ["summer", "street"],
        "num_ids": 7,
        "tracker": {"det_thresh": 0.45},
    }
    card = ModelCard.from_checkpoint(ckpt, source="m.pt")
    assert (card.arch, card.num_classes, card.emb_dim) == ("resnet18-ibn", 2, 16)
    assert card.input_size == (64, 96)
    assert card.class_names == ("car", "person") and card.train_scene == ("summer", "street")
    assert card.num_ids == 7 and dict(card.tracker) == {"det_thresh": 0.45} and card.source == "m.pt"


def test_input_size_falls_back_to_the_training_config_and_may_be_missing() -> None:
    ckpt = {"model_config": CONFIG, "config": {"data": {"input_size": [320, 576]}}}
    assert ModelCard.from_checkpoint(ckpt).input_size == (320, 576)
    bare = ModelCard.from_checkpoint({"model_config": CONFIG}, source="bare.pt")
    assert bare.input_size is None
    with pytest.raises(ValueError, match="bare.pt stores no input_size"):
        bare.require_input_size()


def test_defaults_for_class_names() -> None:
    one = ModelCard(ModelConfig(arch="resnet18", num_classes=1))
    three = ModelCard(ModelConfig(arch="resnet18", num_classes=3))
    assert one.class_names == ("object",) and three.class_names == ("0", "1", "2")


@pytest.mark.parametrize("size", [(65, 96), (0, 96), (64,), "64x96"])
def test_bad_input_size_is_refused(size: object) -> None:
    with pytest.raises(ValueError, match="input_size"):
        ModelCard(ModelConfig(arch="resnet18"), input_size=size)  # type: ignore[arg-type]


def test_no_model_config_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="x.pt has no 'model_config'"):
        ModelCard.from_checkpoint({"model": {}}, source="x.pt")


def test_metadata_round_trip_through_json() -> None:
    card = ModelCard(
        ModelConfig(arch="resnet34-ibn", num_classes=2, emb_dim=32),
        input_size=(608, 1088),
        class_names=("pedestrian", "vehicle"),
        train_scene=("winter",),
        num_ids=12,
        tracker={"track_buffer": 40},
    )
    meta = json.loads(json.dumps(card.to_metadata()))
    assert meta["input_size"] == [608, 1088] and meta["arch"] == "resnet34-ibn"
    assert ModelCard.from_metadata(meta) == card
