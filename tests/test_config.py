"""Config: shipped YAML files, round trip, dotted overrides and their errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from ibntrack.config import Config, DataConfig, TrainConfig, load_config, save_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_shipped_mot17_config_is_fairmot_recipe():
    cfg = load_config(CONFIGS / "mot17_resnet50_ibn.yaml")
    assert cfg.model.arch == "resnet50-ibn"
    assert cfg.data.input_size == (608, 1088)
    assert cfg.train.optimizer == "adam" and cfg.train.lr == 1e-4
    assert cfg.train.epochs == 30 and cfg.train.milestones == (20,) and cfg.train.batch_size == 12
    assert cfg.loss.box_loss == "diou"


def test_shipped_synth_config_loads():
    cfg = load_config(CONFIGS / "synth_resnet18_ibn.yaml")
    assert cfg.model.arch == "resnet18-ibn"
    assert cfg.model.num_classes == cfg.data.num_classes == len(cfg.data.class_names)


def test_round_trip_is_equal_and_atomic(tmp_path):
    cfg = load_config(
        CONFIGS / "synth_resnet18_ibn.yaml", ["data.class_map={1: 0, 3: 1}", "train.max_steps=7"]
    )
    path = save_config(cfg, tmp_path / "sub" / "config.yaml")
    assert load_config(path) == cfg
    assert sorted(p.name for p in path.parent.iterdir()) == ["config.yaml"]  # no temp files left


def test_overrides_are_typed():
    cfg = load_config(
        None,
        [
            "train.lr=1e-3",  # YAML 1.1 reads this as a string; float fields accept it
            "model.arch=resnet18",
            "data.train=[a, b]",
            "data.input_size=[64, 96]",
            "train.resume=null",
            "train.epochs=3",
            "model.ibn_ratio=1",
        ],
    )
    assert cfg.train.lr == pytest.approx(1e-3) and isinstance(cfg.train.lr, float)
    assert cfg.model.arch == "resnet18"
    assert cfg.data.train == ("a", "b") and cfg.data.input_size == (64, 96)
    assert cfg.train.resume is None and cfg.train.epochs == 3
    assert cfg.model.ibn_ratio == 1.0


def test_defaults_without_a_file():
    cfg = load_config()
    assert cfg == Config()
    assert isinstance(cfg.data, DataConfig) and isinstance(cfg.train, TrainConfig)


@pytest.mark.parametrize(
    ("override", "needles"),
    [
        ("train.lrr=1", ["train.lrr", "allowed keys", "lr", "epochs"]),
        ("trian.lr=1", ["trian", "model, loss, data, train"]),
        ("train.lr=abc", ["override 'train.lr=abc'", "train.lr must be float"]),
        ("train.epochs=1.5", ["train.epochs must be int"]),
        ("train.amp=1", ["train.amp must be bool"]),
        ("data.input_size=[64, 96, 3]", ["data.input_size must have 2 items"]),
        ("train.schedule=linear", ["train.schedule must be one of"]),
        ("train.lr.x=1", ["'train.lr' is a value"]),
        ("train.lr", ["section.key=value"]),
        ("data.input_size=[65, 96]", ["multiples of 32"]),
        ("model.arch=resnet7", ["arch must be one of"]),
        ("data.photometric=heavy", ["data.photometric must be one of", "strong"]),
    ],
)
def test_override_errors_name_the_key(override, needles):
    with pytest.raises(ValueError) as err:
        load_config(None, [override])
    for needle in needles:
        assert needle in str(err.value)


def test_unknown_yaml_key_names_file_and_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("train:\n  epochs: 2\n  learning_rate: 0.1\n")
    with pytest.raises(ValueError, match=r"bad\.yaml.*train\.learning_rate.*allowed keys"):
        load_config(path)
    path.write_text("optimiser: {lr: 1}\n")
    with pytest.raises(ValueError, match=r"bad\.yaml.*'optimiser'"):
        load_config(path)


def test_bad_yaml_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_config(tmp_path / "nope.yaml")
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match="mapping"):
        load_config(path)
    path.write_text("train: {epochs: [\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_config(path)
    path.write_text("train: {epochs: two}\n")
    with pytest.raises(ValueError, match=r"list\.yaml.*train\.epochs must be int"):
        load_config(path)


def test_inconsistent_values_are_rejected():
    with pytest.raises(ValueError, match="model.num_classes"):
        load_config(None, ["model.num_classes=2"])
    with pytest.raises(ValueError, match="class_names"):
        load_config(None, ["data.num_classes=2", "model.num_classes=2"])
    with pytest.raises(ValueError, match="exclusive"):
        load_config(None, ["train.resume=a.pt", "train.finetune=b.pt"])
