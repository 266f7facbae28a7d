"""``track_many`` / ``ibntrack track`` on the local engine: sources, lists, fsspec output, chunks, errors."""

from __future__ import annotations

import json
import sys

import pytest

from ibntrack.cli import main
from ibntrack.data.motio import read_results
from ibntrack.distributed import track_many
from ibntrack.distributed.plan import plan_sources, read_source_list


def test_local_engine_is_identical_and_writes_to_an_fsspec_url(archive, ckpt, reference, tmp_path):
    report = track_many(archive, ckpt, out_dir=f"file://{tmp_path}/out", save_json=True)
    assert [s.status for s in report.sources] == ["done"] * 3
    for name in ("a0", "a1", "a2"):
        for suffix in (".txt", ".jsonl"):
            assert (tmp_path / "out" / f"{name}{suffix}").read_bytes() == (
                reference / f"{name}{suffix}"
            ).read_bytes()
    marker = json.loads((tmp_path / "out" / "_done" / "a0.json").read_text())
    assert marker["files"] == ["a0.txt", "a0.jsonl"] and marker["frames"] == 6
    assert not list((tmp_path / "out").glob(".*.tmp"))  # no temporary file left behind


def test_resume_retracks_what_is_not_finished_with_these_settings(archive, ckpt, reference, tmp_path):
    out = tmp_path / "out"
    assert len(track_many(archive, ckpt, out_dir=out).done) == 3
    # a source without its done-marker (its run died before publishing) is tracked again, alone
    (out / "_done" / "a1.json").unlink()
    again = track_many(archive, ckpt, out_dir=out)
    assert [s.status for s in again.sources] == ["skipped", "done", "skipped"]
    assert (out / "a1.txt").read_bytes() == (reference / "a1.txt").read_bytes()
    # a marker whose file is gone does not count either
    (out / "a2.txt").unlink()
    assert [s.status for s in track_many(archive, ckpt, out_dir=out).sources] == [
        "skipped",
        "skipped",
        "done",
    ]
    # other settings (another threshold) do not count as finished; --threads does not change results
    assert len(track_many(archive, ckpt, out_dir=out, threads=1).skipped) == 3
    changed = track_many(archive, ckpt, out_dir=out, tracker_overrides={"det_thresh": 0.4})
    assert [s.status for s in changed.sources] == ["done"] * 3
    assert len(track_many(archive, ckpt, out_dir=out, resume=False).done) == 3  # --overwrite


def test_chunks_own_their_frames_and_the_first_chunk_equals_one_piece(archive, ckpt, reference, tmp_path):
    out = tmp_path / "out"
    report = track_many(archive / "a0", ckpt, out_dir=out, chunk_frames=3, chunk_overlap=2)
    (s,) = report.sources
    assert (s.status, s.chunks, s.frames) == ("done", 2, 6)
    rows, ref = read_results(out / "a0.txt"), read_results(reference / "a0.txt")
    # chunk 0 (frames 1-3) is the one-piece run's first three frames exactly
    assert (rows[rows[:, 0] <= 3] == ref[ref[:, 0] <= 3]).all()
    assert set(rows[:, 0].astype(int)) <= set(range(1, 7))
    # a source no longer than a chunk is tracked whole: identical to the one-piece run
    whole = track_many(archive / "a1", ckpt, out_dir=tmp_path / "w", chunk_frames=6, chunk_overlap=2)
    assert whole.sources[0].chunks == 1
    assert (tmp_path / "w" / "a1.txt").read_bytes() == (reference / "a1.txt").read_bytes()


def test_source_lists_and_duplicate_names(archive, tmp_path):
    listing = tmp_path / "sources.txt"
    listing.write_text(f"# my archive\n{archive / 'a2'}\n\n{archive / 'a0'}\n")
    assert [p.name for p in plan_sources(read_source_list(listing))] == ["a2", "a0"]
    with pytest.raises(ValueError, match="two sources are named 'a0'"):
        plan_sources([str(archive / "a0"), str(archive)])
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n")
    with pytest.raises(ValueError, match="empty.txt: the source list holds no sources"):
        read_source_list(empty)


def test_engine_ray_without_ray_says_how_to_install(archive, ckpt, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError, as when not installed
    argv = ["track", str(archive), "--weights", str(ckpt), "--out", str(tmp_path), "--engine", "ray"]
    assert main(argv) == 2
    assert "pip install 'ibntrack[ray]'" in capsys.readouterr().err


def test_bad_engine_options_are_refused(archive, ckpt, tmp_path, capsys):
    with pytest.raises(ValueError, match="--chunk-frames writes result files only"):
        track_many(archive, ckpt, out_dir=tmp_path, chunk_frames=2, save_video=True)
    with pytest.raises(ValueError, match="--chunk-overlap 3 must be"):
        track_many(archive, ckpt, out_dir=tmp_path, chunk_frames=3, chunk_overlap=3)
    with pytest.raises(ValueError, match="engine='spark'"):
        track_many(archive, ckpt, out_dir=tmp_path, engine="spark")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="bad.pt"):  # by the driver, before any worker starts
        track_many(archive, bad, out_dir=tmp_path / "o", engine="ray")
    assert not (tmp_path / "o").exists()
    # Ray-only flags on the local engine are refused by name, before any work
    assert (
        main(["track", str(archive), "--weights", str(ckpt), "--out", str(tmp_path), "--workers", "2"]) == 2
    )
    assert "--workers: Ray flag(s); add --engine ray" in capsys.readouterr().err
    assert (
        main(
            [
                "tune",
                str(archive),
                "--weights",
                str(ckpt),
                "--out",
                str(tmp_path / "t.yaml"),
                "--address",
                "auto",
            ]
        )
        == 2
    )
    assert "--address: Ray flag(s)" in capsys.readouterr().err


def test_eval_with_weights_tracks_then_scores(archive, ckpt, tmp_path, capsys):
    results = tmp_path / "results"
    assert main(["eval", "--gt", str(archive), "--results", str(results), "--weights", str(ckpt)]) == 0
    text = capsys.readouterr().out
    assert "3 done" in text and "HOTA" in text
    # the same as `ibntrack track` with its defaults, then `ibntrack eval`
    assert (
        main(["track", str(archive / "a2"), "--weights", str(ckpt), "--out", str(tmp_path / "single")]) == 0
    )
    assert (results / "a2.txt").read_bytes() == (tmp_path / "single" / "a2.txt").read_bytes()


def test_cli_chunks_into_a_url_and_resumes(archive, ckpt, tmp_path, capsys):
    argv = [
        "track",
        str(archive / "a0"),
        "--weights",
        str(ckpt),
        "--out",
        f"file://{tmp_path}/o",
        "--chunk-frames",
        "4",
    ]
    assert main(argv) == 0
    assert "1 done, 0 skipped" in capsys.readouterr().out
    assert json.loads((tmp_path / "o" / "_done" / "a0.json").read_text())["chunks"] == 2
    assert main(argv) == 0
    assert "0 done, 1 skipped" in capsys.readouterr().out


def test_an_address_nobody_answers_is_refused_fast(archive, ckpt, tmp_path, capsys):
    pytest.importorskip("ray")
    argv = ["track", str(archive), "--weights", str(ckpt), "--out", str(tmp_path), "--engine", "ray"]
    assert main([*argv, "--address", "127.0.0.1:9"]) == 2  # the discard port: nothing listens
    assert "--address 127.0.0.1:9: no Ray cluster answers there" in capsys.readouterr().err
    assert main([*argv, "--address", "ray://nohostport"]) == 2
    assert "expected auto, HOST:PORT or ray://HOST:PORT" in capsys.readouterr().err
