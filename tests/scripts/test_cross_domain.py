"""The cross-domain experiment script: its goal check, user styles as test domains, and reuse of models."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import cross_domain  # noqa: E402

from ibntrack.data.styles import StyleError  # noqa: E402


def _metrics(hota: float) -> dict[str, float]:
    return {"HOTA": hota / 100, "MOTA": 0.0, "IDF1": 0.0, "IDSW": 0.0}


def _table(rows: dict[str, dict[str, list[float]]]) -> dict:
    """``{variant: {domain: [HOTA per seed]}}`` -> the results layout ``{variant: {domain: {seed: m}}}``."""
    return {
        v: {d: {str(i): _metrics(h) for i, h in enumerate(hs)} for d, hs in per.items()}
        for v, per in rows.items()
    }


def test_goals_are_checked_on_the_best_ibn_family_model():
    dom = _table(
        {
            "bn": {"summer": [60, 62], "winter": [40, 42], "night": [10, 12]},
            "bn-aug": {"summer": [61], "winter": [50], "night": [30]},
            "ibn": {"summer": [70, 80], "winter": [53, 55], "night": [28, 30]},  # shifted mean 41.5
            "mix": {"summer": [70], "winter": [45], "night": [20]},  # shifted mean 32.5
        }
    )
    text = "\n".join(cross_domain.goals(dom))
    assert "Best IBN-family model by shifted-domain mean HOTA: `ibn`" in text
    assert "| in-domain summer HOTA ≥ 75 | 75.0 | yes |" in text
    # winter: 54 vs bn 41 (+13) and ahead of bn-aug 50 -> met; night: 29 vs 11 (+18) but behind bn-aug 30
    assert "| winter: ≥ bn + 10 and ahead of bn-aug | 54.0 (bn 41.0, bn-aug 50.0; +13.0) | yes |" in text
    assert "| night: ≥ bn + 10 and ahead of bn-aug | 29.0 (bn 11.0, bn-aug 30.0; +18.0) | no |" in text
    assert "| night HOTA ≥ 35 | 29.0 | no |" in text
    assert "| winter ≥ 60 % of summer | 72 % | yes |" in text  # 54 / 75
    assert "| night ≥ 60 % of summer | 39 % | no |" in text  # 29 / 75


def test_setting_labels():
    assert cross_domain.Setting("ibn").label == "ibn"
    assert cross_domain.Setting("ibn", sparsity=5, adapt_bn=30).label == "ibn +adapt30 s=5"
    rows = [r.label for r in cross_domain.settings(cross_domain.SIZES["strong"], adapt_bn=0)]
    assert "ibn s=10" in rows and not any("adapt" in r for r in rows)
    assert "bn +adapt30" in [r.label for r in cross_domain.settings(cross_domain.SIZES["strong"], 30)]


def test_user_styles_become_test_domains(tmp_path):
    (tmp_path / "dusk.yaml").write_text("name: dusk\nbase: summer\nbrightness: 0.6\n")
    size = cross_domain.SIZES["quick"]
    _, tests = cross_domain.make_data(tmp_path / "data", size, [tmp_path / "dusk.yaml"])
    assert list(tests) == [*cross_domain.DOMAINS, "dusk"]
    assert (tests["dusk"][0] / "gt" / "gt.txt").is_file()
    (tmp_path / "bad.yaml").write_text("name: bad\nbrightnes: 0.6\n")
    with pytest.raises(StyleError, match="bad.yaml"):
        cross_domain.make_data(tmp_path / "data", size, [tmp_path / "bad.yaml"])
    with pytest.raises(FileNotFoundError, match="missing.yaml"):
        cross_domain.make_data(tmp_path / "data", size, [tmp_path / "missing.yaml"])
    (tmp_path / "fog.yaml").write_text("name: fog\n")
    with pytest.raises(SystemExit, match="already a test domain"):
        cross_domain.make_data(tmp_path / "data", size, [tmp_path / "fog.yaml"])


def test_only_fully_trained_models_are_reused(tmp_path):
    size = cross_domain.SIZES["strong"]  # 7 epochs
    ckpt = tmp_path / "last.pt"
    assert not cross_domain.finished(ckpt, size)
    torch.save({"epoch": 3}, ckpt)  # an interrupted training's last.pt
    assert not cross_domain.finished(ckpt, size)
    torch.save({"epoch": 7}, ckpt)
    assert cross_domain.finished(ckpt, size)
