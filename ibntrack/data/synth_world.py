"""Geometry of the synthetic world: camera, street layout, moving agents, boxes and occlusion.

Everything here is drawn from the *geometry* random generator only, so a scene's boxes do not depend on
how it is rendered (its style). World frame: metres, ``X`` to the right, ``Y`` up, ``Z`` forward (depth)
from a level pinhole camera at height ``cam_height``; the horizon is image row ``horizon``. A ground point
``(X, 0, Z)`` projects to ``u = cx + f X / Z``, ``v = horizon + f cam_height / Z``, so objects lower in the
frame are nearer and larger.

Agents are pedestrians (class 0) and vehicles (class 1); their motion is simulated in
:mod:`ibntrack.data.synth_motion`. Visibility of a box is the fraction of its area that is inside the image
and not covered by the boxes of nearer agents (box-level occlusion, as in MOT17).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Agent",
    "Camera",
    "FrameState",
    "Layout",
    "World",
    "box_visibility",
    "make_camera",
    "make_layout",
    "vehicle_boxes",
    "vehicle_corners",
]

PEDESTRIAN, VEHICLE = 0, 1
MOT_CLASS = {PEDESTRIAN: 1, VEHICLE: 3}  # MOTChallenge class ids: 1 pedestrian, 3 car

_MIN_PED_HEIGHT_FRAC = 0.07  # far limit: pedestrians are at least this fraction of the image height
_MIN_GT_SIDE = 2.0  # pixels; clipped boxes smaller than this are not written


@dataclass(frozen=True)
class Camera:
    """A level pinhole camera (see the module docstring)."""

    width: int
    height: int
    focal: float
    horizon: float
    cam_height: float

    @property
    def cx(self) -> float:
        return self.width / 2.0

    def project(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World points (metres, broadcastable arrays) -> image ``(u, v)`` pixels."""
        return self.cx + self.focal * x / z, self.horizon + self.focal * (self.cam_height - y) / z

    def half_view(self, z: np.ndarray | float) -> np.ndarray | float:
        """Half of the visible ground width (metres) at depth ``z``."""
        return self.cx * z / self.focal

    def depth_of_row(self, v: np.ndarray | float) -> np.ndarray | float:
        """Depth of the ground seen at image row ``v`` (rows below the horizon)."""
        return self.focal * self.cam_height / np.maximum(np.asarray(v, np.float64) - self.horizon, 1e-6)


@dataclass(frozen=True)
class Building:
    """A façade parallel to the image plane: ``x0..x1`` metres wide, ``height`` metres tall at depth ``z``."""

    x0: float
    x1: float
    height: float
    z: float


@dataclass(frozen=True)
class Layout:
    """A street: a road with lanes, sidewalks, grass, lamps and buildings.

    ``kind == "along"``: the road runs away from the camera, centred at ``X = road_center``.
    ``kind == "across"``: the road crosses the view at depth ``Z = road_center``; façades stand behind
    the far sidewalk.
    """

    kind: str
    road_center: float
    lanes: int
    lane_width: float
    sidewalk: float
    crosswalk: float | None
    lamps: tuple[tuple[float, float], ...]
    buildings: tuple[Building, ...]
    z_far: float
    z_near: float

    @property
    def road_half(self) -> float:
        return self.lanes * self.lane_width / 2.0

    def lanes_cross(self) -> np.ndarray:
        """Lane centres across the road (X for ``along``, Z for ``across``)."""
        return self.road_center + (np.arange(self.lanes) - (self.lanes - 1) / 2.0) * self.lane_width

    def lane_direction(self, lane: int) -> float:
        """Heading (radians) of traffic in ``lane`` (right-hand traffic)."""
        forward = lane >= self.lanes // 2
        if self.kind == "along":
            return math.pi / 2 if forward else -math.pi / 2
        return 0.0 if not forward else math.pi

    def on_road(self, x: np.ndarray, z: np.ndarray) -> np.ndarray:
        across = z if self.kind == "across" else x
        return np.abs(across - self.road_center) < self.road_half


