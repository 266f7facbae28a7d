"""Rendering of a simulated world (:mod:`ibntrack.data.synth_world`) in a visual style.

Per sequence, once: the :class:`~ibntrack.data.synth_scenery.Scenery` (background, lights, weather, colour
model) and, lazily, one sprite pyramid per (pedestrian, view, walking phase) and one polygon model per
vehicle. Per frame: copy the background, darken the ground under the agents (shadows), draw agents and
lamp posts far to near, add light glows, then the weather (particles, blur, sensor noise). A sprite is
cached after the camera matrix ``M``, so lighting and haze of an object are ``k * (M @ albedo) + c`` with
per-object scalars.

Random streams: ``[seed, 2, id]`` identity looks (shared by every domain), ``[seed, 4, domain, frame]``
per-frame weather and noise (so frames can be rendered in any order). Nothing here touches geometry.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from ibntrack.data.styles import Style
from ibntrack.data.synth_scenery import LAMP_HEIGHT, Scenery, rgb2bgr
from ibntrack.data.synth_sprites import (
    PHASES,
    PedestrianLook,
    VehicleLook,
    draw_pedestrian,
    pedestrian_look,
    vehicle_look,
)
from ibntrack.data.synth_vehicles import VehicleModel, build_vehicle_model
from ibntrack.data.synth_world import PEDESTRIAN, Camera, FrameState, Layout, World, vehicle_corners

__all__ = ["Renderer"]

_SPRITE_HEIGHT = 96
_CIRCLE = np.stack(
    [
        np.cos(np.linspace(0, 2 * np.pi, 16, endpoint=False)),
        np.sin(np.linspace(0, 2 * np.pi, 16, endpoint=False)),
    ],
    axis=1,
)  # unit circle [16, 2]
_SUN = np.array([-0.45, 0.8, -0.4]) / np.linalg.norm([-0.45, 0.8, -0.4])  # (X, Y, Z) towards the sun
_TOP_SHADE = 0.55 + 0.45 * _SUN[1]  # Lambert shading of upward faces


@dataclass(frozen=True, eq=False)
class _PlacedModel:
    """A vehicle model with what drawing needs per polygon: colours after the camera matrix
    (float64 [Q, 3]), upward faces, point spans, light kinds, index of each polygon's first point."""

    model: VehicleModel
    lin: np.ndarray
    up: np.ndarray
    spans: list[tuple[int, int]]
    lights: list[int]
    emissive: np.ndarray
    first: np.ndarray


