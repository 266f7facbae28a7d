"""Motion of the synthetic world's agents: spawning, steering, car-following, leaving.

Pedestrians steer towards goals (often exits, sometimes points inside the view) with a bounded turn rate,
random wander, speed changes, stops and a mild mutual repulsion; they enter through the image borders, the
far end and the bottom. Vehicles follow their lanes with car-following, speed changes and lane changes.
All randomness comes from the geometry generator passed to :func:`simulate_world`.
"""

from __future__ import annotations

import math

import numpy as np

from ibntrack.data.synth_world import (
    PEDESTRIAN,
    VEHICLE,
    Agent,
    Camera,
    FrameState,
    Layout,
    World,
    box_visibility,
    make_camera,
    make_layout,
    vehicle_boxes,
)

__all__ = ["simulate_world"]

_STRIDE = 1.4  # metres per walking cycle
_VEHICLE_KINDS = (  # name, probability, length, width and height ranges (metres)
    ("car", 0.7, (4.1, 4.9), (1.72, 1.9), (1.38, 1.6)),
    ("van", 0.22, (4.6, 5.4), (1.85, 2.05), (1.8, 2.2)),
    ("bus", 0.08, (9.5, 12.0), (2.45, 2.55), (2.9, 3.2)),
)


class _Sim:
    """Mutable simulation state (arrays over the live agents); used only inside :func:`simulate_world`."""

    def __init__(self, cam: Camera, layout: Layout, dt: float, rng: np.random.Generator) -> None:
        self.cam, self.layout, self.dt, self.rng = cam, layout, dt, rng
        self.agents: dict[int, Agent] = {}
        self.next_id = 1
        cols = (
            "x",
            "z",
            "heading",
            "speed",
            "pref",
            "goal_x",
            "goal_z",
            "stop",
            "lane_pos",
            "phase",
            "s0",
            "s1",
            "s2",
        )
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
        vals = dict(vals, s0=agent_size[0], s1=agent_size[1], s2=agent_size[2])
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
            return float(rng.uniform(-1, 1) * cam.half_view(z_lo)), float(self.z_exit_bottom - 5.0)
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
            PEDESTRIAN,
            size,
            "person",
            x=x,
            z=z,
            heading=math.atan2(gz - z, gx - x),
            speed=pref,
            pref=pref,
            goal_x=gx,
            goal_z=gz,
            phase=rng.random(),
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
            along = (
                rng.uniform(-edge + length, edge - length) if inside else (-edge if heading == 0.0 else edge)
            )
            x = along
        else:
            x = cross
            z_min_v = (
                max(cam.focal * (cam.cam_height - size[2]) / (cam.height - cam.horizon), 2.5) + length / 2
            )
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
            VEHICLE,
            size,
            kind,
            x=x,
            z=z,
            heading=heading,
            speed=pref,
            pref=pref,
            lane_pos=cross,
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
        pref = np.where(
            rng.random(idx.size) < 0.05 * dt, np.clip(pref + rng.normal(0, 0.3, idx.size), 0.6, 2.0), pref
        )
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
        direction = np.sign(np.cos(v["heading"][idx])) if across else np.sign(np.sin(v["heading"][idx]))
        lengths = v["s0"][idx]
        speed, pref = v["speed"][idx], v["pref"][idx]
        # car following: the nearest vehicle ahead in the same lane limits the speed
        same = np.abs(cross[:, None] - cross[None, :]) < lay.lane_width * 0.6  # [n, n]
        ahead = same & ((along[None, :] - along[:, None]) * direction[:, None] > 0)
        gaps = np.abs(along[None, :] - along[:, None]) - (lengths[None, :] + lengths[:, None]) / 2
        gaps = np.where(ahead, gaps, np.inf)
        lead = np.argmin(gaps, axis=1)
        gap = gaps[np.arange(idx.size), lead]
        safe = 2.0 + 1.2 * speed
        gap = np.minimum(gap, 1e6)  # no vehicle ahead: an infinite gap
        target = np.where(gap < safe, np.minimum(pref, np.maximum(0.0, speed[lead] * gap / safe)), pref)
        target = np.where(gap < 1.0, 0.0, target)
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
                c
                for k, c in enumerate(lanes)
                if abs(c - lane_pos[a]) > 0.1
                and abs(c - lane_pos[a]) < lay.lane_width * 1.5
                and (math.cos(lay.lane_direction(k)) if across else math.sin(lay.lane_direction(k)))
                * direction[a]
                > 0
            ]
            if same_dir:
                lane_pos[a] = same_dir[int(rng.integers(len(same_dir)))]
        lateral = np.clip(lane_pos - cross, -1.0, 1.0) * np.minimum(speed, 1.2) * 0.8
        moved = along + direction * speed * dt
        cross = cross + lateral * dt
        forward = direction * np.maximum(speed, 1e-3)
        heading = np.arctan2(lateral, forward) if across else np.arctan2(forward, lateral)
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
        ped = self.cls == PEDESTRIAN
        length = v["s0"]
        margin = np.where(ped, 2.5, length / 2 + 1.5)
        far = lay.z_far + np.where(ped, 2.5, length)
        near = np.where(ped, self.z_exit_bottom - 3.5, 2.5 + length / 2)
        gone = (z > far) | (z < near) | (np.abs(x) > cam.half_view(np.maximum(z, 0.1)) + margin + 0.5)
        if np.any(gone):
            keep = ~gone
            self.ids, self.cls = self.ids[keep], self.cls[keep]
            for c in self.cols:
                v[c] = v[c][keep]

    # -- boxes
    def boxes(self) -> np.ndarray:
        cam, v = self.cam, self.v
        out = np.zeros((self.ids.size, 4))
        sizes = np.stack([v["s0"], v["s1"], v["s2"]], axis=1)
        ped = self.cls == PEDESTRIAN
        if np.any(ped):
            x, z = v["x"][ped], v["z"][ped]
            u, vb = cam.project(x, np.zeros_like(x), z)
            h = cam.focal * sizes[ped, 0] / z
            w = sizes[ped, 1] * h
            out[ped] = np.stack([u - w / 2, vb - h, u + w / 2, vb], axis=1)
        if np.any(~ped):
            veh = ~ped
            out[veh] = vehicle_boxes(cam, v["x"][veh], v["z"][veh], v["heading"][veh], sizes[veh])
        return out


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
    cam = make_camera(width, height, rng)
    layout = make_layout(cam, rng)
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
    return World(
        camera=cam, layout=layout, frame_rate=frame_rate, agents=dict(sim.agents), states=tuple(states)
    )
