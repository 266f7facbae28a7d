"""Acquisition: image folders, MOT sequences, videos, and the errors on bad input."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from ibntrack.engine.sources import SourceError, open_sources


def _write_images(folder: Path, n: int, size=(48, 32), names=None) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        img = np.full((size[1], size[0], 3), 10 * i, np.uint8)
        p = folder / (names[i] if names else f"{i + 1:06d}.png")
        cv2.imwrite(str(p), img)
        paths.append(p)
    return paths


def test_image_folder_natural_order(tmp_path):
    _write_images(tmp_path / "f", 3, names=["img10.png", "img2.png", "img1.png"])
    (src,) = open_sources(tmp_path / "f")
    frames = list(src)
    assert [f for f, _ in frames] == [1, 2, 3]
    # natural order: img1 (value 20), img2 (value 10), img10 (value 0)
    assert [int(img[0, 0, 0]) for _, img in frames] == [20, 10, 0]


def test_mot_sequence_reads_seqinfo(tmp_path):
    seq = tmp_path / "seqA"
    _write_images(seq / "img1", 2)
    (seq / "seqinfo.ini").write_text(
        "[Sequence]\nname=seqA\nimDir=img1\nframeRate=25\nseqLength=2\n"
        "imWidth=48\nimHeight=32\nimExt=.png\nsceneKeywords=winter, snow\n"
    )
    (src,) = open_sources(seq)
    assert src.frame_rate == 25.0 and src.length == 2 and src.scene == ("winter", "snow")
    assert src.sequence_dir == seq


def test_root_of_sequences(tmp_path):
    for name in ("b", "a"):
        _write_images(tmp_path / "train" / name / "img1", 1)
    names = [s.name for s in open_sources(tmp_path)]
    assert names == ["a", "b"]


def test_video_round_trip(tmp_path):
    path = tmp_path / "v.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(5):
        writer.write(np.full((48, 64, 3), 40 * i, np.uint8))
    writer.release()
    (src,) = open_sources(path)
    assert src.kind == "video" and src.frame_rate == pytest.approx(10.0)
    assert len(list(src)) == 5


def test_errors_name_the_path(tmp_path):
    with pytest.raises(SourceError, match="no such file"):
        open_sources(tmp_path / "missing.mp4")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="empty.*no images"):
        open_sources(tmp_path / "empty")
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all")
    with pytest.raises(SourceError, match="bad.mp4"):
        list(open_sources(bad)[0])


def test_frames_that_change_size(tmp_path):
    _write_images(tmp_path / "f", 1, size=(48, 32))
    cv2.imwrite(str(tmp_path / "f" / "000002.png"), np.zeros((20, 20, 3), np.uint8))
    (src,) = open_sources(tmp_path / "f")
    with pytest.raises(SourceError, match="frame 2 is 20x20"):
        list(src)


def test_corrupt_image(tmp_path):
    _write_images(tmp_path / "f", 1)
    (tmp_path / "f" / "000002.png").write_bytes(b"garbage")
    (src,) = open_sources(tmp_path / "f")
    with pytest.raises(SourceError, match="000002.png: cannot read"):
        list(src)