@dataclass(frozen=True)
class Agent:
    """Fixed attributes of one identity (geometry only).

    Attributes:
        ident: 1-based identity (order of first appearance in the simulation).
        cls: 0 pedestrian, 1 vehicle.
        size: metres; pedestrians ``(height, box aspect w/h, 0)``, vehicles ``(length, width, height)``.
        kind: ``person``, ``car``, ``van`` or ``bus``.
    """

    ident: int
    cls: int
    size: tuple[float, float, float]
    kind: str


@dataclass(frozen=True, eq=False)
class FrameState:
    """Agents of one frame (arrays of the same length ``n``).

    Attributes:
        ids: int64 [n]; x, z: float64 [n] ground position (metres); heading: float64 [n] radians, direction
        ``(cos, sin)`` in the ``(X, Z)`` plane; speed: float64 [n] m/s; phase: float64 [n] walking cycle in
        [0, 1); boxes: float64 [n, 4] xyxy image pixels, not clipped; visibility: float64 [n] in [0, 1];
        order: int64 [n] drawing order (far to near).
    """

    ids: np.ndarray
    x: np.ndarray
    z: np.ndarray
    heading: np.ndarray
    speed: np.ndarray
    phase: np.ndarray
    boxes: np.ndarray
    visibility: np.ndarray
    order: np.ndarray


@dataclass(frozen=True, eq=False)
class World:
    """A simulated scene: camera, layout, agents and their per-frame states (``states[t - 1]``)."""

    camera: Camera
    layout: Layout
    frame_rate: float
    agents: dict[int, Agent]
    states: tuple[FrameState, ...]

    def gt_rows(self) -> np.ndarray:
        """Ground truth [N, 9] float64 ``frame, id, x, y, w, h, 1, mot_class, visibility`` (boxes clipped
        to the image, MOT xywh; rows with a clipped side under 2 px are left out)."""
        if not any(st.ids.size for st in self.states):
            return np.zeros((0, 9))
        mot_class = np.zeros(max(self.agents) + 1)  # identity -> MOT class id
        for ident, agent in self.agents.items():
            mot_class[ident] = MOT_CLASS[agent.cls]
        frames = np.concatenate([np.full(st.ids.size, t) for t, st in enumerate(self.states, start=1)])
        ids = np.concatenate([st.ids for st in self.states])
        boxes = np.concatenate([st.boxes for st in self.states])  # [N, 4] xyxy, not clipped
        vis = np.concatenate([st.visibility for st in self.states])
        w, h = self.camera.width, self.camera.height
        np.clip(boxes[:, 0::2], 0, w, out=boxes[:, 0::2])
        np.clip(boxes[:, 1::2], 0, h, out=boxes[:, 1::2])
        boxes = np.round(boxes, 2)  # corners at 0.01 px, so x + w stays inside the image
        bw, bh = np.round(boxes[:, 2] - boxes[:, 0], 2), np.round(boxes[:, 3] - boxes[:, 1], 2)
        ones, vis = np.ones_like(bw), np.round(vis, 4)
        out = np.column_stack([frames, ids, boxes[:, 0], boxes[:, 1], bw, bh, ones, mot_class[ids], vis])
        return out[(bw >= _MIN_GT_SIDE) & (bh >= _MIN_GT_SIDE)]


# ---------------------------------------------------------------------------------------------- occlusion


def _union_area(rects: np.ndarray) -> float:
    """Area of the union of rectangles float [k, 4] xyxy (exact, by coordinate compression)."""
    xs = np.sort(rects[:, 0::2], axis=None)  # duplicates only add empty cells
    ys = np.sort(rects[:, 1::2], axis=None)
    cx = (xs[:-1] + xs[1:]) / 2.0  # cell centres
    cy = (ys[:-1] + ys[1:]) / 2.0
    inside_x = (rects[:, None, 0] <= cx[None]) & (cx[None] <= rects[:, None, 2])  # [k, nx]
    inside_y = (rects[:, None, 1] <= cy[None]) & (cy[None] <= rects[:, None, 3])  # [k, ny]
    covered = np.any(inside_y[:, :, None] & inside_x[:, None, :], axis=0)  # [ny, nx]
    return float(np.sum(covered * np.outer(np.diff(ys), np.diff(xs))))


