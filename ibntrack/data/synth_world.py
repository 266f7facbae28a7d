"""Geometry of the synthetic world: camera, street layout, moving agents, boxes and occlusion.

Everything here is drawn from the *geometry* random generator only, so a scene's boxes do not depend on
how it is rendered (its style). World frame: metres, ``X`` to the right, ``Y`` up, ``Z`` forward (depth)
from a level pinhole camera at height ``cam_height``; the horizon is image row ``horizon``. A ground point
``(X, 0, Z)`` projects to ``u = cx + f X / Z``, ``v = horizon + f cam_height / Z``, so objects lower in the
frame are nearer and larger.

Agents: pedestrians (class 0) steer towards goals with smooth turns, speed changes and stops, entering and
leaving through the image borders and the far end; vehicles (class 1) follow lanes with car-following,
lane changes and speed changes. Visibility of a box is the fraction of its area that is inside the image
and not covered by the boxes of nearer agents (box-level occlusion, as in MOT17).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Agent", "Camera", "FrameState", "Layout", "World", "box_visibility", "simulate_world"]

PEDESTRIAN, VEHICLE = 0, 1
MOT_CLASS = {PEDESTRIAN: 1, VEHICLE: 3}  # MOTChallenge class ids: 1 pedestrian, 3 car

_MIN_PED_HEIGHT_FRAC = 0.07  # far limit: pedestrians are at least this fraction of the image height
_MIN_GT_SIDE = 2.0  # pixels; clipped boxes smaller than this are not written
_STRIDE = 1.4  # metres per walking cycle
_VEHICLE_KINDS = (  # name, probability, (length, width, height) ranges, cabin start (of height)
    ("car", 0.7, (4.1, 4.9), (1.72, 1.9), (1.38, 1.6)),
    ("van", 0.22, (4.6, 5.4), (1.85, 2.05), (1.8, 2.2)),
    ("bus", 0.08, (9.5, 12.0), (2.45, 2.55), (2.9, 3.2)),
)


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
        rows = []
        w, h = self.camera.width, self.camera.height
        for t, st in enumerate(self.states, start=1):
            if st.ids.size == 0:
                continue
            b = st.boxes.copy()
            np.clip(b[:, 0::2], 0, w, out=b[:, 0::2])
            np.clip(b[:, 1::2], 0, h, out=b[:, 1::2])
            bw, bh = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
            keep = (bw >= _MIN_GT_SIDE) & (bh >= _MIN_GT_SIDE)
            cls = np.array([MOT_CLASS[self.agents[int(i)].cls] for i in st.ids], np.float64)
            block = np.column_stack(
                [np.full(st.ids.size, t), st.ids, b[:, 0], b[:, 1], bw, bh, np.ones(st.ids.size), cls,
                 st.visibility]
            )
            rows.append(block[keep])
        if not rows:
            return np.zeros((0, 9))
        out = np.concatenate(rows)
        out[:, 2:6] = np.round(out[:, 2:6], 2)
        out[:, 8] = np.round(out[:, 8], 4)
        return out


# ---------------------------------------------------------------------------------------------- occlusion


def _union_area(rects: np.ndarray) -> float:
    """Area of the union of rectangles float [k, 4] xyxy (exact, by coordinate compression)."""
    xs = np.unique(rects[:, 0::2])
    ys = np.unique(rects[:, 1::2])
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
    vis = np.zeros(n)
    if n == 0:
        return vis
    clipped = boxes.astype(np.float64).copy()
    np.clip(clipped[:, 0::2], 0, width, out=clipped[:, 0::2])
    np.clip(clipped[:, 1::2], 0, height, out=clipped[:, 1::2])
    full = np.maximum(boxes[:, 2] - boxes[:, 0], 0) * np.maximum(boxes[:, 3] - boxes[:, 1], 0)
    rank = np.empty(n, np.int64)
    rank[np.lexsort((-np.arange(n), depth))] = np.arange(n)  # 0 = nearest
    for i in range(n):
        b = clipped[i]
        area = max(b[2] - b[0], 0.0) * max(b[3] - b[1], 0.0)
        if area <= 0 or full[i] <= 0:
            continue
        occ = clipped[rank < rank[i]]
        if occ.size:
            inter = np.column_stack(
                [np.maximum(occ[:, 0], b[0]), np.maximum(occ[:, 1], b[1]),
                 np.minimum(occ[:, 2], b[2]), np.minimum(occ[:, 3], b[3])]
            )
            inter = inter[(inter[:, 2] > inter[:, 0]) & (inter[:, 3] > inter[:, 1])]
            if inter.size:
                area -= _union_area(inter)
        vis[i] = min(max(area / full[i], 0.0), 1.0)
    return vis


# ------------------------------------------------------------------------------------------------- layout


def _make_camera(width: int, height: int, rng: np.random.Generator) -> Camera:
    return Camera(
        width=width,
        height=height,
        focal=float(height * rng.uniform(1.3, 1.7)),
        horizon=float(height * rng.uniform(0.28, 0.38)),
        cam_height=float(rng.uniform(4.5, 7.0)),
    )


def _make_layout(cam: Camera, rng: np.random.Generator) -> Layout:
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


# ----------------------------------------------------------------------------------------------- dynamics


class _Sim:
    """Mutable simulation state (arrays over the live agents); used only inside :func:`simulate_world`."""

    def __init__(self, cam: Camera, layout: Layout, dt: float, rng: np.random.Generator) -> None:
        self.cam, self.layout, self.dt, self.rng = cam, layout, dt, rng
        self.agents: dict[int, Agent] = {}
        self.next_id = 1
        cols = ("x", "z", "heading", "speed", "pref", "goal_x", "goal_z", "stop", "lane_pos", "phase")
        self.cols = cols
        self.ids = np.zeros(0, np.int64)
        self.cls = np.zeros(0, np.int64)
        self.v = {c: np.zeros(0) for c in cols}
        # depth at which a 1.7 m pedestrian's head leaves the bottom of the image
        self.z_exit_bottom = cam.focal * (cam.cam_height - 1.7) / (cam.height - cam.horizon)

    # -- spawning
    def _append(self, cls: int, agent_size: tuple[float, float, float], kind: str, **vals: float) -> None:
        ident = self.next_id
        self.next_id += 1
        self.agents[ident] = Agent(ident, cls, agent_size, kind)
        self.ids = np.append(self.ids, ident)
        self.cls = np.append(self.cls, cls)
        for c in self.cols:
            self.v[c] = np.append(self.v[c], vals.get(c, 0.0))

    def _random_goal(self, exit_prob: float) -> tuple[float, float]:
        rng, cam, lay = self.rng, self.cam, self.layout
        z_lo = max(lay.z_near * 0.95, self.z_exit_bottom + 1.0)
        if rng.random() < exit_prob:
            side = rng.choice(4, p=[0.35, 0.35, 0.2, 0.1])
            if side < 2:
                z = rng.uniform(z_lo, lay.z_far)
                return float((1 if side else -1) * (cam.half_view(z) + 4.0)), float(z)
            if side == 2:
                return float(rng.uniform(-1, 1) * cam.half_view(lay.z_far)), float(lay.z_far + 4.0)
            return float(rng.uniform(-1, 1) * cam.half_view(z_lo)), float(self.z_exit_bottom - 3.0)
        for _ in range(8):
            z = rng.uniform(z_lo, lay.z_far)
            x = rng.uniform(-1, 1) * cam.half_view(z)
            if not lay.on_road(np.array(x), np.array(z)) or rng.random() < 0.15:
                break
        return float(x), float(z)

    def spawn_pedestrian(self, inside: bool) -> None:
        rng, cam, lay = self.rng, self.cam, self.layout
        size = (float(rng.uniform(1.55, 1.92)), float(rng.uniform(0.36, 0.46)), 0.0)
        z_lo = max(lay.z_near * 0.95, self.z_exit_bottom + 1.0)
        if inside:
            x, z = self._random_goal(exit_prob=0.0)
        else:
            side = rng.choice(4, p=[0.35, 0.35, 0.2, 0.1])
            if side < 2:
                z = rng.uniform(z_lo, lay.z_far)
                x = (1 if side else -1) * (cam.half_view(z) + 2.0)
            elif side == 2:
                z = lay.z_far + 1.5
                x = rng.uniform(-1, 1) * cam.half_view(z)
            else:
                z = self.z_exit_bottom - 0.5
                x = rng.uniform(-0.8, 0.8) * cam.half_view(z)
        gx, gz = self._random_goal(exit_prob=0.6)
        pref = float(rng.uniform(0.9, 1.8))
        self._append(
            PEDESTRIAN, size, "person", x=x, z=z, heading=math.atan2(gz - z, gx - x), speed=pref, pref=pref,
            goal_x=gx, goal_z=gz, phase=rng.random(),
        )

    def spawn_vehicle(self, inside: bool) -> bool:
        rng, cam, lay = self.rng, self.cam, self.layout
        probs = np.array([k[1] for k in _VEHICLE_KINDS])
        kind, _, lr, wr, hr = _VEHICLE_KINDS[int(rng.choice(len(_VEHICLE_KINDS), p=probs / probs.sum()))]
        size = (float(rng.uniform(*lr)), float(rng.uniform(*wr)), float(rng.uniform(*hr)))
        lane = int(rng.integers(lay.lanes))
        heading = lay.lane_direction(lane)
        cross = float(lay.lanes_cross()[lane])
        length = size[0]
        if lay.kind == "across":
            z = cross
            edge = cam.half_view(z) + length / 2 + 1.0
            along = rng.uniform(-edge + length, edge - length) if inside else (-edge if heading == 0.0 else edge)
            x = along
        else:
            x = cross
            z_min_v = max(cam.focal * (cam.cam_height - size[2]) / (cam.height - cam.horizon), 2.5) + length / 2
            if inside:
                z = rng.uniform(z_min_v, lay.z_far)
            else:
                z = z_min_v if heading > 0 else lay.z_far + length / 2
        # keep a gap to vehicles already in the lane
        vm = self.cls == VEHICLE
        if np.any(vm):
            along_other = self.v["x"][vm] if lay.kind == "across" else self.v["z"][vm]
            cross_other = self.v["z"][vm] if lay.kind == "across" else self.v["x"][vm]
            along_me = x if lay.kind == "across" else z
            same = np.abs(cross_other - cross) < lay.lane_width / 2
            if np.any(same & (np.abs(along_other - along_me) < length + 8.0)):
                return False
        pref = float(rng.uniform(5.0, 12.0) * (0.7 if kind == "bus" else 1.0))
        self._append(
            VEHICLE, size, kind, x=x, z=z, heading=heading, speed=pref, pref=pref, lane_pos=cross,
            phase=0.0,
        )
        return True

    # -- stepping
    def step(self) -> None:
        if self.ids.size == 0:
            return
        ped = self.cls == PEDESTRIAN
        if np.any(ped):
            self._step_pedestrians(np.flatnonzero(ped))
        if np.any(~ped):
            self._step_vehicles(np.flatnonzero(~ped))

    def _step_pedestrians(self, idx: np.ndarray) -> None:
        rng, dt, v = self.rng, self.dt, self.v
        x, z = v["x"][idx], v["z"][idx]
        gx, gz = v["goal_x"][idx], v["goal_z"][idx]
        # goals: reached or changed at random -> new goal (turning)
        reached = np.hypot(gx - x, gz - z) < 1.5
        change = reached | (rng.random(idx.size) < 0.04 * dt)
        for k in np.flatnonzero(change):
            v["goal_x"][idx[k]], v["goal_z"][idx[k]] = self._random_goal(exit_prob=0.5)
        gx, gz = v["goal_x"][idx], v["goal_z"][idx]
        # steer towards the goal with a bounded turn rate plus wander
        desired = np.arctan2(gz - z, gx - x)
        h = v["heading"][idx]
        err = (desired - h + np.pi) % (2 * np.pi) - np.pi
        turn = np.clip(err, -1.2 * dt, 1.2 * dt) + rng.normal(0, 0.25 * math.sqrt(dt), idx.size)
        # mild repulsion between pedestrians closer than 0.8 m
        dx = x[:, None] - x[None, :]
        dz = z[:, None] - z[None, :]
        d2 = dx**2 + dz**2 + np.eye(idx.size) * 1e6
        push = np.exp(-d2 / 0.3)
        px, pz = (push * dx).sum(1), (push * dz).sum(1)
        h = h + turn
        # speed: Ornstein-Uhlenbeck towards the preferred speed; occasional stops
        stop = v["stop"][idx] - dt
        new_stop = (stop <= 0) & (rng.random(idx.size) < 0.03 * dt)
        stop = np.where(new_stop, rng.uniform(1.0, 4.0, idx.size), stop)
        pref = v["pref"][idx]
        pref = np.where(rng.random(idx.size) < 0.05 * dt, np.clip(pref + rng.normal(0, 0.3, idx.size), 0.6, 2.0), pref)
        target = np.where(stop > 0, 0.0, pref)
        speed = v["speed"][idx]
        speed = speed + (target - speed) * min(1.0, 2.0 * dt) + rng.normal(0, 0.1 * math.sqrt(dt), idx.size)
        speed = np.maximum(speed, 0.0)
        v["x"][idx] = x + (speed * np.cos(h) + 0.6 * px) * dt
        v["z"][idx] = z + (speed * np.sin(h) + 0.6 * pz) * dt
        v["heading"][idx] = (h + np.pi) % (2 * np.pi) - np.pi
        v["speed"][idx], v["pref"][idx], v["stop"][idx] = speed, pref, stop
        v["phase"][idx] = (v["phase"][idx] + speed * dt / _STRIDE) % 1.0

    def _step_vehicles(self, idx: np.ndarray) -> None:
        rng, dt, v, lay = self.rng, self.dt, self.v, self.layout
        across = lay.kind == "across"
        along = v["x"][idx] if across else v["z"][idx]
        cross = v["z"][idx] if across else v["x"][idx]
        base = np.array([lay.lane_direction(0) if np.cos(h) * (1 if across else 0) + np.sin(h) * (0 if across else 1) > 0
                         else 0.0 for h in v["heading"][idx]])
        del base
        direction = np.sign(np.cos(v["heading"][idx])) if across else np.sign(np.sin(v["heading"][idx]))
        lengths = np.array([self.agents[int(i)].size[0] for i in self.ids[idx]])
        speed, pref = v["speed"][idx], v["pref"][idx]
        # car following: the nearest vehicle ahead in the same lane limits the speed
        target = pref.copy()
        for a in range(idx.size):
            same = (np.abs(cross - cross[a]) < lay.lane_width * 0.6) & (np.arange(idx.size) != a)
            ahead = same & ((along - along[a]) * direction[a] > 0)
            if np.any(ahead):
                gaps = np.abs(along[ahead] - along[a]) - (lengths[ahead] + lengths[a]) / 2
                j = np.argmin(gaps)
                gap = gaps[j]
                safe = 2.0 + 1.2 * speed[a]
                if gap < safe:
                    target[a] = min(target[a], max(0.0, speed[ahead][j] * gap / safe))
                    if gap < 1.0:
                        target[a] = 0.0
        pref = np.where(rng.random(idx.size) < 0.08 * dt, pref * rng.uniform(0.7, 1.3, idx.size), pref)
        pref = np.clip(pref, 3.0, 14.0)
        rate = np.where(target < speed, 4.0, 1.5)  # brake harder than accelerate
        speed = speed + np.clip(target - speed, -rate * dt, rate * dt)
        speed = np.maximum(speed, 0.0)
        # lane changes into a neighbouring lane of the same direction
        lanes = lay.lanes_cross()
        lane_pos = v["lane_pos"][idx]
        for a in np.flatnonzero(rng.random(idx.size) < 0.05 * dt):
            same_dir = [
                c for k, c in enumerate(lanes)
                if abs(c - lane_pos[a]) > 0.1 and abs(c - lane_pos[a]) < lay.lane_width * 1.5
                and (math.cos(lay.lane_direction(k)) if across else math.sin(lay.lane_direction(k))) * direction[a] > 0
            ]
            if same_dir:
                lane_pos[a] = same_dir[int(rng.integers(len(same_dir)))]
        lateral = np.clip(lane_pos - cross, -1.0, 1.0) * np.minimum(speed, 1.2) * 0.8
        moved = along + direction * speed * dt
        cross = cross + lateral * dt
        heading = np.where(
            direction > 0,
            np.arctan2(lateral, np.maximum(speed, 1e-3)) if across else np.arctan2(np.maximum(speed, 1e-3), lateral),
            np.arctan2(lateral, -np.maximum(speed, 1e-3)) if across else np.arctan2(-np.maximum(speed, 1e-3), lateral),
        )
        if across:
            v["x"][idx], v["z"][idx] = moved, cross
        else:
            v["z"][idx], v["x"][idx] = moved, cross
        v["heading"][idx] = heading
        v["speed"][idx], v["pref"][idx], v["lane_pos"][idx] = speed, pref, lane_pos

    def remove_departed(self) -> None:
        if self.ids.size == 0:
            return
        cam, lay, v = self.cam, self.layout, self.v
        x, z = v["x"], v["z"]
        gone = np.zeros(self.ids.size, bool)
        for k, ident in enumerate(self.ids):
            agent = self.agents[int(ident)]
            margin = 2.5 if agent.cls == PEDESTRIAN else agent.size[0] / 2 + 1.5
            far = lay.z_far + (2.5 if agent.cls == PEDESTRIAN else agent.size[0])
            near = self.z_exit_bottom - 3.5 if agent.cls == PEDESTRIAN else 2.5 + agent.size[0] / 2
            gone[k] = z[k] > far or z[k] < near or abs(x[k]) > cam.half_view(max(z[k], 0.1)) + margin + 0.5
        if np.any(gone):
            keep = ~gone
            self.ids, self.cls = self.ids[keep], self.cls[keep]
            for c in self.cols:
                v[c] = v[c][keep]

    # -- boxes
    def boxes(self) -> np.ndarray:
        cam, v = self.cam, self.v
        out = np.zeros((self.ids.size, 4))
        for k, ident in enumerate(self.ids):
            agent = self.agents[int(ident)]
            if agent.cls == PEDESTRIAN:
                height, aspect, _ = agent.size
                u, vb = cam.project(np.array(v["x"][k]), np.array(0.0), np.array(v["z"][k]))
                h = cam.focal * height / v["z"][k]
                w = aspect * h
                out[k] = (u - w / 2, vb - h, u + w / 2, vb)
            else:
                out[k] = vehicle_box(cam, v["x"][k], v["z"][k], v["heading"][k], agent.size)
        return out


def vehicle_corners(
    x: float, z: float, heading: float, size: tuple[float, float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Ground-plane corners of a vehicle footprint: ``(xs [4], zs [4])`` (front-left, front-right,
    rear-right, rear-left)."""
    length, width, _ = size
    c, s = math.cos(heading), math.sin(heading)
    fwd = np.array([1, 1, -1, -1]) * length / 2
    side = np.array([1, -1, -1, 1]) * width / 2
    return x + fwd * c - side * s, z + fwd * s + side * c


