"""Fixtures of the batch-tracking tests: a tiny checkpoint and a small archive of generated sequences."""

from __future__ import annotations

import pytest

from ibntrack.data.synth import generate_sequence
from tests.tiny import save_tiny_checkpoint

# three domains: their scene keywords give different sparsity factors against the training scene
DOMAINS = ("winter", "summer", "night")


@pytest.fixture(scope="package")
def ckpt(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    return save_tiny_checkpoint(path, 3.0, ("pedestrian", "vehicle"), train_scene=["summer", "street", "day"])


@pytest.fixture(scope="package")
def archive(tmp_path_factory):
    """A root of three 6-frame MOT sequences a0, a1, a2 (96x64, three objects each)."""
    root = tmp_path_factory.mktemp("archive")
    for i, domain in enumerate(DOMAINS):
        generate_sequence(root, domain=domain, frames=6, objects=3, size=(96, 64), seed=i, name=f"a{i}")
    return root


@pytest.fixture(scope="package")
def reference(archive, ckpt, tmp_path_factory):
    """The single-process ``ibntrack.track`` results of the archive (with JSON lines)."""
    from ibntrack.engine.infer import track

    out = tmp_path_factory.mktemp("reference")
    track(archive, ckpt, out_dir=out, save_json=True, progress=False)
    return out
