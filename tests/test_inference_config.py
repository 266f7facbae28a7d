"""``InferenceConfig``: one tree for track, tune, demo and eval; merged model card → YAML → flags (later
wins), checked by the training config's loader; the ONNX rule in one place; ``Tracker(cfg)``."""

from pathlib import Path

import pytest
import yaml

from ibntrack.cli import build_parser
from ibntrack.cli.flags import inference_config
from ibntrack.config import InferenceConfig, load_inference_config
from ibntrack.engine.infer import Tracker
from ibntrack.runtime import BACKENDS, RuntimeConfig, read_card
from ibntrack.tracking import TrackerConfig
from tests.tiny import save_tiny_checkpoint


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    return save_tiny_checkpoint(path, 0.5, tracker={"det_thresh": 0.55, "track_buffer": 12})


def _yaml(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "inference.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_card_then_file_then_overrides(ckpt, tmp_path):
    card = read_card(ckpt)
    path = _yaml(
        tmp_path,
        {
            "association": {"track_buffer": 20, "low_thresh": 0.2},
            "stream": {"sparsity": 2},
            "decode": {"top_k": 9},
        },
    )
    cfg = load_inference_config(path, {"association.low_thresh": 0.3, "stream.scene": "snow"}, card=card)
    a = cfg.association
    assert a.det_thresh == 0.55  # the card's (the file and the flags leave it)
    assert a.track_buffer == 20  # the file's over the card's 12
    assert a.low_thresh == 0.3  # the override's over the file's 0.2
    assert a.new_track_thresh == TrackerConfig().new_track_thresh  # nobody's: the default
    assert (cfg.stream.sparsity, cfg.stream.scene, cfg.decode.top_k) == (2, "snow", 9)
    assert load_inference_config(None, card=card).association == TrackerConfig(
        det_thresh=0.55, track_buffer=12
    )
    assert load_inference_config().association is None  # no card: the tracker takes the card's later


def test_tune_settings_file_is_the_association_section(tmp_path):
    tuned = load_inference_config(_yaml(tmp_path, {"tracker": {"det_thresh": 0.4}}))
    bare = load_inference_config(_yaml(tmp_path, {"det_thresh": 0.4}))
    assert tuned == bare and tuned.association == TrackerConfig(det_thresh=0.4)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"association": {"det_thres": 0.4}}, "unknown key association.'det_thres'"),
        ({"stream": {"sparsity": 0}}, "stream.sparsity"),
        ({"runtime": {"precision": "int4"}}, "runtime.precision must be one of"),
        ({"decoder": {}}, "unknown key 'decoder'"),
    ],
)
def test_bad_settings_name_the_file_and_the_key(tmp_path, data, words):
    path = _yaml(tmp_path, data)
    with pytest.raises(ValueError) as err:
        load_inference_config(path)
    assert str(path) in str(err.value) and words in str(err.value)


def test_the_onnx_rule_is_checked_once_for_every_caller():
    for bad in ({"adapt_bn": 3}, {"precision": "bf16"}, {"device": "cuda"}):
        with pytest.raises(ValueError, match="PyTorch backend|torch backend|cpu"):
            RuntimeConfig(weights="m.onnx", **bad)
        with pytest.raises(ValueError):
            RuntimeConfig(weights="m.pt", backend="onnxruntime", **bad)
    onnx = RuntimeConfig(weights="m.onnx", precision="auto").resolved()
    assert (onnx.backend, onnx.precision) == ("onnxruntime", "fp32")  # the export's own format
    assert RuntimeConfig(weights="m.pt", adapt_bn=3).resolved().backend == "torch"
    assert set(BACKENDS) == {"torch", "onnxruntime"}


def test_cli_flags_win_over_the_file_which_wins_over_the_cli_defaults(ckpt, tmp_path):
    path = _yaml(tmp_path, {"runtime": {"precision": "fp32"}, "stream": {"sparsity": 2, "cmc": "sparse"}})
    argv = ["track", "seq", "--weights", str(ckpt), "--tracker-config", str(path), "--sparsity", "4"]
    args = build_parser().parse_args(argv)
    cfg = inference_config(args)
    assert cfg.runtime.precision == "fp32"  # the file's over the CLI default auto
    assert cfg.stream.sparsity == 4 and args.sparsity == 4  # the flag's over the file's 2, left in args
    assert cfg.stream.cmc == "sparse" and args.cmc == "sparse"
    assert cfg.association.det_thresh == 0.55  # the checkpoint's
    plain = inference_config(build_parser().parse_args(["track", "seq", "--weights", str(ckpt)]))
    assert plain.runtime.precision == "auto" and plain.stream.sparsity is None


def test_tracker_is_built_from_the_config(ckpt):
    cfg = InferenceConfig().replace(
        runtime={"weights": str(ckpt)}, stream={"sparsity": 3}, decode={"top_k": 7}
    )
    trk = Tracker(cfg)
    assert trk.backend.name == "torch" and trk.sparsity == 3 and trk.top_k == 7
    assert trk.tracker_config == TrackerConfig(det_thresh=0.55, track_buffer=12)  # the card's
    assert trk.conf_thresh == trk.tracker_config.low_thresh
    same = Tracker.from_checkpoint(ckpt, sparsity=3, top_k=7)
    assert same.config == trk.config
    with pytest.raises(ValueError, match="weights"):
        Tracker(InferenceConfig())
