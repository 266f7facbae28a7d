import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ibntrack.ops import build_targets, decode, gather_at


def test_gather_at_reads_cells():
    fmap = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5)
    ind = torch.tensor([[0, 7], [19, 6]])  # 7 = (y1, x2); 19 = (y3, x4); 6 = (y1, x1)
    out = gather_at(fmap, ind)
    assert out.shape == (2, 2, 3)
    assert torch.equal(out[0, 1], fmap[0, :, 1, 2]) and torch.equal(out[1, 0], fmap[1, :, 3, 4])
    assert torch.equal(out[1, 1], fmap[1, :, 1, 1])


def _perfect_maps(targets: dict, emb_dim: int) -> dict:
    """Head outputs that reproduce the targets exactly (one image)."""
    hm = targets["hm"][None]
    h, w = hm.shape[-2:]
    n = int(targets["mask"].sum())
    ind = targets["ind"][:n]
    wh, reg = torch.zeros(1, 4, h * w), torch.zeros(1, 2, h * w)
    wh[0, :, ind] = targets["ltrb"][:n].T
    reg[0, :, ind] = targets["reg"][:n].T
    gen = torch.Generator().manual_seed(0)
    return {
        "hm": torch.logit(hm.clamp(1e-6, 1 - 1e-6)),
        "wh": wh.reshape(1, 4, h, w),
        "reg": reg.reshape(1, 2, h, w),
        "id": torch.randn(1, emb_dim, h, w, generator=gen),
    }


def test_targets_then_decode_round_trip():
    boxes = torch.tensor([[5.0, 9.0, 19.0, 17.0], [33.0, 40.0, 61.0, 63.0], [36.0, 42.0, 60.0, 62.0]])
    classes = torch.tensor([1, 0, 1])
    targets = build_targets(boxes, classes, torch.tensor([3, 4, 5]), (64, 64), 2)
    outputs = _perfect_maps(targets, emb_dim=6)
    before = {k: v.clone() for k, v in outputs.items()}
    (dets,) = decode(outputs, conf_thresh=0.4)
    assert all(torch.equal(before[k], outputs[k]) for k in outputs)
    assert len(dets) == 3
    order = np.argsort(dets.boxes[:, 0])  # peaks are tied at score ~1: compare by position
    np.testing.assert_allclose(dets.boxes[order], boxes.numpy()[[0, 1, 2]], atol=1e-4)
    assert dets.classes[order].tolist() == [1, 0, 1]
    assert dets.scores.min() > 0.99 and dets.embeddings.dtype == np.float32
    ind = targets["ind"][:3]
    h, w = outputs["id"].shape[-2:]
    expected = F.normalize(outputs["id"][0, :, ind // w, ind % w].T, dim=1).numpy()
    np.testing.assert_allclose(dets.embeddings[order], expected, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(dets.embeddings, axis=1), 1, atol=1e-6)


def test_decode_threshold_topk_stride_and_missing_id():
    hm = torch.full((2, 1, 8, 8), -10.0)
    hm[0, 0, 2, 3] = 3.0  # sigmoid 0.95
    hm[0, 0, 2, 4] = 2.0  # suppressed: its neighbour is higher
    hm[0, 0, 6, 6] = -1.0  # sigmoid 0.27 < 0.4
    outputs = {"hm": hm, "wh": torch.ones(2, 4, 8, 8), "reg": torch.zeros(2, 2, 8, 8)}
    d0, d1 = decode(outputs, stride=8)
    assert len(d0) == 1 and len(d1) == 0 and d0.emb_dim == 0
    np.testing.assert_allclose(d0.boxes, [[16, 8, 32, 24]])  # centre (3, 2) cells +- 1 cell, x8
    assert len(decode(outputs, conf_thresh=0.2)[0]) == 2
    assert len(decode(outputs, conf_thresh=0.0, top_k=1)[1]) == 1
    with pytest.raises(ValueError, match="pool_size"):
        decode(outputs, pool_size=2)
    with pytest.raises(ValueError, match="wh"):
        decode({"hm": hm, "wh": torch.ones(2, 2, 8, 8)})
