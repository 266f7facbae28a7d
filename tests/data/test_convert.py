"""``ibntrack convert crowdhuman``: small generated .odgt files and images, hand-derived boxes."""

import json

import cv2
import numpy as np
import pytest
import torch

from ibntrack.cli import main
from ibntrack.data.convert import convert_crowdhuman, read_odgt
from ibntrack.data.mot import load_sequence, read_gt


@pytest.fixture()
def crowd(tmp_path):
    images = tmp_path / "Images"
    images.mkdir()
    cv2.imwrite(str(images / "a,1.jpg"), np.full((100, 200, 3), 200, np.uint8))  # W 200, H 100
    cv2.imwrite(str(images / "b,2.jpg"), np.full((150, 100, 3), 60, np.uint8))  # W 100, H 150
    lines = [
        {
            "ID": "a,1",
            "gtboxes": [
                {"tag": "person", "fbox": [20, 10, 40, 60], "vbox": [25, 20, 30, 30], "extra": {"ignore": 0}},
                {
                    "tag": "person",
                    "fbox": [150, 20, 20, 40],
                    "vbox": [150, 20, 20, 40],
                    "extra": {"ignore": 1},
                },
            ],
        },
        {
            "ID": "b,2",
            "gtboxes": [
                {"tag": "person", "fbox": [-10, 30, 40, 60], "vbox": [0, 30, 30, 60]},
                {"tag": "mask", "fbox": [50, 100, 20, 20], "extra": {"ignore": 1}},
            ],
        },
    ]
    odgt = tmp_path / "annotation_train.odgt"
    odgt.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    return odgt, images


def test_full_boxes_letterboxed_by_hand(crowd, tmp_path):
    odgt, images = crowd
    seq_dir = convert_crowdhuman(odgt, images, tmp_path / "out", size=(96, 64))
    assert seq_dir.name == "crowdhuman-train"
    rows = read_gt(seq_dir / "gt" / "gt.txt")
    # frame 1: 200x100 -> scale 0.48, 96x48, pad_y 8: fbox [20,10,60,70] -> [9.6,12.8,28.8,41.6]
    # visibility = (30*30) / (40*60) = 0.375; the ignored person: flag 0
    # frame 2: 100x150 -> scale 64/150, 43x64, pad_x 26: fbox clipped to [0,30,30,90]
    #   -> [26, 12.8, 38.8, 38.4]; the mask region [50,100,70,120] -> flag 0
    s = 64 / 150
    expected = np.array(
        [
            [1, -1, 9.6, 12.8, 19.2, 28.8, 1, 1, 0.375],
            [1, -1, 150 * 0.48, 20 * 0.48 + 8, 20 * 0.48, 40 * 0.48, 0, 1, 1.0],
            [2, -1, 26, 30 * s, 30 * s, 60 * s, 1, 1, 0.75],
            [2, -1, 50 * s + 26, 100 * s, 20 * s, 20 * s, 0, 1, 1.0],
        ]
    )
    np.testing.assert_allclose(rows[np.lexsort((rows[:, 2], rows[:, 0]))], expected, atol=0.006)
    seq = load_sequence(seq_dir)
    assert (seq.width, seq.height, seq.length) == (96, 64, 2)
    assert cv2.imread(str(seq.img_dir / "000002.jpg")).shape == (64, 96, 3)
    ann = seq.annotations
    assert sorted(ann) == [1, 2] and [len(ann[1]), len(ann[2])] == [1, 1]  # flag-0 rows not trained on
    assert ann[1].ids.tolist() == [-1]
    assert (seq_dir / "image_ids.txt").read_text() == "1,a,1\n2,b,2\n"


def test_visible_boxes_and_fill(crowd, tmp_path):
    odgt, images = crowd
    seq_dir = convert_crowdhuman(
        odgt, images, tmp_path / "out", size=(96, 64), box="visible", fill_ignore=True
    )
    rows = read_gt(seq_dir / "gt" / "gt.txt")
    first = rows[(rows[:, 0] == 1) & (rows[:, 6] == 1)][0]
    # vbox [25,20,55,50] -> [12, 17.6, 26.4, 32]
    np.testing.assert_allclose(first[2:6], [12, 17.6, 14.4, 14.4], atol=0.006)
    assert first[8] == 1.0
    frame = cv2.imread(str(seq_dir / "img1" / "000001.jpg")).astype(int)
    # the ignored person [72, 17.6, 81.6, 36.8] is painted grey (the image itself is 200)
    assert abs(frame[27, 76] - 127).max() <= 3 and abs(frame[27, 60] - 200).max() <= 3


def test_malformed_lines_name_file_and_line(tmp_path, crowd):
    _, images = crowd
    bad = tmp_path / "bad.odgt"
    bad.write_text('{"ID": "a,1", "gtboxes": []}\n\n{"ID": "b,2", "gtboxes": [\n')
    with pytest.raises(ValueError, match=r"bad\.odgt:3: not a JSON object"):
        list(read_odgt(bad))
    bad.write_text('{"ID": "a,1", "gtboxes": [{"tag": "person", "fbox": [1, 2, 3]}]}\n')
    with pytest.raises(ValueError, match=r"bad\.odgt:1: gtboxes\[0\]: 'fbox' must be 4 numbers"):
        list(read_odgt(bad))
    bad.write_text('{"ID": "a,1"}\n{"ID": "zzz", "gtboxes": []}\n')
    with pytest.raises(FileNotFoundError, match=r"bad\.odgt:2: image .*zzz\.jpg"):
        convert_crowdhuman(bad, images, tmp_path / "o")


def test_cli_and_detection_only_boxes_train_detection_not_reid(crowd, tmp_path, capsys):
    odgt, images = crowd
    assert (
        main(
            ["convert", "crowdhuman", str(odgt), str(images), "--out", str(tmp_path / "o"), "--size", "96x64"]
        )
        == 0
    )
    assert "crowdhuman-train" in capsys.readouterr().out
    assert (
        main(["convert", "crowdhuman", str(tmp_path / "nope.odgt"), str(images), "--out", str(tmp_path)]) == 2
    )
    assert "nope.odgt" in capsys.readouterr().err

    from ibntrack.data.dataset import MOTDataset
    from ibntrack.losses.total import LossConfig, MotLoss

    ds = MOTDataset([load_sequence(tmp_path / "o" / "crowdhuman-train")], input_size=(64, 96), augment=False)
    assert ds.num_ids == 0
    image, targets = ds[0]
    assert targets["mask"].sum() == 1 and targets["ids"][0] == -1
    loss = MotLoss(LossConfig(), emb_dim=8, num_ids=4)
    outputs = {
        "hm": torch.zeros(1, 1, 16, 24),
        "wh": torch.ones(1, 4, 16, 24),
        "reg": torch.zeros(1, 2, 16, 24),
        "id": torch.randn(1, 8, 16, 24),
    }
    batch = {k: v.unsqueeze(0) for k, v in targets.items()}
    total, parts = loss(outputs, batch)
    assert parts["id"] == 0.0 and parts["hm"] > 0 and parts["box"] > 0  # detection trains, ReID does not