class Renderer:
    """Draws the frames of a :class:`World` in a :class:`Style`.

    Args:
        world: the simulated scene (geometry).
        style: the visual domain.
        seed: the scene seed (appearance streams are derived from it).
    """

    def __init__(self, world: World, style: Style, seed: int) -> None:
        self.world, self.style, self.seed = world, style, seed
        self.cam: Camera = world.camera
        self.layout: Layout = world.layout
        self.sc = Scenery(world, style, seed)
        self.m, self.b, self.haze_final = self.sc.m, self.sc.b, self.sc.haze_final
        self.background = self.sc.background
        self._looks: dict[int, PedestrianLook | VehicleLook] = {}
        self._sprites: dict[tuple[int, str, int], list[np.ndarray]] = {}
        self._sprite_q = float(1.0 / max(1.0, np.abs(self.m).sum(axis=1).max()))  # sprite quantisation scale
        self._models: dict[int, _PlacedModel] = {}
        self._poles = self._pole_drawings()
        self._shadow_mask = np.zeros((self.cam.height, self.cam.width), np.uint8)
        self._shadow_lut = np.round(np.arange(256) * (1 - 0.55 * style.shadows)).astype(np.uint8)

    # ----------------------------------------------------------------------------------------- objects

    def _look(self, ident: int) -> PedestrianLook | VehicleLook:
        look = self._looks.get(ident)
        if look is None:
            rng = np.random.default_rng([self.seed, 2, ident])
            agent = self.world.agents[ident]
            look = pedestrian_look(rng) if agent.cls == PEDESTRIAN else vehicle_look(rng)
            self._looks[ident] = look
        return look

    def _sprite(self, ident: int, view: str, phase: int) -> list[np.ndarray]:
        """Pyramid of the sprite, halving each level: uint8 [h, w, 4] with ``q * (M @ albedo)`` BGR
        (``q = self._sprite_q`` keeps it within 0-255) and alpha 0-255."""
        key = (ident, view, phase)
        levels = self._sprites.get(key)
        if levels is None:
            look = self._look(ident)
            assert isinstance(look, PedestrianLook)
            aspect = self.world.agents[ident].size[1]
            albedo, alpha = draw_pedestrian(look, aspect, view, phase, _SPRITE_HEIGHT, self.style.clothing)
            lin = cv2.transform(albedo, self.m * self._sprite_q)
            top = np.dstack([lin, alpha * 255.0])
            levels = [np.clip(top + 0.5, 0, 255).astype(np.uint8)]
            while top.shape[0] >= 24:
                top = cv2.resize(
                    top, (max(1, top.shape[1] // 2), top.shape[0] // 2), interpolation=cv2.INTER_AREA
                )
                levels.append(np.clip(top + 0.5, 0, 255).astype(np.uint8))
            self._sprites[key] = levels
        return levels

    def _draw_shadows(self, frame: np.ndarray, st: FrameState) -> None:
        """Darkens the ground under every agent (pedestrians: an ellipse at the feet; vehicles: the
        footprint), cast away from the sun. Drawn before the agents, in one pass over their bounding box."""
        if self.style.shadows <= 0 or st.ids.size == 0:
            return
        cam = self.cam
        polys = []
        ped = np.array([self.world.agents[int(i)].cls == PEDESTRIAN for i in st.ids])
        if np.any(ped):
            b = st.boxes[ped]
            w = (b[:, 2] - b[:, 0])[:, None, None]
            centre = np.stack([(b[:, 0] + b[:, 2]) / 2 + 0.25 * w[:, 0, 0], b[:, 3]], axis=1)[:, None, :]
            polys.append(centre + _CIRCLE[None] * np.concatenate([0.75 * w, 0.12 * w], axis=2))  # [n, 16, 2]
        if np.any(~ped):
            sizes = np.array([self.world.agents[int(i)].size for i in st.ids[~ped]])
            gx, gz = vehicle_corners(
                st.x[~ped] - _SUN[0] * 0.5, st.z[~ped] - _SUN[2] * 0.5, st.heading[~ped],
                sizes[:, 0] * 1.05, sizes[:, 1] * 1.1,
            )  # fmt: skip
            u, v = cam.project(gx, 0.0, np.maximum(gz, 0.5))
            quads = np.stack([u, v], axis=2)  # [n, 4, 2]
            polys.append(np.concatenate([quads, np.repeat(quads[:, -1:], 12, axis=1)], axis=1))  # pad to 16
        pts = np.concatenate(polys)  # [n, 16, 2]
        h, w = frame.shape[:2]
        y0 = int(np.clip(np.floor(pts[..., 1].min()), 0, h))
        y1 = int(np.clip(np.ceil(pts[..., 1].max()) + 1, 0, h))
        x0 = int(np.clip(np.floor(pts[..., 0].min()), 0, w))
        x1 = int(np.clip(np.ceil(pts[..., 0].max()) + 1, 0, w))
        if y1 <= y0 or x1 <= x0:
            return
        mask = self._shadow_mask[y0:y1, x0:x1]
        mask[:] = 0
        cv2.fillPoly(mask, list(np.round((pts - [x0, y0]) * 16).astype(np.int32)), 1, cv2.LINE_8, shift=4)
        region = frame[y0:y1, x0:x1]
        cv2.copyTo(cv2.LUT(region, self._shadow_lut), mask, region)  # darken where the mask is set

    def _draw_pedestrian(self, frame: np.ndarray, st: FrameState, k: int) -> None:
        ident = int(st.ids[k])
        x1, y1, x2, y2 = st.boxes[k]
        heading, speed = st.heading[k], st.speed[k]
        c, s = math.cos(heading), math.sin(heading)
        if abs(c) >= 0.5:
            view = "side"
        else:
            view = "front" if s < 0 else "back"
        phase = -1 if speed < 0.2 else int(st.phase[k] * PHASES) % PHASES
        if view != "side" and phase >= 0:
            phase = phase % 2
        levels = self._sprite(ident, view, phase)
        flip = view == "side" and c < 0
        z = float(st.z[k])
        light = float(self.sc.lamp_light(st.x[k], z)) if self.style.lights > 0 else 1.0
        self._blit(frame, levels, flip, (x1, y1, x2, y2), z, light)

    def _blit(
        self, frame: np.ndarray, levels: list[np.ndarray], flip: bool, box: tuple, z: float, light: float
    ) -> None:
        """Alpha-blends a sprite scaled to ``box`` (xyxy pixels), lit by ``light``, hazed at depth ``z``."""
        h, w = frame.shape[:2]
        bx0, by0 = int(round(box[0])), int(round(box[1]))
        bw = max(1, int(round(box[2])) - bx0)
        bh = max(1, int(round(box[3])) - by0)
        cx0, cy0, cx1, cy1 = max(bx0, 0), max(by0, 0), min(bx0 + bw, w), min(by0 + bh, h)
        if cx1 <= cx0 or cy1 <= cy0:
            return
        src = levels[0]
        for level in levels[1:]:  # the smallest level still at least the target size
            if level.shape[0] < bh:
                break
            src = level
        if flip:
            src = src[:, ::-1]
        # bilinear is enough: the pyramid keeps the scale factor within (1/2, 1] when shrinking
        sprite = cv2.resize(src, (bw, bh), interpolation=cv2.INTER_LINEAR)
        sprite = sprite[cy0 - by0 : cy1 - by0, cx0 - bx0 : cx1 - bx0]
        fog = self.sc.fog(z)
        gain = (1 - fog) * light / self._sprite_q
        offset = fog * self.haze_final + self.b
        affine = np.array(
            [[gain, 0, 0, 0, offset[0]], [0, gain, 0, 0, offset[1]], [0, 0, gain, 0, offset[2]]], np.float32
        )
        color = cv2.transform(sprite, affine)  # uint8 [h, w, 3], saturated
        weight = sprite[..., 3].astype(np.float32) * np.float32(1 / 255)
        region = frame[cy0:cy1, cx0:cx1]
        region[:] = cv2.blendLinear(color, region, weight, 1.0 - weight)

    def _vehicle_model(self, ident: int) -> _PlacedModel:
        """The identity's polygon model with per-polygon constants for drawing (cached)."""
        cached = self._models.get(ident)
        if cached is None:
            agent = self.world.agents[ident]
            snow = tuple(float(c) for c in rgb2bgr(self.style.palette["snow"]))
            look = self._look(ident)
            assert isinstance(look, VehicleLook)
            model = build_vehicle_model(agent.kind, agent.size, look, self.style.snow_cover, snow)
            up = (model.normals[:, 0] == 0) & (model.normals[:, 1] == 0)
            cached = _PlacedModel(
                model=model,
                lin=(model.colors @ self.m.T).astype(np.float64),
                up=up,
                spans=[(int(a), int(b)) for a, b in zip(model.starts[:-1], model.starts[1:], strict=True)],
                lights=[int(v) for v in model.lights],
                emissive=model.lights > 0,
                first=model.starts[:-1],
            )
            self._models[ident] = cached
        return cached

    def _draw_vehicle(self, frame: np.ndarray, st: FrameState, k: int, glows: list) -> None:
        pm = self._vehicle_model(int(st.ids[k]))
        model, cam = pm.model, self.cam
        x, z, heading = float(st.x[k]), float(st.z[k]), float(st.heading[k])
        c, s = math.cos(heading), math.sin(heading)
        rot = np.array([[c, s], [-s, c]])  # (forward, side) -> (X, Z), row-vector convention
        ground = model.points[:, :2] @ rot + (x, z)  # [P, 2] world (X, Z)
        wz = np.maximum(ground[:, 1], 0.5)
        inv = cam.focal / wz
        pix = np.empty((ground.shape[0], 2), np.int32)  # [P, 2] image (u, v), 4 fractional bits
        np.rint((cam.cx + ground[:, 0] * inv) * 16, out=pix[:, 0], casting="unsafe")
        np.rint(
            (cam.horizon + (cam.cam_height - model.points[:, 2]) * inv) * 16, out=pix[:, 1], casting="unsafe"
        )
        normals = model.normals @ rot  # [Q, 2] world (X, Z) face normals
        seen_from = ground[pm.first]  # a point of each polygon; the camera is at the origin
        visible = pm.up | ((normals * seen_from).sum(1) < 0)
        shade = np.where(pm.up, _TOP_SHADE, 0.55 + 0.45 * np.maximum(0.0, normals @ _SUN[[0, 2]]))
        shade[pm.emissive] = 1.0
        light = float(self.sc.lamp_light(x, z)) if self.style.lights > 0 else 1.0
        fog = self.sc.fog(z)
        colors = pm.lin * ((1 - fog) * light * shade)[:, None] + (fog * self.haze_final + self.b)
        colors = np.clip(colors, 0, 255).tolist()
        night = self.style.lights > 0
        spans = pm.spans
        for q in np.flatnonzero(visible).tolist():
            a, b = spans[q]
            cv2.fillConvexPoly(frame, pix[a:b], colors[q], cv2.LINE_AA, 4)
            if night and pm.lights[q]:
                u, v = pix[a:b].mean(0) / 16
                glows.append((float(u), float(v), float(wz[a:b].mean()), pm.lights[q]))

    def _pole_drawings(self) -> list[tuple]:
        """Static drawing commands of each lamp post: (points x16, thickness, pole colour, head colour)."""
        cam, lay = self.cam, self.layout
        out = []
        for lx, lz in lay.lamps:
            side = 1.0 if (lay.road_center - (lz if lay.kind == "across" else lx)) > 0 else -1.0
            arm_x, arm_z = (0.0, side * 1.3) if lay.kind == "across" else (side * 1.3, 0.0)
            pts3 = np.array([[lx, 0.0, lz], [lx, LAMP_HEIGHT, lz], [lx + arm_x, LAMP_HEIGHT, lz + arm_z]])
            u, v = cam.project(pts3[:, 0], pts3[:, 1], np.maximum(pts3[:, 2], 0.5))
            pts = [(int(round(a * 16)), int(round(b * 16))) for a, b in zip(u, v, strict=True)]
            thick = max(1, int(round(cam.focal * 0.14 / lz)))
            pole = self.sc.final_color(np.array([60.0, 62.0, 66.0]), lz)
            head = self.sc.final_color(rgb2bgr(self.style.palette["light"]) * (0.6 + self.style.lights), lz)
            radius = max(1, int(round(cam.focal * 0.25 / lz * 16)))
            out.append((pts, thick, pole, head, radius))
        return out

    def _draw_pole(self, frame: np.ndarray, j: int) -> None:
        pts, thick, pole, head, radius = self._poles[j]
        cv2.line(frame, pts[0], pts[1], pole, thick, cv2.LINE_AA, 4)
        cv2.line(frame, pts[1], pts[2], pole, max(1, thick - 1), cv2.LINE_AA, 4)
        cv2.ellipse(frame, pts[2], (radius, max(1, radius // 2)), 0, 0, 360, head, -1, cv2.LINE_AA, 4)

    # -------------------------------------------------------------------------------------------- frame

    def render(self, frame_index: int, out: np.ndarray | None = None) -> np.ndarray:
        """Image (uint8 BGR [H, W, 3]) of 1-based frame ``frame_index``, drawn into ``out`` if given
        (reusing a buffer saves the page faults of a fresh frame)."""
        st = self.world.states[frame_index - 1]
        if out is None:
            frame = self.background.copy()
        else:
            frame = out
            np.copyto(frame, self.background)
        rng = np.random.default_rng([self.seed, 4, self.sc.domain_key, frame_index])
        items = [(float(st.z[k]), 0, int(k)) for k in st.order]
        cam = self.cam
        for j, (lx, lz) in enumerate(self.layout.lamps):
            if abs(lx) < cam.half_view(lz) + 2 and lz > 1.0:
                items.append((lz, 1, j))
        items.sort(key=lambda item: (-item[0], item[1], item[2]))
        glows: list = []
        self._draw_shadows(frame, st)
        for _, kind, k in items:
            if kind == 1:
                self._draw_pole(frame, k)
            elif self.world.agents[int(st.ids[k])].cls == PEDESTRIAN:
                self._draw_pedestrian(frame, st, k)
            else:
                self._draw_vehicle(frame, st, k, glows)
        if self.sc.static_glow is not None:
            cv2.add(frame, self.sc.static_glow, dst=frame)
        if self.style.lights > 0:
            for u, v, depth, kind in glows:
                r = cam.focal * (0.9 if kind == 1 else 0.45) / depth
                col = np.array([200.0, 235.0, 255.0]) if kind == 1 else np.array([30.0, 30.0, 220.0])
                self.sc.add_glow(frame, u, v, r, col * self.style.lights * 0.9)
        self.sc.apply_weather(frame, frame_index, rng)
        return frame
