"""``--engine ray`` on a local Ray cluster (two CPUs): identical results, resume, a killed worker, bad input.

One cluster for the module (``ray.init(num_cpus=2)``), shut down at its end. Each Ray call starts its
actors (a process that imports torch: seconds), so the tests start as few as they can: two workers once,
one elsewhere; what the driver alone decides (resume, fingerprints) is tested on the local engine.
"""

from __future__ import annotations

import os
import shutil

import pytest

from ibntrack.cli import main
from ibntrack.distributed import track_many

ray = pytest.importorskip("ray")

NAMES = ("a0", "a1", "a2")


@pytest.fixture(scope="module", autouse=True)
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield
    ray.shutdown()


def _same_files(a, b, suffixes=(".txt",)):
    return all((a / f"{n}{s}").read_bytes() == (b / f"{n}{s}").read_bytes() for n in NAMES for s in suffixes)


def test_results_identical_to_single_process_then_resume_skips(archive, ckpt, reference, tmp_path):
    out = tmp_path / "out"
    report = track_many(archive, ckpt, out_dir=out, engine="ray", workers=2, save_json=True)
    assert [s.status for s in report.sources] == ["done"] * 3 and report.workers == 2
    assert _same_files(reference, out, (".txt", ".jsonl"))
    assert sorted(p.name for p in (out / "_done").iterdir()) == ["a0.json", "a1.json", "a2.json"]

    # a second run skips every finished source and rewrites nothing
    stamps = {n: (out / f"{n}.txt").stat().st_mtime_ns for n in NAMES}
    again = track_many(archive, ckpt, out_dir=out, engine="ray", workers=2, save_json=True)
    assert [s.status for s in again.sources] == ["skipped"] * 3 and again.workers == 0
    assert stamps == {n: (out / f"{n}.txt").stat().st_mtime_ns for n in NAMES}

    # (what counts as finished is decided by the driver, the same for both engines: test_track_many.py)


def test_a_killed_worker_is_retried(archive, ckpt, reference, tmp_path):
    marker = tmp_path / "killed-once"
    out = tmp_path / "out"
    report = track_many(archive, ckpt, out_dir=out, engine="ray", workers=1, fault=("a1", str(marker)))
    assert marker.is_file()  # the worker did die (SIGKILL) on its first attempt at a1
    assert [s.status for s in report.sources] == ["done"] * 3
    assert _same_files(reference, out)


def test_a_bad_source_is_reported_and_the_others_finish(archive, ckpt, tmp_path, capsys):
    root = tmp_path / "root"
    shutil.copytree(archive, root)
    (root / "a1" / "img1" / "000004.jpg").write_bytes(b"not a jpeg")  # fails mid-sequence, in a worker
    shutil.rmtree(root / "a2" / "img1")  # cannot even be opened
    (root / "a2" / "img1").mkdir()
    out = tmp_path / "out"
    argv = [
        "track",
        str(root),
        "--weights",
        str(ckpt),
        "--out",
        str(out),
        "--engine",
        "ray",
        "--workers",
        "1",
    ]
    code = main(argv)
    text = capsys.readouterr().out
    assert code == 1
    assert "1 done, 0 skipped (already finished), 2 failed" in text
    assert "000004.jpg" in text and "a2" in text
    # the CLI's defaults (precision auto, ...) give the same bytes as the single-process CLI run
    assert main(["track", str(root / "a0"), "--weights", str(ckpt), "--out", str(tmp_path / "single")]) == 0
    assert (out / "a0.txt").read_bytes() == (tmp_path / "single" / "a0.txt").read_bytes()
    assert not (out / "a1.txt").exists() and not (out / "a2.txt").exists()
    assert sorted(os.listdir(out / "_done")) == ["a0.json"]


def test_tune_network_pass_on_ray_equals_the_local_one(archive, ckpt):
    from ibntrack.distributed import cache_sequences_many
    from ibntrack.tune import cache_sequences

    local = cache_sequences(archive, ckpt, progress=False)
    remote = cache_sequences_many(archive, ckpt, workers=1, progress=False)
    assert [s.name for s in remote] == [s.name for s in local] == list(NAMES)
    for a, b in zip(local, remote, strict=True):
        assert [f for f, _ in a.frames] == [f for f, _ in b.frames]
        for (_, da), (_, db) in zip(a.frames, b.frames, strict=True):
            assert (da.boxes == db.boxes).all() and (da.scores == db.scores).all()
