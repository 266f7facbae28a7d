"""Visual styles (domains) of the synthetic world: how a scene looks, never where things are.

A :class:`Style` sets the scene's colours (a palette), the camera's response (brightness, contrast,
saturation, tint, sensor noise, blur), the weather (falling particles, depth-dependent haze, wet ground)
and the lighting (sun shadows, artificial lights at night). The built-in domains are in :data:`DOMAINS`;
user styles come from YAML files (:func:`load_style`)::

    name: dusk
    base: summer                 # built-in domain the unspecified keys come from (default summer)
    keywords: [dusk, street, evening]
    palette: {sky_top: [60, 60, 110], road: [70, 70, 75]}   # RGB 0-255, fields of Palette
    brightness: 0.6              # camera gain
    contrast: 0.9                # around mid-grey
    saturation: 0.8
    tint: [1.1, 0.9, 0.8]        # RGB gains
    noise: 4                     # sensor noise sigma, 0-255 scale
    blur: 0.5                    # gaussian sigma in pixels at 360 px image height
    particles: {kind: snow, density: 1.0, size: 1.2, speed: 2.0}   # or: snow | rain | none
    haze: 0.01                   # haze extinction per metre
    haze_color: [200, 200, 205]
    clothing: 0.8                # clothing brightness factor
    shadows: 0.2                 # sun-shadow strength 0-1
    lights: 0.5                  # artificial lights 0-1 (lamp pools, lit windows, headlights)
    wet: 0.0                     # puddles and reflections on the ground 0-1
    snow_cover: 0.0              # snow on roofs and vehicles 0-1
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

__all__ = [
    "DEFAULT_PALETTE",
    "DOMAINS",
    "PALETTE_KEYS",
    "Palette",
    "Particles",
    "Style",
    "StyleError",
    "load_style",
]

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class Palette:
    """Scene colours, RGB 0-255 (defaults: the summer domain). Index like a mapping: ``palette["road"]``."""

    sky_top: RGB = (92, 146, 214)
    sky_horizon: RGB = (186, 212, 236)
    road: RGB = (92, 92, 96)
    pavement: RGB = (170, 164, 152)
    grass: RGB = (86, 140, 60)
    marking: RGB = (236, 236, 228)
    facade: RGB = (176, 146, 118)
    window: RGB = (70, 90, 110)
    roof: RGB = (120, 80, 64)
    light: RGB = (255, 226, 160)
    snow: RGB = (236, 240, 246)

    def __getitem__(self, key: str) -> RGB:
        if key not in PALETTE_KEYS:
            raise KeyError(key)
        return getattr(self, key)

    def items(self) -> list[tuple[str, RGB]]:
        return [(k, getattr(self, k)) for k in PALETTE_KEYS]


PALETTE_KEYS = tuple(f.name for f in dataclasses.fields(Palette))
#: Scene colours of the summer domain; a style's palette overrides some of them.
DEFAULT_PALETTE = Palette()

_PARTICLE_KINDS = ("none", "snow", "rain")


class StyleError(ValueError):
    """An invalid style file or value; the message names the file and the key."""


@dataclass(frozen=True)
class Particles:
    """Falling particles.

    Attributes:
        kind: ``none``, ``snow`` or ``rain``.
        density: particles per 1000 image pixels.
        size: flake radius / streak width in pixels at 360 px image height.
        speed: fall speed in pixels per frame at 360 px height (rain streak length follows it).
        intensity: brightness added by a particle (0-255).
    """

    kind: str = "none"
    density: float = 0.0
    size: float = 1.0
    speed: float = 2.0
    intensity: float = 200.0


@dataclass(frozen=True)
class Style:
    """Appearance of a domain. Colours are RGB 0-255; see the module docstring for each field."""

    name: str
    keywords: tuple[str, ...] = ()
    palette: Palette = Palette()
    brightness: float = 1.0
    contrast: float = 1.0
    saturation: float = 1.0
    tint: tuple[float, float, float] = (1.0, 1.0, 1.0)
    noise: float = 2.0
    blur: float = 0.0
    particles: Particles = Particles()
    haze: float = 0.002
    haze_color: RGB = (200, 210, 225)
    clothing: float = 1.0
    shadows: float = 0.5
    lights: float = 0.0
    wet: float = 0.0
    snow_cover: float = 0.0

    def color(self, key: str) -> np.ndarray:
        """Palette colour ``key`` as float32 RGB [3]."""
        return np.asarray(self.palette[key], np.float32)

    def camera_matrix(self) -> tuple[np.ndarray, np.ndarray]:
        """The camera response as an affine map on **BGR** colours: ``out = M @ bgr + b``.

        Returns:
            ``(M float32 [3, 3], b float32 [3])``; tint and brightness, then saturation around the
            luminance, then contrast around mid-grey.
        """
        gain = np.diag(np.asarray(self.tint, np.float64) * self.brightness)
        luma = np.array([0.299, 0.587, 0.114])
        sat = self.saturation * np.eye(3) + (1.0 - self.saturation) * np.outer(np.ones(3), luma)
        m_rgb = self.contrast * sat @ gain
        b = np.full(3, 128.0 * (1.0 - self.contrast))
        flip = np.eye(3)[::-1]  # RGB <-> BGR
        return (flip @ m_rgb @ flip).astype(np.float32), b.astype(np.float32)


def _style(**kw: Any) -> Style:
    return Style(palette=Palette(**kw.pop("palette", {})), **kw)


#: Built-in domains; the same scene semantics, different appearance.
DOMAINS: Mapping[str, Style] = MappingProxyType(
    {
        "summer": _style(
            name="summer",
            keywords=("summer", "sunny", "street", "daytime"),
            brightness=1.05,
            contrast=1.08,
            saturation=1.1,
            noise=2.0,
            shadows=0.6,
        ),
        "winter": _style(
            name="winter",
            keywords=("winter", "snow", "street", "daytime"),
            palette={
                "sky_top": (170, 178, 190),
                "sky_horizon": (214, 218, 224),
                "road": (128, 128, 134),
                "pavement": (214, 218, 226),
                "grass": (232, 236, 242),
                "marking": (190, 190, 188),
                "facade": (150, 136, 126),
                "roof": (222, 226, 232),
            },
            brightness=1.0,
            contrast=0.72,
            saturation=0.65,
            tint=(0.96, 0.99, 1.05),
            noise=2.5,
            particles=Particles("snow", density=1.6, size=1.1, speed=1.6, intensity=190.0),
            haze=0.01,
            haze_color=(214, 218, 226),
            clothing=0.55,
            shadows=0.15,
            snow_cover=1.0,
        ),
        "night": _style(
            name="night",
            keywords=("night", "dark", "street"),
            palette={"sky_top": (10, 14, 30), "sky_horizon": (40, 44, 64), "window": (40, 44, 60)},
            brightness=0.32,
            contrast=0.95,
            saturation=0.6,
            tint=(0.78, 0.88, 1.3),
            noise=7.0,
            haze=0.004,
            haze_color=(30, 34, 52),
            shadows=0.0,
            lights=1.0,
        ),
        "fog": _style(
            name="fog",
            keywords=("fog", "haze", "street", "daytime"),
            palette={"sky_top": (196, 200, 204), "sky_horizon": (206, 208, 210)},
            brightness=1.0,
            contrast=0.85,
            saturation=0.6,
            noise=2.5,
            blur=0.6,
            haze=0.032,
            haze_color=(206, 208, 210),
            shadows=0.05,
        ),
        "rain": _style(
            name="rain",
            keywords=("rain", "wet", "street", "daytime"),
            palette={
                "sky_top": (110, 116, 126),
                "sky_horizon": (160, 164, 170),
                "road": (62, 64, 68),
                "pavement": (120, 118, 114),
                "grass": (60, 96, 48),
            },
            brightness=0.85,
            contrast=0.85,
            saturation=0.75,
            noise=3.0,
            blur=0.7,
            particles=Particles("rain", density=0.5, size=1.0, speed=24.0, intensity=55.0),
            haze=0.012,
            haze_color=(150, 154, 160),
            shadows=0.05,
            wet=1.0,
        ),
    }
)

_SCALARS: dict[str, tuple[float, float]] = {
    "brightness": (0.01, 10.0),
    "contrast": (0.0, 10.0),
    "saturation": (0.0, 10.0),
    "noise": (0.0, 100.0),
    "blur": (0.0, 20.0),
    "haze": (0.0, 1.0),
    "clothing": (0.0, 5.0),
    "shadows": (0.0, 1.0),
    "lights": (0.0, 1.0),
    "wet": (0.0, 1.0),
    "snow_cover": (0.0, 1.0),
}


def load_style(path: str | os.PathLike) -> Style:
    """Reads a user-defined style from a YAML file (format in the module docstring).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        StyleError: malformed YAML, an unknown key or a bad value; the message names the file and key.
    """
    from ibntrack.fileio import YAMLInputError, load_yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"style file not found: {path}")
    try:
        data = load_yaml(path.read_text(encoding="utf-8"), str(path))
    except UnicodeDecodeError as exc:
        raise StyleError(f"{path}: not a UTF-8 text file ({exc})") from None
    except YAMLInputError as exc:
        raise StyleError(str(exc)) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise StyleError(f"{path}: expected a mapping of style keys, got {type(data).__name__}")
    return style_from_dict(data, source=str(path))


def style_from_dict(data: Mapping[str, Any], source: str = "<style>") -> Style:
    """Builds a :class:`Style` from a plain mapping (the YAML content); see :func:`load_style`."""
    known = {f.name for f in dataclasses.fields(Style)} | {"base"}
    for key in data:
        if key not in known:
            raise StyleError(f"{source}: unknown key {key!r}; known keys: {sorted(known)}")
    base_name = data.get("base", "summer")
    if not isinstance(base_name, str) or base_name not in DOMAINS:
        raise StyleError(f"{source}: key 'base': unknown domain {base_name!r}; choose from {sorted(DOMAINS)}")
    base = DOMAINS[base_name]
    changes: dict[str, Any] = {}
    name = data.get("name", Path(source).stem if source != "<style>" else "custom")
    if not isinstance(name, str) or not name.strip():
        raise StyleError(f"{source}: key 'name' must be a non-empty string, got {name!r}")
    changes["name"] = name.strip()
    if "keywords" in data:
        words = data["keywords"]
        if isinstance(words, str):
            words = [w for w in words.split(",")]
        if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
            raise StyleError(f"{source}: key 'keywords' must be a list of strings, got {words!r}")
        changes["keywords"] = tuple(w.strip().lower() for w in words if w.strip())
    else:
        changes["keywords"] = (changes["name"].lower(),)
    if "palette" in data:
        pal = data["palette"]
        if not isinstance(pal, dict):
            raise StyleError(f"{source}: key 'palette' must be a mapping of colour names to RGB, got {pal!r}")
        merged = {}
        for key, value in pal.items():
            if key not in PALETTE_KEYS:
                raise StyleError(
                    f"{source}: key 'palette.{key}': unknown colour; known: {list(PALETTE_KEYS)}"
                )
            merged[key] = _rgb(value, f"{source}: key 'palette.{key}'")
        changes["palette"] = dataclasses.replace(base.palette, **merged)
    for key, (lo, hi) in _SCALARS.items():
        if key in data:
            changes[key] = _number(data[key], lo, hi, f"{source}: key {key!r}")
    if "tint" in data:
        tint = data["tint"]
        if not isinstance(tint, list | tuple) or len(tint) != 3:
            raise StyleError(f"{source}: key 'tint' must be three RGB gains, got {tint!r}")
        changes["tint"] = tuple(_number(t, 0.0, 10.0, f"{source}: key 'tint'") for t in tint)
    if "haze_color" in data:
        changes["haze_color"] = _rgb(data["haze_color"], f"{source}: key 'haze_color'")
    if "particles" in data:
        changes["particles"] = _particles(data["particles"], base.particles, source)
    return dataclasses.replace(base, **changes)


def _particles(value: Any, base: Particles, source: str) -> Particles:
    defaults = {
        "none": Particles(),
        "snow": DOMAINS["winter"].particles,
        "rain": DOMAINS["rain"].particles,
    }
    if isinstance(value, str):
        if value not in _PARTICLE_KINDS:
            raise StyleError(
                f"{source}: key 'particles': unknown kind {value!r}; choose from {_PARTICLE_KINDS}"
            )
        return defaults[value]
    if not isinstance(value, dict):
        raise StyleError(f"{source}: key 'particles' must be a kind or a mapping, got {value!r}")
    kind = value.get("kind", base.kind)
    if kind not in _PARTICLE_KINDS:
        raise StyleError(
            f"{source}: key 'particles.kind': unknown kind {kind!r}; choose from {_PARTICLE_KINDS}"
        )
    out = defaults[kind]
    limits = {"density": (0.0, 50.0), "size": (0.1, 20.0), "speed": (0.0, 200.0), "intensity": (0.0, 255.0)}
    for key, item in value.items():
        if key == "kind":
            continue
        if key not in limits:
            raise StyleError(f"{source}: key 'particles.{key}': unknown; known: ['kind', *{sorted(limits)}]")
        out = dataclasses.replace(
            out, **{key: _number(item, *limits[key], f"{source}: key 'particles.{key}'")}
        )
    return out


def _number(value: Any, lo: float, hi: float, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise StyleError(f"{where} must be a number in [{lo}, {hi}], got {value!r}")
    if not lo <= float(value) <= hi:
        raise StyleError(f"{where} must be in [{lo}, {hi}], got {value!r}")
    return float(value)


def _rgb(value: Any, where: str) -> RGB:
    if (
        not isinstance(value, list | tuple)
        or len(value) != 3
        or not all(isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v <= 255 for v in value)
    ):
        raise StyleError(f"{where} must be an RGB colour [r, g, b] with values 0-255, got {value!r}")
    return (int(round(value[0])), int(round(value[1])), int(round(value[2])))