def vehicle_box(cam: Camera, x: float, z: float, heading: float, size: tuple[float, float, float]) -> np.ndarray:
    """Image box (xyxy) enclosing the projected vehicle cuboid."""
    gx, gz = vehicle_corners(x, z, heading, size)
    xs, zs = np.tile(gx, 2), np.tile(gz, 2)
    ys = np.repeat([0.0, size[2]], 4)
    u, vv = cam.project(xs, ys, np.maximum(zs, 0.5))
    return np.array([u.min(), vv.min(), u.max(), vv.max()])


def simulate_world(
    size: tuple[int, int],
    frames: int,
    objects: int,
    frame_rate: float,
    classes: tuple[int, ...],
    rng: np.random.Generator,
) -> World:
    """Simulates a street scene.

    Args:
        size: image ``(width, height)``.
        frames: number of frames.
        objects: target number of agents present at once.
        frame_rate: frames per second.
        classes: agent classes to create (0 pedestrian, 1 vehicle).
        rng: the geometry random generator (consumed).
    """
    width, height = size
    cam = _make_camera(width, height, rng)
    layout = _make_layout(cam, rng)
    sim = _Sim(cam, layout, 1.0 / frame_rate, rng)
    vehicle_share = (0.3 if PEDESTRIAN in classes else 1.0) if VEHICLE in classes else 0.0
    n_veh = int(round(objects * vehicle_share))
    n_ped = objects - n_veh
    for _ in range(n_ped):
        sim.spawn_pedestrian(inside=True)
    for _ in range(n_veh * 2):
        if int(np.count_nonzero(sim.cls == VEHICLE)) >= n_veh:
            break
        sim.spawn_vehicle(inside=True)
    states = []
    for _ in range(frames):
        boxes = sim.boxes()
        depth = sim.v["z"]
        vis = box_visibility(boxes, depth, width, height)
        order = np.lexsort((np.arange(sim.ids.size), -depth))
        states.append(
            FrameState(
                ids=sim.ids.copy(),
                x=sim.v["x"].copy(),
                z=sim.v["z"].copy(),
                heading=sim.v["heading"].copy(),
                speed=sim.v["speed"].copy(),
                phase=sim.v["phase"].copy(),
                boxes=boxes,
                visibility=vis,
                order=order,
            )
        )
        sim.step()
        sim.remove_departed()
        spawn_rate = 2.0 * sim.dt
        deficit_p = n_ped - int(np.count_nonzero(sim.cls == PEDESTRIAN))
        if deficit_p > 0 and rng.random() < min(1.0, deficit_p * spawn_rate):
            sim.spawn_pedestrian(inside=False)
        deficit_v = n_veh - int(np.count_nonzero(sim.cls == VEHICLE))
        if deficit_v > 0 and rng.random() < min(1.0, deficit_v * spawn_rate * 0.5):
            sim.spawn_vehicle(inside=False)
    return World(camera=cam, layout=layout, frame_rate=frame_rate, agents=dict(sim.agents), states=tuple(states))