def box_visibility(boxes: np.ndarray, depth: np.ndarray, width: int, height: int) -> np.ndarray:
    """Visible fraction of each box: inside the image and not covered by nearer boxes.

    Args:
        boxes: float [n, 4] xyxy image pixels (not clipped).
        depth: float [n]; smaller is nearer (ties: the later index is nearer).
        width, height: image size.

    Returns:
        float64 [n] in [0, 1]: ``(area(clip(box)) - area(clip(box) ∩ union(nearer boxes))) / area(box)``.
    """
    n = boxes.shape[0]
    if n == 0:
        return np.zeros(0)
    clipped = boxes.astype(np.float64).copy()
    np.clip(clipped[:, 0::2], 0, width, out=clipped[:, 0::2])
    np.clip(clipped[:, 1::2], 0, height, out=clipped[:, 1::2])
    full = np.maximum(boxes[:, 2] - boxes[:, 0], 0) * np.maximum(boxes[:, 3] - boxes[:, 1], 0)
    area = np.maximum(clipped[:, 2] - clipped[:, 0], 0) * np.maximum(clipped[:, 3] - clipped[:, 1], 0)
    rank = np.empty(n, np.int64)
    rank[np.lexsort((-np.arange(n), depth))] = np.arange(n)  # 0 = nearest
    # pairwise intersections [n (occluded), n (occluder), 4]
    inter = np.stack(
        [
            np.maximum(clipped[:, None, 0], clipped[None, :, 0]),
            np.maximum(clipped[:, None, 1], clipped[None, :, 1]),
            np.minimum(clipped[:, None, 2], clipped[None, :, 2]),
            np.minimum(clipped[:, None, 3], clipped[None, :, 3]),
        ],
        axis=-1,
    )
    overlap = (inter[..., 2] > inter[..., 0]) & (inter[..., 3] > inter[..., 1])
    overlap &= rank[None, :] < rank[:, None]  # only nearer boxes occlude
    visible = area.copy()
    for i in np.flatnonzero(overlap.any(axis=1)):
        rects = inter[i, overlap[i]]
        if rects.shape[0] == 1:
            r = rects[0]
            visible[i] -= (r[2] - r[0]) * (r[3] - r[1])
        elif rects.shape[0] == 2:
            a, b = rects
            both = max(min(a[2], b[2]) - max(a[0], b[0]), 0.0) * max(min(a[3], b[3]) - max(a[1], b[1]), 0.0)
            visible[i] -= (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - both
        else:
            visible[i] -= _union_area(rects)
    with np.errstate(divide="ignore", invalid="ignore"):
        vis = np.where(full > 0, visible / np.where(full > 0, full, 1.0), 0.0)
    return np.clip(vis, 0.0, 1.0)


# ------------------------------------------------------------------------------------------------- layout


def make_camera(width: int, height: int, rng: np.random.Generator) -> Camera:
    return Camera(
        width=width,
        height=height,
        focal=float(height * rng.uniform(1.3, 1.7)),
        horizon=float(height * rng.uniform(0.28, 0.38)),
        cam_height=float(rng.uniform(4.5, 7.0)),
    )


def make_layout(cam: Camera, rng: np.random.Generator) -> Layout:
    z_bottom = float(cam.depth_of_row(cam.height))
    z_far = cam.focal * 1.7 / (_MIN_PED_HEIGHT_FRAC * cam.height)
    kind = "across" if rng.random() < 0.5 else "along"
    lanes = int(rng.choice([2, 2, 3, 4]))
    lane_width = float(rng.uniform(3.1, 3.6))
    sidewalk = float(rng.uniform(3.0, 5.0))
    buildings: list[Building] = []
    if kind == "across":
        center = float(z_bottom + rng.uniform(0.35, 0.55) * (z_far - z_bottom))
        z_wall = center + lanes * lane_width / 2 + sidewalk
        z_far = min(z_far, z_wall - 0.6)
        crosswalk = float(rng.uniform(-0.4, 0.4) * cam.half_view(center)) if rng.random() < 0.6 else None
        wall_z = (z_wall,)
    else:
        center = float(rng.uniform(-0.25, 0.25) * cam.half_view(z_bottom * 2))
        crosswalk = float(rng.uniform(z_bottom + 4, z_far * 0.8)) if rng.random() < 0.6 else None
        wall_z = (float(z_far * rng.uniform(2.2, 3.2)),)
    for wz in wall_z:
        half = cam.half_view(wz) + 5
        x = -half - rng.uniform(0, 8)
        while x < half:
            w = float(rng.uniform(8, 22))
            gap = float(rng.uniform(0, 6)) if rng.random() < 0.3 else 0.0
            buildings.append(Building(x, x + w, float(rng.uniform(9, 32)), wz + float(rng.uniform(0, 1.5))))
            x += w + gap
    lamps = []
    spacing = float(rng.uniform(14, 24))
    offset = float(rng.uniform(0, spacing))
    half_road = lanes * lane_width / 2
    if kind == "across":
        for side in (-1, 1):
            z_l = center + side * (half_road + 0.6)
            half = cam.half_view(z_l) + 3
            for k in range(-50, 50):
                x_l = k * spacing + offset + (spacing / 2 if side > 0 else 0)
                if -half < x_l < half:
                    lamps.append((float(x_l), float(z_l)))
    else:
        for side in (-1, 1):
            x_l = center + side * (half_road + 0.6)
            for k in range(0, 50):
                z_l = z_bottom * 0.8 + k * spacing + offset + (spacing / 2 if side > 0 else 0)
                if z_l < z_far * 1.6:
                    lamps.append((float(x_l), float(z_l)))
    return Layout(
        kind=kind,
        road_center=center,
        lanes=lanes,
        lane_width=lane_width,
        sidewalk=sidewalk,
        crosswalk=crosswalk,
        lamps=tuple(lamps),
        buildings=tuple(buildings),
        z_far=float(z_far),
        z_near=z_bottom,
    )


def vehicle_corners(
    x: np.ndarray, z: np.ndarray, heading: np.ndarray, length: np.ndarray, width: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Ground-plane corners of vehicle footprints: ``(xs [..., 4], zs [..., 4])`` in the order front-left,
    front-right, rear-right, rear-left (inputs broadcast; ``heading`` is the direction of travel)."""
    x, z, heading = (np.asarray(a, np.float64)[..., None] for a in (x, z, heading))
    length, width = (np.asarray(a, np.float64)[..., None] for a in (length, width))
    c, s = np.cos(heading), np.sin(heading)
    fwd = np.array([1.0, 1.0, -1.0, -1.0]) * length / 2
    side = np.array([1.0, -1.0, -1.0, 1.0]) * width / 2
    return x + fwd * c - side * s, z + fwd * s + side * c


def vehicle_boxes(
    cam: Camera, x: np.ndarray, z: np.ndarray, heading: np.ndarray, sizes: np.ndarray
) -> np.ndarray:
    """Image boxes float64 [n, 4] xyxy enclosing the projected vehicle cuboids (``sizes`` [n, 3] metres:
    length, width, height)."""
    gx, gz = vehicle_corners(x, z, heading, sizes[:, 0], sizes[:, 1])  # [n, 4]
    gz = np.maximum(gz, 0.5)
    u = cam.cx + cam.focal * gx / gz
    v_ground = cam.horizon + cam.focal * cam.cam_height / gz
    v_top = cam.horizon + cam.focal * (cam.cam_height - sizes[:, 2:3]) / gz
    return np.stack([u.min(1), v_top.min(1), u.max(1), v_ground.max(1)], axis=1)
