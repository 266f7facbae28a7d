"""Appearance of synthetic identities: pedestrian looks and sprites, vehicle looks.

Colours come from small shared palettes (several identities wear the same red top or drive the same silver
car), so telling identities apart needs the combination of pattern, cut, accessories and shape, not one
colour. A look is drawn from the identity's own appearance generator, so it does not depend on the number
or order of identities, and it is the same in every domain (a style only changes how it is lit and seen).

Sprites are drawn once per (identity, view, walking phase) at a canonical height and scaled to each box.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["PedestrianLook", "VehicleLook", "draw_pedestrian", "pedestrian_look", "vehicle_look"]

# Shared palettes (RGB).
_TOPS = (
    (182, 38, 40), (40, 72, 170), (30, 40, 84), (30, 30, 34), (226, 226, 220), (128, 128, 130),
    (48, 120, 62), (222, 190, 50), (198, 178, 140), (110, 74, 50), (220, 128, 160), (230, 120, 40),
)  # fmt: skip
_BOTTOMS = ((58, 82, 124), (28, 28, 30), (98, 98, 104), (182, 162, 122), (90, 64, 44), (36, 40, 72))
_SKINS = ((236, 200, 170), (222, 178, 140), (190, 140, 100), (140, 96, 64), (96, 64, 44))
_HAIRS = ((20, 18, 16), (70, 44, 26), (150, 110, 60), (200, 170, 110), (140, 140, 140), (120, 50, 30))
_SHOES = ((20, 20, 20), (230, 230, 230), (90, 60, 40), (60, 60, 70))
_BAGS = ((30, 30, 30), (140, 30, 30), (40, 60, 110), (110, 80, 50), (60, 90, 60))
_CAR_COLORS = (
    (236, 236, 236), (24, 24, 26), (170, 172, 176), (100, 102, 106), (170, 30, 32), (36, 60, 140),
    (24, 34, 70), (44, 90, 60), (230, 190, 40), (200, 200, 190),
)  # fmt: skip
_PATTERNS = ("solid", "hstripes", "vstripes", "checks", "jacket", "logo")
PHASES = 6  # walking phases drawn per view


@dataclass(frozen=True)
class PedestrianLook:
    """Clothing and body of one pedestrian (colours RGB 0-255)."""

    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    hair_style: str  # short | long | bald
    hat: str  # none | cap | beanie
    hat_color: tuple[int, int, int]
    top: tuple[int, int, int]
    top2: tuple[int, int, int]
    pattern: str
    long_sleeves: bool
    bottom: tuple[int, int, int]
    bottom_kind: str  # trousers | shorts | skirt
    shoes: tuple[int, int, int]
    bag: str  # none | backpack | shoulder
    bag_color: tuple[int, int, int]
    shoulders: float  # relative shoulder breadth


@dataclass(frozen=True)
class VehicleLook:
    """Paint of one vehicle (colours RGB 0-255)."""

    body: tuple[int, int, int]
    glass: tuple[int, int, int]
    stripe: tuple[int, int, int] | None
    roof_rack: bool


def _jitter(rng: np.random.Generator, color: tuple[int, int, int], amount: int = 10) -> tuple[int, int, int]:
    c = np.clip(np.asarray(color) + rng.integers(-amount, amount + 1, 3), 0, 255)
    return (int(c[0]), int(c[1]), int(c[2]))


def _pick(rng: np.random.Generator, options: tuple) -> tuple:
    return options[int(rng.integers(len(options)))]


def pedestrian_look(rng: np.random.Generator) -> PedestrianLook:
    """Draws a pedestrian's look from the identity's appearance generator."""
    top = _pick(rng, _TOPS)
    top2 = _pick(rng, tuple(c for c in _TOPS if c != top))
    bottom_kind = str(rng.choice(["trousers", "trousers", "trousers", "shorts", "skirt"]))
    hat = str(rng.choice(["none", "none", "none", "none", "cap", "beanie"]))
    return PedestrianLook(
        skin=_jitter(rng, _pick(rng, _SKINS), 8),
        hair=_jitter(rng, _pick(rng, _HAIRS), 8),
        hair_style=str(rng.choice(["short", "short", "long", "bald"], p=[0.45, 0.15, 0.3, 0.1])),
        hat=hat,
        hat_color=_jitter(rng, _pick(rng, _TOPS)),
        top=_jitter(rng, top),
        top2=_jitter(rng, top2),
        pattern=str(rng.choice(_PATTERNS, p=[0.35, 0.15, 0.1, 0.1, 0.15, 0.15])),
        long_sleeves=bool(rng.random() < 0.6),
        bottom=_jitter(rng, _pick(rng, _BOTTOMS)),
        bottom_kind=bottom_kind,
        shoes=_pick(rng, _SHOES),
        bag=str(rng.choice(["none", "backpack", "shoulder"], p=[0.5, 0.3, 0.2])),
        bag_color=_jitter(rng, _pick(rng, _BAGS)),
        shoulders=float(rng.uniform(0.88, 1.08)),
    )


def vehicle_look(rng: np.random.Generator) -> VehicleLook:
    """Draws a vehicle's paint from the identity's appearance generator."""
    stripe = _jitter(rng, _pick(rng, _CAR_COLORS), 6) if rng.random() < 0.2 else None
    return VehicleLook(
        body=_jitter(rng, _pick(rng, _CAR_COLORS), 8),
        glass=_jitter(rng, (44, 56, 70), 10),
        stripe=stripe,
        roof_rack=bool(rng.random() < 0.15),
    )


# ------------------------------------------------------------------------------------------------ drawing


class _Canvas:
    """A sprite canvas: uint8 BGR colour drawn over black (so anti-aliased edges hold coverage-weighted
    colour) and uint8 coverage. Shapes are point lists or ellipses in canonical units; :meth:`paint` fills
    them anti-aliased with a colour or, through a mask, with a texture."""

    def __init__(self, height: int, width: int, scale_x: float) -> None:
        self.h, self.w = height, width
        self.sx = scale_x  # horizontal stretch (box aspect)
        self.color = np.zeros((height, width, 3), np.uint8)
        self.alpha = np.zeros((height, width), np.uint8)

    def pt(self, x: float, y: float) -> tuple[int, int]:
        """Canonical units (x from the centre line, y from the top, both in sprite heights) -> pixel
        coordinates with 4 fractional bits (for ``shift=4``)."""
        px = self.w / 2 + x * self.h * self.sx
        py = y * self.h
        return int(round(px * 16)), int(round(py * 16))

    def poly(self, pts: list[tuple[float, float]]) -> tuple:
        return ("poly", np.array([self.pt(x, y) for x, y in pts], np.int32))

    def ellipse(self, x: float, y: float, rx: float, ry: float) -> tuple:
        axes = (max(1, int(round(rx * self.h * self.sx * 16))), max(1, int(round(ry * self.h * 16))))
        return ("ellipse", self.pt(x, y), axes)

    def limb(self, x0: float, y0: float, angle: float, length: float, width: float) -> tuple:
        """A rod from ``(x0, y0)`` hanging down, rotated by ``angle`` (radians, forward positive)."""
        dx, dy = math.sin(angle) * length, math.cos(angle) * length
        nx, ny = math.cos(angle) * width / 2, -math.sin(angle) * width / 2
        return self.poly(
            [
                (x0 - nx, y0 - ny),
                (x0 + nx, y0 + ny),
                (x0 + dx + nx, y0 + dy + ny),
                (x0 + dx - nx, y0 + dy - ny),
            ]
        )

    @staticmethod
    def _draw(image: np.ndarray, shape: tuple, color) -> None:
        if shape[0] == "poly":
            cv2.fillPoly(image, [shape[1]], color, cv2.LINE_AA, shift=4)
        else:
            cv2.ellipse(image, shape[1], shape[2], 0, 0, 360, color, -1, cv2.LINE_AA, shift=4)

    def paint(self, shape: tuple, color: np.ndarray | tuple) -> None:
        """Fills ``shape`` with ``color`` (BGR [3]) or a texture (float BGR image [h, w, 3])."""
        if len(np.shape(color)) == 1:
            self._draw(self.color, shape, tuple(min(max(float(c), 0.0), 255.0) for c in color))
        else:
            mask = np.zeros((self.h, self.w), np.uint8)
            self._draw(mask, shape, 255)
            m = mask.astype(np.float32)[..., None] * np.float32(1 / 255)
            blended = self.color + (np.clip(color, 0, 255) - self.color) * m
            self.color = np.round(blended).astype(np.uint8)
        self._draw(self.alpha, shape, 255)

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """``(albedo float32 [h, w, 3] BGR, alpha float32 [h, w])``, the colour un-premultiplied."""
        alpha = self.alpha.astype(np.float32) * np.float32(1 / 255)
        color = self.color.astype(np.float32) / np.maximum(alpha, np.float32(1 / 255))[..., None]
        return np.minimum(color, 255.0), alpha


def _bgr(rgb: tuple[int, int, int], gain: float = 1.0) -> np.ndarray:
    return np.asarray(rgb[::-1], np.float32) * gain


def _pattern(look: PedestrianLook, view: str, h: int, w: int, clothing: float) -> np.ndarray:
    """The torso texture [h, w, 3] BGR for ``view``."""
    c1, c2 = _bgr(look.top, clothing), _bgr(look.top2, clothing)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) / h
    xc = xx - (w / h) / 2
    tex = np.empty((h, w, 3), np.float32)
    tex[:] = c1
    p = look.pattern
    if p == "hstripes":
        sel = (yy / 0.055).astype(int) % 2 == 1
    elif p == "vstripes":
        sel = (xx / 0.045).astype(int) % 2 == 1
    elif p == "checks":
        sel = ((yy / 0.05).astype(int) + (xx / 0.05).astype(int)) % 2 == 1
    elif p == "jacket":
        sel = (np.abs(xc) < 0.035) & (yy > 0.15) if view == "front" else np.zeros_like(yy, bool)
        if view == "side":
            sel = (yy > 0.47) & (yy < 0.5)  # belt line
    elif p == "logo":
        if view == "front":
            sel = (np.abs(xc + 0.03) < 0.03) & (np.abs(yy - 0.24) < 0.03)
        elif view == "back":
            sel = (np.abs(xc) < 0.07) & (np.abs(yy - 0.28) < 0.06)
        else:
            sel = np.zeros_like(yy, bool)
    else:
        sel = np.zeros_like(yy, bool)
    tex[sel] = c2
    return tex


def draw_pedestrian(
    look: PedestrianLook, aspect: float, view: str, phase: int, height: int = 96, clothing: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Draws a pedestrian sprite filling a ``height x round(aspect * height)`` box.

    Args:
        look: the identity's look.
        aspect: box width / height.
        view: ``front`` (towards the camera), ``back`` or ``side`` (walking to the right; flip for left).
        phase: walking phase ``0..PHASES-1``, or -1 for standing.
        height: sprite height in pixels.
        clothing: brightness factor of the clothes (a style's ``clothing``).

    Returns:
        ``(albedo float32 [h, w, 3] BGR 0-255, alpha float32 [h, w] in [0, 1])``.
    """
    width = max(4, int(round(aspect * height)))
    # canonical figure spans about 0.40 heights; stretch it to the box
    cv = _Canvas(height, width, scale_x=(width / height) / 0.40 * 0.96)
    swing = 0.0 if phase < 0 else math.sin(2 * math.pi * phase / PHASES)
    sh = 0.125 * look.shoulders
    top_c, bottom_c = _bgr(look.top, clothing), _bgr(look.bottom, clothing)
    skin, shoes = _bgr(look.skin), _bgr(look.shoes, clothing)
    hip_y, foot_y = 0.52, 0.975
    leg_len = foot_y - hip_y
    arm_c = top_c if look.long_sleeves else skin

    def side_leg(angle: float, shade: float) -> None:
        cv.paint(cv.limb(0.0, hip_y - 0.02, angle, leg_len, 0.075), bottom_c * shade)
        if look.bottom_kind == "shorts":
            knee = leg_len * 0.45
            x0, y0 = math.sin(angle) * knee, hip_y - 0.02 + math.cos(angle) * knee
            cv.paint(cv.limb(x0, y0, angle, leg_len - knee, 0.06), skin * shade)
        fx, fy = math.sin(angle) * leg_len, hip_y - 0.02 + math.cos(angle) * leg_len
        foot = [
            (fx - 0.03, fy - 0.025),
            (fx + 0.06, fy - 0.02),
            (fx + 0.06, fy + 0.005),
            (fx - 0.03, fy + 0.005),
        ]
        cv.paint(cv.poly(foot), shoes * shade)

    def side_arm(angle: float, shade: float) -> None:
        cv.paint(cv.limb(0.0, 0.17, angle, 0.3, 0.055), arm_c * shade)
        cv.paint(
            cv.ellipse(math.sin(angle) * 0.31, 0.17 + math.cos(angle) * 0.31, 0.022, 0.022), skin * shade
        )

    if view == "side":  # walking to the right: back arm, back leg, front leg, torso, front arm
        if look.bag == "backpack":
            cv.paint(
                cv.poly([(-0.1, 0.17), (-0.02, 0.17), (-0.02, 0.42), (-0.12, 0.42)]), _bgr(look.bag_color)
            )
        side_arm(0.4 * swing, 0.85)
        side_leg(-0.36 * swing, 0.9)
        side_leg(0.36 * swing, 1.0)
        torso = cv.poly(
            [
                (-0.06, 0.15),
                (0.06, 0.15),
                (0.065, 0.36),
                (0.055, hip_y + 0.02),
                (-0.055, hip_y + 0.02),
                (-0.065, 0.36),
            ]
        )
        cv.paint(torso, _pattern(look, "side", height, width, clothing))
        if look.bottom_kind == "skirt":
            cv.paint(
                cv.poly([(-0.06, hip_y - 0.02), (0.06, hip_y - 0.02), (0.1, 0.72), (-0.1, 0.72)]), bottom_c
            )
        if look.bag == "shoulder":
            cv.paint(cv.poly([(0.02, 0.42), (0.09, 0.42), (0.09, 0.52), (0.02, 0.52)]), _bgr(look.bag_color))
        side_arm(-0.4 * swing, 1.0)
    else:
        front = view == "front"
        step = 0.02 * swing
        for side, lift in ((-1, step), (1, -step)):
            x = side * 0.052
            leg = cv.poly(
                [
                    (x - 0.042, hip_y - 0.02),
                    (x + 0.042, hip_y - 0.02),
                    (x + 0.038, foot_y - 0.02 - abs(lift)),
                    (x - 0.038, foot_y - 0.02 - abs(lift)),
                ]
            )
            cv.paint(leg, bottom_c)
            if look.bottom_kind == "shorts":
                cv.paint(
                    cv.poly(
                        [
                            (x - 0.036, 0.71),
                            (x + 0.036, 0.71),
                            (x + 0.034, foot_y - 0.02 - abs(lift)),
                            (x - 0.034, foot_y - 0.02 - abs(lift)),
                        ]
                    ),
                    skin,
                )
            fy = foot_y - abs(lift)
            cv.paint(
                cv.poly([(x - 0.042, fy - 0.03), (x + 0.042, fy - 0.03), (x + 0.042, fy), (x - 0.042, fy)]),
                shoes,
            )
        if look.bottom_kind == "skirt":
            cv.paint(
                cv.poly([(-0.1, hip_y - 0.03), (0.1, hip_y - 0.03), (0.13, 0.73), (-0.13, 0.73)]), bottom_c
            )
        for side, lift in ((-1, swing), (1, -swing)):
            x = side * (sh + 0.028)
            cv.paint(
                cv.limb(x, 0.17, side * 0.06, 0.31 - 0.01 * lift, 0.05), arm_c * (0.92 if side < 0 else 1.0)
            )
            cv.paint(cv.ellipse(x + side * 0.019, 0.48 - 0.01 * lift, 0.022, 0.022), skin)
        torso = cv.poly(
            [
                (-sh, 0.15),
                (sh, 0.15),
                (sh - 0.005, 0.3),
                (0.095, hip_y + 0.02),
                (-0.095, hip_y + 0.02),
                (-sh + 0.005, 0.3),
            ]
        )
        if look.bag == "backpack" and not front:
            cv.paint(torso, _pattern(look, view, height, width, clothing))
            cv.paint(
                cv.poly([(-0.085, 0.19), (0.085, 0.19), (0.09, 0.43), (-0.09, 0.43)]), _bgr(look.bag_color)
            )
        else:
            cv.paint(torso, _pattern(look, view, height, width, clothing))
            if look.bag == "backpack":
                for side in (-1, 1):
                    cv.paint(
                        cv.poly(
                            [
                                (side * 0.07, 0.15),
                                (side * 0.09, 0.15),
                                (side * 0.085, 0.36),
                                (side * 0.065, 0.36),
                            ]
                        ),
                        _bgr(look.bag_color),
                    )
        if look.bag == "shoulder":
            cv.paint(
                cv.poly([(sh - 0.02, 0.42), (sh + 0.035, 0.42), (sh + 0.035, 0.54), (sh - 0.02, 0.54)]),
                _bgr(look.bag_color),
            )
    # neck, head, hair, hat
    cv.paint(cv.poly([(-0.02, 0.12), (0.02, 0.12), (0.02, 0.16), (-0.02, 0.16)]), skin * 0.9)
    head_x = 0.01 if view == "side" else 0.0
    cv.paint(cv.ellipse(head_x, 0.077, 0.05, 0.063), skin)
    hair = _bgr(look.hair)
    if look.hair_style != "bald" or view == "back":
        if view == "back":
            cv.paint(cv.ellipse(head_x, 0.075, 0.052, 0.062), hair)
        elif view == "side":
            cv.paint(
                cv.poly(
                    [(-0.045, 0.02), (0.05, 0.02), (0.05, 0.05), (0.0, 0.06), (-0.01, 0.11), (-0.05, 0.11)]
                ),
                hair,
            )
        else:
            cv.paint(cv.poly([(-0.052, 0.02), (0.052, 0.02), (0.052, 0.06), (-0.052, 0.06)]), hair)
        if look.hair_style == "long":
            x0 = -0.06 if view == "side" else -0.056
            cv.paint(
                cv.poly(
                    [
                        (x0, 0.05),
                        (x0 + 0.035 if view == "side" else 0.056, 0.05),
                        (x0 + 0.035 if view == "side" else 0.056, 0.2),
                        (x0, 0.2),
                    ]
                )
                if view != "front"
                else cv.poly([(-0.058, 0.05), (-0.045, 0.05), (-0.045, 0.18), (-0.058, 0.18)]),
                hair,
            )
            if view == "front":
                cv.paint(cv.poly([(0.045, 0.05), (0.058, 0.05), (0.058, 0.18), (0.045, 0.18)]), hair)
    if look.hat == "cap":
        hat = _bgr(look.hat_color, clothing)
        cv.paint(cv.ellipse(head_x, 0.04, 0.054, 0.032), hat)
        if view == "side":
            cv.paint(cv.poly([(0.03, 0.045), (0.085, 0.05), (0.085, 0.06), (0.03, 0.06)]), hat)
    elif look.hat == "beanie":
        cv.paint(cv.ellipse(head_x, 0.045, 0.056, 0.042), _bgr(look.hat_color, clothing))
    return cv.result()
