"""ONNX export: two graphs, metadata, ONNX Runtime vs the folded torch model, exact and sparse IN."""

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import nn

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from ibntrack import __version__  # noqa: E402
from ibntrack.export import export_onnx  # noqa: E402
from ibntrack.nn import (  # noqa: E402
    IBN,
    build_model,
    fold_model,
    force_refresh,
    get_stream_state,
    reset_stream,
    set_sparsity,
    set_stream_state,
    stream_stats,
)
from ibntrack.nn.checkpoint import CheckpointError, load_model, save_checkpoint  # noqa: E402
from ibntrack.runtime import OnnxBackend, load_onnx_model  # noqa: E402
from ibntrack.runtime.ort import META_KEY, cached_graph_path  # noqa: E402

TOL = 1e-4
INPUT_SIZE = (64, 96)  # (H, W)
CLASS_NAMES = ["car", "person"]
TRAIN_SCENE = ["summer", "highway"]


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Single-threaded torch: intra-op threads on a busy shared CPU are far slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _checkpoint(path: Path, arch: str) -> Path:
    """A tiny model with non-trivial BN statistics and affine parameters, saved as a checkpoint."""
    torch.manual_seed(0)
    model = build_model(arch, num_classes=2, emb_dim=16, neck_channels=16, head_conv=16).train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(2, 3, *INPUT_SIZE) * 1.5 + 0.3)
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d | IBN):
                for p in m.parameters():
                    p.add_(torch.randn_like(p) * 0.2)
    payload = {
        "format_version": 1,
        "model": model.state_dict(),
        "model_config": model.config.to_dict(),
        "class_names": CLASS_NAMES,
        "input_size": list(INPUT_SIZE),
        "num_ids": 7,
        "train_scene": TRAIN_SCENE,
    }
    return save_checkpoint(path, payload)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(checkpoint, refresh graph) of a resnet18-ibn export."""
    root = tmp_path_factory.mktemp("export")
    ckpt = _checkpoint(root / "model.pt", "resnet18-ibn")
    return ckpt, export_onnx(ckpt, root / "model.onnx")


def _folded(ckpt: Path) -> nn.Module:
    model, _ = load_model(ckpt)
    return fold_model(model)


def _assert_close(onnx_out: dict, torch_out: dict) -> None:
    assert onnx_out.keys() == torch_out.keys() == {"hm", "wh", "reg", "id"}
    for key in torch_out:
        assert onnx_out[key].shape == torch_out[key].shape
        torch.testing.assert_close(onnx_out[key], torch_out[key], atol=TOL, rtol=TOL)


def test_export_writes_refresh_and_cached_graphs(exported: tuple[Path, Path]) -> None:
    _, path = exported
    assert path.name == "model.onnx"
    assert cached_graph_path(path).name == "model.cached.onnx"
    assert cached_graph_path(path).is_file()
    leftovers = [p.name for p in path.parent.iterdir() if p.name.startswith(".")]
    assert leftovers == []  # temporary files were moved or removed


def test_metadata_round_trip(exported: tuple[Path, Path]) -> None:
    import onnx

    _, path = exported
    meta = load_onnx_model(path).meta
    assert meta["input_size"] == list(INPUT_SIZE)
    assert meta["class_names"] == CLASS_NAMES
    assert meta["train_scene"] == TRAIN_SCENE
    assert (meta["num_classes"], meta["emb_dim"], meta["arch"]) == (2, 16, "resnet18-ibn")
    assert meta["version"] == __version__
    assert meta["num_ids"] == 7
    assert len(meta["ibn_layers"]) == 6  # resnet18: 2 blocks in each of layer1-layer3
    props = {p.key: p.value for p in onnx.load(str(cached_graph_path(path))).metadata_props}
    assert json.loads(props[META_KEY])["graph"] == "cached"


def test_exact_in_matches_torch_dynamic_batch_and_size(exported: tuple[Path, Path]) -> None:
    ckpt, path = exported
    folded, runner = _folded(ckpt), OnnxBackend(path, threads=1)
    torch.manual_seed(1)
    with torch.no_grad():
        for shape in [(1, 3, *INPUT_SIZE), (1, 3, *INPUT_SIZE), (2, 3, 96, 128)]:
            x = torch.randn(shape)
            _assert_close(runner(x), folded(x))
            assert runner.last_path == "refresh"
    assert stream_stats(runner) == stream_stats(folded) == {"frames": 4, "refreshes": 4}


@pytest.mark.parametrize(
    "options", [{}, {"spin": True, "session_config": {"session.set_denormal_as_zero": "1"}}]
)
def test_streaming_s3_matches_folded_torch(exported: tuple[Path, Path], options: dict) -> None:
    ckpt, path = exported
    folded, runner = _folded(ckpt), OnnxBackend(path, threads=1, **options)
    for model in (folded, runner):  # the ibntrack.nn functions drive the runner by duck typing
        set_sparsity(model, 3)
        reset_stream(model)
    torch.manual_seed(2)
    paths = []
    with torch.no_grad():
        for t in range(7):
            if t == 5:
                force_refresh(folded)
                force_refresh(runner)
            x = torch.randn(1, 3, *INPUT_SIZE)
            _assert_close(runner(x), folded(x))
            paths.append(runner.last_path)
    # frames 0 and 3 refresh on schedule, 5 by force; 6 reuses 5's statistics
    assert paths == ["refresh", "cached", "cached", "refresh", "cached", "refresh", "cached"]
    assert stream_stats(runner) == stream_stats(folded) == {"frames": 7, "refreshes": 3}
    reset_stream(runner)
    assert stream_stats(runner) == {"frames": 0, "refreshes": 0}


def test_stream_state_moves_between_torch_and_onnx(exported: tuple[Path, Path]) -> None:
    ckpt, path = exported
    folded, runner = _folded(ckpt), OnnxBackend(path, threads=1)
    set_sparsity(folded, 4)
    set_sparsity(runner, 4)
    torch.manual_seed(3)
    frames = torch.randn(3, 1, 3, *INPUT_SIZE)
    with torch.no_grad():
        folded(frames[0])  # refresh in torch only
        set_stream_state(runner, get_stream_state(folded))
        for x in frames[1:]:  # both reuse the statistics torch computed
            _assert_close(runner(x), folded(x))
        assert runner.last_path == "cached"
    assert stream_stats(runner) == stream_stats(folded) == {"frames": 3, "refreshes": 1}


def test_plain_bn_model_has_one_graph(tmp_path: Path) -> None:
    ckpt = _checkpoint(tmp_path / "bn.pt", "resnet18")
    path = export_onnx(ckpt, tmp_path / "bn.onnx", input_size=(32, 64), dynamic=False)
    assert not cached_graph_path(path).exists()
    runner = OnnxBackend(path, threads=1)
    set_sparsity(runner, 5)
    x = torch.randn(1, 3, 32, 64)
    with torch.no_grad():
        _assert_close(runner(x), _folded(ckpt)(x))
    assert stream_stats(runner) == {"frames": 0, "refreshes": 0}  # as torch: no IBN layers
    assert runner.meta["input_size"] == [32, 64]


def test_bad_paths_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        export_onnx(tmp_path / "missing.pt", tmp_path / "m.onnx")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="corrupt"):
        export_onnx(junk, tmp_path / "m.onnx")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        OnnxBackend(tmp_path / "missing.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_cli_export(exported: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from ibntrack.cli import main

    ckpt, _ = exported
    out = tmp_path / "cli.onnx"
    assert main(["export", "--weights", str(ckpt), "--out", str(out), "--input-size", "64x32"]) == 0
    printed = capsys.readouterr().out
    assert "max abs diff" in printed and str(out) in printed
    assert OnnxBackend(out).meta["input_size"] == [32, 64]
    assert main(["export", "--weights", str(tmp_path / "nope.pt"), "--out", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_the_card_travels_with_the_export_so_both_backends_track_alike(tmp_path: Path) -> None:
    """Class names, scene and the calibrated tracker thresholds reach ONNX Runtime unchanged."""
    from ibntrack.engine.infer import Tracker

    ckpt = _checkpoint(tmp_path / "cal.pt", "resnet18-ibn")
    payload = torch.load(ckpt, weights_only=True)
    payload["tracker"] = {"det_thresh": 0.42, "track_buffer": 17}
    save_checkpoint(ckpt, payload)
    path = export_onnx(ckpt, tmp_path / "cal.onnx", check=False)
    card = OnnxBackend(path).card
    assert dict(card.tracker) == {"det_thresh": 0.42, "track_buffer": 17}
    assert card.class_names == tuple(CLASS_NAMES) and card.train_scene == tuple(TRAIN_SCENE)
    a, b = Tracker.from_checkpoint(ckpt), Tracker.from_checkpoint(path)
    assert a.tracker_config == b.tracker_config and a.tracker_config.det_thresh == 0.42
    assert a.class_names == b.class_names and a.input_size == b.input_size == INPUT_SIZE
