"""The annotated video: real H.264 through PyAV, written atomically."""

import av
import numpy as np

from ibntrack.engine.visualize import Annotator, VideoWriter, color_for_id


class _T:
    def __init__(self, tid, box, cls=0):
        self.track_id, self.box, self.cls = tid, np.array(box, np.float32), cls


def test_colors_are_stable_and_distinct():
    assert color_for_id(3) == color_for_id(3)
    assert len({color_for_id(i) for i in range(1, 30)}) >= 25


def test_annotator_draws_inside_the_box():
    frame = np.zeros((60, 80, 3), np.uint8)
    out = Annotator().draw(frame, [_T(1, [10, 20, 40, 50])])
    assert frame.sum() == 0  # input untouched
    assert out[35, 10].any() and not out[35, 60].any()  # left edge drawn, far right empty


def test_video_writer_h264(tmp_path):
    path = tmp_path / "out.mp4"
    with VideoWriter(path, frame_rate=10) as w:
        for i in range(6):
            w.write(np.full((49, 65, 3), 30 * i, np.uint8))  # odd size is cropped to even
    assert path.is_file() and not list(tmp_path.glob(".*partial*"))
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert (stream.codec_context.width, stream.codec_context.height) == (64, 48)
        assert sum(1 for _ in c.decode(stream)) == 6


def test_video_writer_abort_leaves_nothing(tmp_path):
    path = tmp_path / "out.mp4"
    try:
        with VideoWriter(path) as w:
            w.write(np.zeros((32, 32, 3), np.uint8))
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert list(tmp_path.iterdir()) == []
