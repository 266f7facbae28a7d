"""The training loop on a tiny synthetic sequence: overfitting, exact resume, DDP, fine-tuning, errors."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import pytest
import torch

from ibntrack.config import load_config
from ibntrack.nn.checkpoint import CheckpointError, load_checkpoint
from ibntrack.scene import parse_scene
from ibntrack.training import train as train_mod
from ibntrack.training.build import lr_factor
from ibntrack.training.train import Callback, TrainingError, fit

# ResNet-18-IBN with a narrow neck and heads at 64x96 input: about 0.3 s per step at batch 2 on one CPU core.
TINY = [
    "model.arch=resnet18-ibn",
    "model.emb_dim=16",
    "model.neck_channels=16",
    "model.head_conv=32",
    "data.input_size=[64, 96]",
    "data.augment=false",
    "data.workers=0",
    "train.batch_size=2",
    "train.lr=2e-3",
    "train.milestones=[]",
    "train.device=cpu",
    "train.log_every=1",
    "train.amp=false",
]


def _make_sequence(root: Path, seed: int, objects: int, frames: int = 6) -> Path:
    from ibntrack.data.synth import generate_sequence

    return generate_sequence(
        root, "summer", frames=frames, objects=objects, size=(320, 192), seed=seed, classes=("pedestrian",)
    )


def _config(data: Path | str, out: Path, *extra: str):
    return load_config(None, [*TINY, f"data.train=[{data}]", f"train.out_dir={out}", *extra])


def _steps(out: Path) -> list[dict]:
    lines = (out / "train_log.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["event"] == "step"]


def _weights(path: Path) -> dict[str, torch.Tensor]:
    ckpt = load_checkpoint(path)
    return {
        **{f"model.{k}": v for k, v in ckpt["model"].items()},
        **{f"loss.{k}": v for k, v in ckpt["loss"].items()},
    }


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One intra-op thread: faster on small shared CPUs, and the runs compared here use the same count."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    _make_sequence(root, seed=1, objects=5)
    return root


@pytest.fixture(scope="module")
def full_run(data, tmp_path_factory) -> Path:
    """5 epochs x 3 steps, uninterrupted; shared by the overfit, resume and fine-tune tests."""
    out = tmp_path_factory.mktemp("full")
    fit(_config(data, out, "train.epochs=5"))
    return out


def test_overfits_tiny_sequence(full_run):
    steps = _steps(full_run)
    assert [r["step"] for r in steps] == list(range(1, 16))
    for term in ("total", "det"):
        first = sum(r[term] for r in steps[:3]) / 3
        last = sum(r[term] for r in steps[-3:]) / 3
        assert last < 0.5 * first, (term, first, last)
    for name in ("last.pt", "best.pt", "config.yaml", "train_log.jsonl", "loss.png"):
        assert (full_run / name).is_file(), name
    png = cv2.imread(str(full_run / "loss.png"))
    assert png is not None and png.shape[2] == 3
    ckpt = load_checkpoint(full_run / "last.pt")
    assert ckpt["epoch"] == 5 and ckpt["step"] == 15 and ckpt["batch"] == 0
    assert ckpt["num_ids"] == 5 and ckpt["class_names"] == ["pedestrian"]
    assert ckpt["train_scene"] == parse_scene("summer, sunny, street, daytime").to_list()  # seqinfo.ini
    assert ckpt["model_config"]["arch"] == "resnet18-ibn" and ckpt["input_size"] == [64, 96]
    assert "backbone.bn1" in ckpt["bn_stats"]
    assert load_config(full_run / "config.yaml").train.epochs == 5


def test_stop_and_resume_equals_uninterrupted(data, full_run, tmp_path):
    out = tmp_path / "run"
    fit(_config(data, out, "train.epochs=5", "train.max_steps=8"))  # stops inside epoch 3
    stopped = load_checkpoint(out / "last.pt")
    assert (stopped["epoch"], stopped["batch"], stopped["step"]) == (2, 2, 8)
    fit(_config(data, out, "train.epochs=5", f"train.resume={out / 'last.pt'}"))
    resumed, reference = _weights(out / "last.pt"), _weights(full_run / "last.pt")
    assert resumed.keys() == reference.keys()
    for key in reference:
        assert torch.equal(resumed[key], reference[key]), key
    assert [r["step"] for r in _steps(out)] == list(range(1, 16))  # log continued, no duplicates


def test_finetune_keeps_weights_new_classifier_merged_scene(data, full_run, tmp_path):
    from ibntrack.data.synth import generate_sequence

    root = tmp_path / "winter"
    generate_sequence(root, "winter", frames=4, objects=3, size=(320, 192), seed=2, classes=("pedestrian",))
    source = load_checkpoint(full_run / "last.pt")
    out = tmp_path / "ft"
    fit(
        _config(
            root,
            out,
            "train.epochs=1",
            "train.lr=1e-12",
            "train.freeze_stages=2",
            f"train.finetune={full_run / 'last.pt'}",
        )
    )
    ckpt = load_checkpoint(out / "last.pt")
    assert ckpt["num_ids"] == 3 and ckpt["loss"]["reid.classifier.weight"].shape[0] == 3
    assert set(ckpt["train_scene"]) >= {"summer", "winter"}
    for key, value in source["model"].items():  # frozen stem + layer1: bit-identical (BN stats included)
        if key.startswith(("backbone.conv1", "backbone.bn1", "backbone.layer1")):
            assert torch.equal(ckpt["model"][key], value), key
        elif value.is_floating_point() and "running" not in key:
            assert torch.allclose(ckpt["model"][key], value, atol=1e-8), key
    assert torch.allclose(ckpt["loss"]["s_det"], source["loss"]["s_det"], atol=1e-8)

    with pytest.raises(CheckpointError, match="is for arch resnet18-ibn, the model is arch resnet34-ibn"):
        fit(
            _config(
                root, tmp_path / "bad", "model.arch=resnet34-ibn", f"train.finetune={full_run / 'last.pt'}"
            )
        )


def test_nan_loss_stops_and_keeps_last_good_checkpoint(data, tmp_path, monkeypatch):
    calls = {"n": 0}
    forward = train_mod.TrainModule.forward

    def poisoned(self, images, targets):
        calls["n"] += 1
        loss, parts = forward(self, images, targets)
        return (loss * math.nan, {**parts, "total": math.nan}) if calls["n"] == 5 else (loss, parts)

    monkeypatch.setattr(train_mod.TrainModule, "forward", poisoned)
    out = tmp_path / "nan"
    with pytest.raises(TrainingError, match=r"non-finite loss at step 5.*last good checkpoint is .*last\.pt"):
        fit(_config(data, out, "train.epochs=3"))
    assert load_checkpoint(out / "last.pt")["step"] == 3  # end of epoch 1
    records = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert records[-1]["event"] == "error"


@pytest.mark.parametrize(
    ("case", "match"),
    [
        ("empty_dir", "no MOTChallenge sequence"),
        ("missing", "does not exist"),
        ("no_paths", "data.train is empty"),
        ("big_batch", r"train.batch_size \(8\) is larger than the training set \(6 frames\)"),
        ("no_ids", "no identities"),
    ],
)
def test_bad_inputs_raise_before_any_step(case, match, data, tmp_path, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("a training step ran")

    monkeypatch.setattr(train_mod.TrainModule, "forward", never)
    extra: list[str] = []
    source: Path | str = data
    if case == "empty_dir":
        source = tmp_path / "empty"
        source.mkdir()
    elif case == "missing":
        source = tmp_path / "nowhere"
    elif case == "big_batch":
        extra = ["train.batch_size=8"]
    elif case == "no_ids":
        seq = next(data.iterdir())
        copy = tmp_path / "anon" / seq.name
        copy.parent.mkdir()
        (copy / "gt").mkdir(parents=True)
        (copy / "img1").symlink_to(seq / "img1")
        (copy / "seqinfo.ini").write_text((seq / "seqinfo.ini").read_text())
        rows = [line.split(",") for line in (seq / "gt" / "gt.txt").read_text().splitlines()]
        (copy / "gt" / "gt.txt").write_text("".join(",".join([r[0], "-1", *r[2:]]) + "\n" for r in rows))
        source = copy.parent
    cfg = _config(source, tmp_path / "out", *extra)
    if case == "no_paths":
        cfg = load_config(None, [*TINY, f"train.out_dir={tmp_path / 'out'}"])
    with pytest.raises(ValueError, match=match):
        fit(cfg)
    assert not (tmp_path / "out" / "last.pt").exists()


def test_two_process_ddp_ends_with_identical_weights(data, tmp_path):
    script = tmp_path / "ddp_fit.py"
    script.write_text(
        textwrap.dedent("""
        import hashlib, sys
        from pathlib import Path
        from ibntrack.config import load_config
        from ibntrack.training.train import Callback, fit

        class Dump(Callback):
            def on_train_end(self, state):
                h = hashlib.sha256()
                for name, p in sorted(state.module.named_parameters()):
                    h.update(name.encode()); h.update(p.detach().cpu().numpy().tobytes())
                Path(state.out_dir, f"rank{state.rank}.sha256").write_text(h.hexdigest())

        fit(load_config(None, sys.argv[1:]), callbacks=[Dump()])
    """)
    )
    out = tmp_path / "ddp"
    overrides = [*TINY, f"data.train=[{data}]", f"train.out_dir={out}", "train.epochs=1", "train.max_steps=2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("RANK", None)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--standalone",
        str(script),
        *overrides,
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    hashes = [(out / f"rank{r}.sha256").read_text() for r in (0, 1)]
    assert hashes[0] == hashes[1]
    ckpt = load_checkpoint(out / "last.pt")
    assert ckpt["step"] == 2 and ckpt["steps_per_epoch"] == 3  # 6 frames, global batch 2 = 1 per rank


def test_lr_schedule_hand_values():
    kw = dict(steps_per_epoch=10, total_steps=100, milestones=(3, 6), gamma=0.1, min_ratio=0.0, warmup=0)
    assert lr_factor(0, schedule="step", **kw) == 1.0
    assert lr_factor(29, schedule="step", **kw) == 1.0
    assert lr_factor(30, schedule="step", **kw) == pytest.approx(0.1)
    assert lr_factor(60, schedule="step", **kw) == pytest.approx(0.01)
    assert lr_factor(0, schedule="cosine", **kw) == 1.0
    assert lr_factor(50, schedule="cosine", **kw) == pytest.approx(0.5)
    assert lr_factor(100, schedule="cosine", **kw) == pytest.approx(0.0)
    assert lr_factor(100, schedule="cosine", **{**kw, "min_ratio": 0.1}) == pytest.approx(0.1)
    warm = {**kw, "warmup": 4}
    assert [lr_factor(s, schedule="step", **warm) for s in range(5)] == [0.25, 0.5, 0.75, 1.0, 1.0]


def test_callbacks_and_validation(data, tmp_path):
    class Record(Callback):
        def __init__(self):
            self.steps, self.epochs, self.end = [], [], 0

        def on_step_end(self, state):
            self.steps.append(state.step)

        def on_epoch_end(self, state):
            self.epochs.append((state.epoch, state.train_loss, state.val_loss))

        def on_train_end(self, state):
            self.end += 1

    cb = Record()
    out = tmp_path / "val"
    fit(_config(data, out, "train.epochs=1", f"data.val=[{data}]"), callbacks=[cb])
    assert cb.steps == [1, 2, 3] and cb.end == 1
    ((epoch, train_loss, val_loss),) = cb.epochs
    assert epoch == 0 and math.isfinite(train_loss) and math.isfinite(val_loss)
    record = json.loads((out / "train_log.jsonl").read_text().splitlines()[-1])
    assert record["event"] == "epoch" and record["best"] and record["val"]["det"] == pytest.approx(val_loss)
    assert load_checkpoint(out / "best.pt")["best_loss"] == pytest.approx(val_loss)  # best by val loss
    assert "optimizer" not in load_checkpoint(out / "best.pt")  # best.pt is for inference / fine-tuning
