"""3-D polygon models of synthetic vehicles (body, cabin with windows, wheels, lights).

A model is built once per identity in the vehicle's own frame — ``forward`` (direction of travel),
``side`` (to the vehicle's left), ``up`` (metres, ground at 0) — as planar convex polygons in drawing order.
Each frame the renderer places the model at the vehicle's position and heading, projects every point at
once, skips faces turned away from the camera and fills the rest; the outer cuboid ``length x width x
height`` is exactly the box used for the ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ibntrack.data.synth_sprites import VehicleLook

__all__ = ["VehicleModel", "build_vehicle_model"]

_TYRE = (28.0, 28.0, 30.0)  # BGR
_HUB = (125.0, 122.0, 120.0)
_HEADLIGHT = (200.0, 235.0, 250.0)
_TAILLIGHT = (40.0, 40.0, 200.0)
_RACK = (34.0, 34.0, 34.0)


@dataclass(frozen=True, eq=False)
class VehicleModel:
    """Polygons of one vehicle in its own frame.

    Attributes:
        points: float64 [P, 3] (forward, side, up) metres.
        starts: int64 [Q + 1]; polygon ``q`` is ``points[starts[q]:starts[q + 1]]``.
        normals: float64 [Q, 2] (forward, side) outward normal of the polygon's vertical face, or (0, 0)
            for upward faces (always seen: the camera is above every vehicle).
        colors: float32 [Q, 3] BGR albedo.
        lights: int8 [Q]: 0 paint, 1 headlight, 2 tail light (not shaded; glow at night).
    """

    points: np.ndarray
    starts: np.ndarray
    normals: np.ndarray
    colors: np.ndarray
    lights: np.ndarray


class _Builder:
    def __init__(self) -> None:
        self.polys: list[np.ndarray] = []
        self.normals: list[tuple[float, float]] = []
        self.colors: list[tuple[float, float, float]] = []
        self.lights: list[int] = []

    def add(self, pts, normal: tuple[float, float], color, light: int = 0) -> None:
        self.polys.append(np.asarray(pts, np.float64))
        self.normals.append(normal)
        self.colors.append(tuple(float(c) for c in color))
        self.lights.append(light)

    def build(self) -> VehicleModel:
        sizes = [len(p) for p in self.polys]
        return VehicleModel(
            points=np.concatenate(self.polys),
            starts=np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
            normals=np.asarray(self.normals, np.float64),
            colors=np.asarray(self.colors, np.float32),
            lights=np.asarray(self.lights, np.int8),
        )


def _side_face(f0: float, f1: float, s: float, y0: float, y1: float) -> np.ndarray:
    return np.array([[f0, s, y0], [f1, s, y0], [f1, s, y1], [f0, s, y1]])


def _end_face(f: float, s0: float, s1: float, y0: float, y1: float) -> np.ndarray:
    return np.array([[f, s0, y0], [f, s1, y0], [f, s1, y1], [f, s0, y1]])


def _lerp_quad(quad: np.ndarray, a0: float, a1: float, b0: float, b1: float) -> np.ndarray:
    """Sub-rectangle of a vertical quad (corners bottom-0, bottom-1, top-1, top-0): fractions ``a`` along
    the bottom edge, ``b`` up the side."""
    p0, p1, p3 = quad[0], quad[1], quad[3]
    ea, eb = p1 - p0, p3 - p0
    return np.array(
        [p0 + ea * a0 + eb * b0, p0 + ea * a1 + eb * b0, p0 + ea * a1 + eb * b1, p0 + ea * a0 + eb * b1]
    )


def _circle(fc: float, s: float, yc: float, r: float, n: int = 12) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([fc + r * np.cos(t), np.full(n, s), yc + r * np.sin(t)], axis=1)


def build_vehicle_model(
    kind: str,
    size: tuple[float, float, float],
    look: VehicleLook,
    snow_cover: float = 0.0,
    snow_bgr: tuple[float, float, float] = (246.0, 240.0, 236.0),
) -> VehicleModel:
    """Builds the polygons of a ``car``, ``van`` or ``bus`` of ``size`` (length, width, height) metres."""
    length, width, height = size
    hl, hw = length / 2, width / 2
    body = np.asarray(look.body[::-1], np.float32)
    glass = np.asarray(look.glass[::-1], np.float32)
    snow = np.asarray(snow_bgr, np.float32)
    wheel_r = 0.5 if kind == "bus" else 0.33
    clearance = wheel_r * 0.9
    cabin_frac, cabin_shift, split = {"car": (0.5, -0.06, 0.58), "van": (0.72, -0.1, 0.5)}.get(
        kind, (0.96, 0.0, 0.3)
    )
    y_split = height * split
    b = _Builder()

    # lower body: four sides (with stripe, wheels and lights), then the top
    faces = {
        "left": (_side_face(hl, -hl, hw, clearance, y_split), (0.0, 1.0)),
        "right": (_side_face(-hl, hl, -hw, clearance, y_split), (0.0, -1.0)),
        "front": (_end_face(hl, -hw, hw, clearance, y_split), (1.0, 0.0)),
        "rear": (_end_face(-hl, hw, -hw, clearance, y_split), (-1.0, 0.0)),
    }
    for name, (quad, normal) in faces.items():
        b.add(quad, normal, body)
        if name in ("left", "right"):
            s = quad[0, 1] * 1.002
            if look.stripe is not None:
                b.add(_lerp_quad(quad, 0.02, 0.98, 0.45, 0.6), normal, np.asarray(look.stripe[::-1]))
            for fc in (0.32 * length, -0.32 * length):
                fc = float(np.clip(fc, -hl + wheel_r * 1.1, hl - wheel_r * 1.1))
                b.add(_circle(fc, s, wheel_r, wheel_r), normal, _TYRE)
                b.add(_circle(fc, s * 1.002, wheel_r, wheel_r * 0.5, 8), normal, _HUB)
        else:
            light = 1 if name == "front" else 2
            for a0, a1 in ((0.06, 0.22), (0.78, 0.94)):
                b.add(
                    _lerp_quad(quad, a0, a1, 0.55, 0.85),
                    normal,
                    _HEADLIGHT if light == 1 else _TAILLIGHT,
                    light,
                )
            if name == "front":
                b.add(_lerp_quad(quad, 0.3, 0.7, 0.3, 0.6), normal, body * 0.35)  # grille
    top_body = np.array([[hl, hw, y_split], [hl, -hw, y_split], [-hl, -hw, y_split], [-hl, hw, y_split]])
    body_top_color = body if kind == "car" else body * (1 - snow_cover) + snow * snow_cover
    b.add(top_body, (0.0, 0.0), body_top_color * 1.05)

    # cabin: glass panes between pillars, then the roof
    cl, cw = length * cabin_frac / 2, hw * 0.92
    f_c = cabin_shift * length
    cabin = {
        "left": (_side_face(f_c + cl, f_c - cl, cw, y_split, height), (0.0, 1.0)),
        "right": (_side_face(f_c - cl, f_c + cl, -cw, y_split, height), (0.0, -1.0)),
        "front": (_end_face(f_c + cl, -cw, cw, y_split, height), (1.0, 0.0)),
        "rear": (_end_face(f_c - cl, cw, -cw, y_split, height), (-1.0, 0.0)),
    }
    for name, (quad, normal) in cabin.items():
        b.add(quad, normal, body)
        if name in ("left", "right"):
            panes = max(1, int(round(2 * cl / 1.6)))
            for p in range(panes):
                a0 = 0.06 + 0.88 * p / panes
                a1 = 0.06 + 0.88 * (p + 1) / panes - 0.04
                b.add(_lerp_quad(quad, a0, a1, 0.12, 0.88), normal, glass)
        else:
            b.add(_lerp_quad(quad, 0.08, 0.92, 0.1, 0.9), normal, glass * (1.15 if name == "front" else 1.0))
    roof = np.array(
        [[f_c + cl, cw, height], [f_c + cl, -cw, height], [f_c - cl, -cw, height], [f_c - cl, cw, height]]
    )
    b.add(roof, (0.0, 0.0), (body * (1 - snow_cover) + snow * snow_cover) * 1.05)
    if look.roof_rack:
        rack = roof.copy()
        rack[:, :2] *= [0.75, 0.7]
        rack[:, 2] += 0.06
        b.add(rack, (0.0, 0.0), _RACK)
    return b.build()
