"""The static part of a synthetic frame and the camera: background, lights, weather, colour response.

:class:`Scenery` holds what a :class:`~ibntrack.data.synth_render.Renderer` needs besides the agents: the
background rendered once per sequence (sky with clouds, façades with windows, textured ground in
perspective with lane markings, crosswalk, puddles and lamp pools, supersampled 2x), the additive glow of
lamp heads at night, the weather layers (particle textures, a sensor-noise tile) and the colour model:
scene colours are lit (lamp pools), hazed by depth, then mapped by the style's affine camera response
``M @ bgr + b`` (:meth:`Style.camera_matrix`).

Random streams: ``[seed, 3]`` scene textures and buildings (shared by every domain), ``[seed, 3, domain]``
particles, ``[seed, 5, domain]`` sensor noise.
"""

from __future__ import annotations

import math
import zlib

import cv2
import numpy as np

from ibntrack.data.styles import Style
from ibntrack.data.synth_world import Building, World

__all__ = ["LAMP_HEIGHT", "REF_HEIGHT", "Scenery", "rgb2bgr"]

LAMP_HEIGHT = 5.5  # metres
REF_HEIGHT = 360.0  # pixel sizes in styles are given at this image height
_SS = 2  # background supersampling
_SKY_DEPTH = 150.0  # metres, for haze on the sky


def rgb2bgr(c) -> np.ndarray:
    """RGB colour (sequence of 3) -> float32 BGR [3]."""
    return np.asarray(c, np.float32)[::-1].copy()


def _sample(texture: np.ndarray, tx: np.ndarray, ty: np.ndarray) -> np.ndarray:
    """Bilinear lookup of a tiling texture float32 [n, n] at texel coordinates ``(tx, ty)``."""
    n = texture.shape[0]
    return cv2.remap(
        texture, np.mod(tx, n).astype(np.float32), np.mod(ty, n).astype(np.float32), cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_WRAP,
    )  # fmt: skip


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cells: tuple[int, int]) -> np.ndarray:
    """Smooth value noise in [0, 1] of ``shape`` from a ``cells`` grid (bicubic upsampling)."""
    grid = rng.random(cells).astype(np.float32)
    return np.clip(cv2.resize(grid, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC), 0, 1)


class Scenery:
    """Background, lights, weather and colour model of one sequence in one style.

    Args:
        world: the simulated scene (its camera and layout are used).
        style: the visual domain.
        seed: the scene seed.
    """

    def __init__(self, world: World, style: Style, seed: int) -> None:
        self.world, self.style, self.seed = world, style, seed
        self.cam = world.camera
        self.layout = world.layout
        self.scale = self.cam.height / REF_HEIGHT
        self.m, self.b = style.camera_matrix()
        self.haze_bgr = rgb2bgr(style.haze_color)
        self.haze_final = self.m @ self.haze_bgr  # haze colour after M (without b)
        self.domain_key = zlib.crc32(style.name.encode("utf-8"))
        self._lamps_xz = np.asarray(world.layout.lamps, np.float32).reshape(-1, 2)
        self._glow = self._glow_kernel()
        self._glow_cache: dict[int, np.ndarray] = {}
        self._lit_windows: list[tuple[float, float, float, float]] = []
        self.background, self.static_glow = self._build_background(np.random.default_rng([seed, 3]))
        self._particles = self._build_particles(np.random.default_rng([seed, 3, self.domain_key]))
        self._noise = self._build_noise(np.random.default_rng([seed, 5, self.domain_key]))

    # ------------------------------------------------------------------------------------------ colours

    def fog(self, z: float) -> float:
        """Haze fraction at depth ``z`` metres."""
        return 1.0 - math.exp(-self.style.haze * float(z))

    def lamp_light(self, x: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Illumination factor (>= 1) of ground points by street lamps (1 without lights)."""
        if self.style.lights <= 0 or not len(self._lamps_xz):
            return np.ones(np.broadcast(np.asarray(x), np.asarray(z)).shape, np.float32)
        x, z = np.asarray(x, np.float32), np.asarray(z, np.float32)
        gain, inv = np.float32(2.6 * self.style.lights), np.float32(1.0 / (2 * 3.2**2))
        if x.ndim == 0 and z.ndim == 0:  # one point: vectorise over the lamps
            d2 = (self._lamps_xz[:, 0] - x) ** 2 + (self._lamps_xz[:, 1] - z) ** 2
            return np.float32(1.0) + gain * np.exp(-d2 * inv).sum()
        out = np.ones(np.broadcast(x, z).shape, np.float32)
        for lx, lz in self._lamps_xz:
            out += gain * np.exp(-((x - lx) ** 2 + (z - lz) ** 2) * inv)
        return out

    def final_color(self, albedo_bgr: np.ndarray, z: float, light: float = 1.0) -> tuple[float, ...]:
        """Image colour (BGR, for cv2 drawing) of a surface of ``albedo_bgr`` at depth ``z``."""
        a = self.fog(z)
        scene = (1 - a) * light * albedo_bgr + a * self.haze_bgr
        out = np.clip(self.m @ scene + self.b, 0, 255)
        return tuple(float(v) for v in out)

    # ---------------------------------------------------------------------------------------- background

    def _build_background(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
        """The static background (uint8 BGR [H, W, 3]) and an additive glow layer (or None)."""
        cam, lay, st = self.cam, self.layout, self.style
        hs, ws = cam.height * _SS, cam.width * _SS
        v = (np.arange(hs, dtype=np.float32) + 0.5) / _SS
        u = (np.arange(ws, dtype=np.float32) + 0.5) / _SS
        img = np.zeros((hs, ws, 3), np.float32)
        depth = np.full((hs, ws), np.inf, np.float32)
        pal = {k: rgb2bgr(c) for k, c in st.palette.items()}
        # scene-level textures drawn first, so every domain consumes the stream identically
        tex_fine = rng.random((256, 256)).astype(np.float32)
        tex_coarse = cv2.GaussianBlur(rng.random((256, 256)).astype(np.float32), (0, 0), 3)
        tex_coarse = (tex_coarse - tex_coarse.min()) / max(float(np.ptp(tex_coarse)), 1e-6)
        clouds = _smooth_noise(rng, (hs, ws), (4, 9))
        building_rngs = [np.random.default_rng([self.seed, 3, 100 + k]) for k in range(len(lay.buildings))]

        # sky
        sky_rows = int(min(hs, max(0, math.ceil(cam.horizon * _SS))))
        t = np.clip(v[:sky_rows] / max(cam.horizon, 1), 0, 1)[:, None, None]
        img[:sky_rows] = pal["sky_top"] * (1 - t) + pal["sky_horizon"] * t
        cloud = np.clip((clouds[:sky_rows] - 0.55) * 2.5, 0, 0.7)[..., None]
        img[:sky_rows] += (np.minimum(pal["sky_horizon"] * 1.12, 255) - img[:sky_rows]) * cloud
        depth[:sky_rows] = _SKY_DEPTH

        # ground, in perspective: (row, column) -> (X, Z) on the ground plane
        g0 = sky_rows
        vv = v[g0:][:, None]
        z = (cam.focal * cam.cam_height / np.maximum(vv - cam.horizon, 1e-3)).astype(np.float32)
        z = np.minimum(z, 3000.0)
        x = ((u[None, :] - cam.cx) * z / cam.focal).astype(np.float32)
        z = np.broadcast_to(z, x.shape)
        fine = _sample(tex_fine, x * 24, z * 24)  # world-anchored textures: 24 and 1.5 texels per metre
        coarse = _sample(tex_coarse, x * 1.5, z * 1.5)
        across = z if lay.kind == "across" else x
        along = x if lay.kind == "across" else z
        d = np.abs(across - lay.road_center)
        half = lay.road_half
        road = d < half
        curb = (d >= half) & (d < half + 0.25)
        walk = (d >= half + 0.25) & (d < half + lay.sidewalk)
        grass = ~(road | curb | walk)
        ground = np.empty(x.shape + (3,), np.float32)
        tiles = ((np.mod(x, 0.8) < 0.05) | (np.mod(z, 0.8) < 0.05)).astype(np.float32)
        ground[road] = pal["road"]
        ground[walk] = pal["pavement"]
        ground[curb] = pal["pavement"] * 1.1
        ground[grass] = pal["grass"]
        shade = np.ones(x.shape, np.float32)
        shade += np.where(road, 0.08 * (fine - 0.5) + 0.1 * (coarse - 0.5), 0)
        shade += np.where(walk, -0.12 * tiles + 0.05 * (fine - 0.5), 0)
        shade += np.where(grass, 0.25 * (fine - 0.5) + 0.3 * (coarse - 0.5), 0)
        ground *= shade[..., None]
        # lane markings (dashed between lanes of one direction, solid at the centre) and a crosswalk
        lanes = lay.lanes_cross()
        marks = np.zeros(x.shape, bool)
        for k in range(1, lay.lanes):
            c = (lanes[k - 1] + lanes[k]) / 2
            centre = k == lay.lanes // 2
            dash = True if centre else (np.mod(along, 9.0) < 3.0)
            marks |= (np.abs(across - c) < (0.12 if centre else 0.08)) & dash
        if lay.crosswalk is not None:
            zebra = (
                (np.abs(along - lay.crosswalk) < 2.0) & road & (np.mod(across - lay.road_center, 1.0) < 0.5)
            )
            marks |= zebra
        wear = 0.45 + 0.35 * coarse
        ground[marks] = ground[marks] + (pal["marking"] - ground[marks]) * wear[marks, None]
        if st.wet > 0:  # puddles reflecting the sky
            puddle = (coarse > 0.62) & (road | walk)
            refl = pal["sky_horizon"] * 0.75
            ground[puddle] += (refl - ground[puddle]) * (0.55 * st.wet)
        ground *= self.lamp_light(x, z)[..., None]
        img[g0:] = ground
        depth[g0:] = z

        # façades (parallel to the image plane), far to near
        for k in sorted(range(len(lay.buildings)), key=lambda i: -lay.buildings[i].z):
            self._draw_building(img, depth, lay.buildings[k], building_rngs[k], pal)

        # haze, supersampled -> image size, camera response
        a = (1.0 - np.exp(-st.haze * np.minimum(depth, _SKY_DEPTH if st.haze > 0 else 0)))[..., None]
        img = img * (1 - a) + self.haze_bgr * a
        img = cv2.resize(img, (cam.width, cam.height), interpolation=cv2.INTER_AREA)
        affine = np.concatenate([self.m, self.b[:, None]], axis=1)
        final = np.clip(cv2.transform(img, affine), 0, 255)
        glow = None
        if st.lights > 0:
            final, glow = self._add_lights(final, rng_windows=np.random.default_rng([self.seed, 3, 7]))
        return final.astype(np.uint8), glow

    def _draw_building(
        self, img: np.ndarray, depth: np.ndarray, bld: Building, rng: np.random.Generator, pal: dict
    ) -> None:
        cam, st = self.cam, self.style
        f, z = cam.focal * _SS, bld.z
        cx, hor = cam.cx * _SS, cam.horizon * _SS
        x0 = int(round(cx + f * bld.x0 / z))
        x1 = int(round(cx + f * bld.x1 / z))
        base = int(round(hor + f * cam.cam_height / z))
        top = int(round(hor + f * (cam.cam_height - bld.height) / z))
        hs, ws = img.shape[:2]
        cx0, cx1, ct, cb = max(x0, 0), min(x1, ws), max(top, 0), min(base, hs)
        if cx1 <= cx0 or cb <= ct:
            return
        color = pal["facade"] * rng.uniform(0.75, 1.2, 3).astype(np.float32) * rng.uniform(0.8, 1.1)
        color = np.clip(color, 0, 255)
        img[ct:cb, cx0:cx1] = color
        depth[ct:cb, cx0:cx1] = z
        # cornice / roof edge (snow on it in winter)
        roof_h = max(1, int(round(f * 0.6 / z)))
        roof = pal["roof"] if st.snow_cover <= 0 else pal["snow"]
        if top >= 0:  # the roof line is inside the image
            img[top : min(cb, top + roof_h), cx0:cx1] = roof
        # windows: floors of 3.2 m from 1.2 m, columns every 2.8 m
        win = pal["window"]
        floors = int((bld.height - 1.5) // 3.2)
        cols = int((bld.x1 - bld.x0 - 1.0) // 2.8)
        kind = rng.integers(3)
        lit = rng.random((max(floors, 1), max(cols, 1))) < 0.45
        for fl in range(floors):
            y_lo = 1.2 + fl * 3.2
            for cl in range(cols):
                wx = bld.x0 + 1.0 + cl * 2.8 + (0.2 if kind == 0 else 0.5)
                ww = 1.6 if kind == 0 else 1.1
                u0, u1 = cx + f * wx / z, cx + f * (wx + ww) / z
                v0 = hor + f * (cam.cam_height - (y_lo + 1.6)) / z
                v1 = hor + f * (cam.cam_height - y_lo) / z
                r0, r1, c0, c1 = int(max(v0, 0)), int(min(v1, hs)), int(max(u0, 0)), int(min(u1, ws))
                if r1 > r0 and c1 > c0:
                    img[r0:r1, c0:c1] = win * (0.85 + 0.3 * rng.random())
                    if lit[fl, cl]:
                        self._lit_windows.append((u0 / _SS, v0 / _SS, u1 / _SS, v1 / _SS))

    def _add_lights(
        self, final: np.ndarray, rng_windows: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Night: lit windows into the background; lamp heads as a static additive glow layer."""
        st, cam = self.style, self.cam
        light = rgb2bgr(st.palette["light"])
        for u0, v0, u1, v1 in self._lit_windows:
            r0, r1 = int(max(v0, 0)), int(min(math.ceil(v1), cam.height))
            c0, c1 = int(max(u0, 0)), int(min(math.ceil(u1), cam.width))
            if r1 > r0 and c1 > c0:
                final[r0:r1, c0:c1] = (
                    final[r0:r1, c0:c1] * 0.3 + light * (0.55 + 0.3 * rng_windows.random()) * st.lights
                )
        glow = np.zeros_like(final)
        for lx, lz in self.layout.lamps:
            u, v = cam.project(np.array(lx), np.array(LAMP_HEIGHT), np.array(lz))
            r = cam.focal * 1.1 / lz
            if -3 * r < u < cam.width + 3 * r and -3 * r < v < cam.height + 3 * r:
                self.add_glow(glow, float(u), float(v), float(r), light * st.lights)
        return final, np.clip(glow, 0, 255).astype(np.uint8)

    @staticmethod
    def _glow_kernel(size: int = 33) -> np.ndarray:
        r = np.linspace(-1, 1, size, dtype=np.float32)
        d2 = r[None] ** 2 + r[:, None] ** 2
        return np.exp(-d2 * 4.0) + 0.6 * np.exp(-d2 * 40.0)

    def add_glow(self, layer: np.ndarray, u: float, v: float, radius: float, color: np.ndarray) -> None:
        """Adds a glow of ``radius`` pixels (float layer [H, W, 3] or uint8 frame) centred at (u, v)."""
        size = max(3, int(round(radius * 2)) | 1)
        x0, y0 = int(round(u)) - size // 2, int(round(v)) - size // 2
        h, w = layer.shape[:2]
        cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x0 + size, w), min(y0 + size, h)
        if cx1 <= cx0 or cy1 <= cy0:
            return
        kern = self._glow_cache.get(size)
        if kern is None:
            kern = self._glow_cache[size] = cv2.resize(self._glow, (size, size))
        patch = kern[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0, None] * np.asarray(color, np.float32)
        if layer.dtype == np.uint8:
            region = layer[cy0:cy1, cx0:cx1]
            cv2.add(region, np.clip(patch, 0, 255).astype(np.uint8), dst=region)
        else:
            layer[cy0:cy1, cx0:cx1] += patch

    # ----------------------------------------------------------------------------------------- weather

    def _build_particles(self, rng: np.random.Generator) -> list[np.ndarray]:
        """Particle textures uint8 [2H, W + 16, 3] added to frames: two snow layers (far and near,
        scrolled down at two speeds) or three rain textures (one picked at a random offset per frame)."""
        p, cam = self.style.particles, self.cam
        if p.kind == "none" or p.density <= 0:
            return []
        layers = []
        h, w = cam.height, cam.width
        n_total = p.density * w * h / 1000.0
        if p.kind == "snow":
            for share, size, blur in ((0.65, 0.6, 0.0), (0.35, 1.3, 0.6)):
                tex = np.zeros((2 * h, w + 16, 3), np.uint8)
                n = int(n_total * share * 2)
                xs, ys = rng.uniform(0, w + 16, n), rng.uniform(0, 2 * h, n)
                radius = max(1, int(round(p.size * size * self.scale * 16)))
                for x, y in zip(xs, ys, strict=True):
                    val = int(p.intensity * rng.uniform(0.6, 1.0))
                    cv2.circle(
                        tex, (int(x * 16), int(y * 16)), radius, (val, val, val), -1, cv2.LINE_AA, shift=4
                    )
                if blur > 0:
                    tex = cv2.GaussianBlur(tex, (0, 0), blur * self.scale + 0.3)
                layers.append(tex)
        else:  # rain: three textures of slanted streaks, picked per frame
            length = p.speed * self.scale
            for _ in range(3):
                tex = np.zeros((2 * h, w + 16, 3), np.uint8)
                n = int(n_total * 2)
                for x, y in zip(rng.uniform(0, w + 16, n), rng.uniform(0, 2 * h, n), strict=True):
                    val = int(p.intensity * rng.uniform(0.5, 1.0))
                    ln = length * rng.uniform(0.6, 1.2)
                    x1, y1 = x + 0.18 * ln, y + ln
                    thick = max(1, int(round(p.size * self.scale)))
                    pt0, pt1 = (int(x * 16), int(y * 16)), (int(x1 * 16), int(y1 * 16))
                    cv2.line(tex, pt0, pt1, (val, val, val), thick, cv2.LINE_AA, shift=4)
                layers.append(cv2.GaussianBlur(tex, (0, 0), 0.5))
        return layers

    def _build_noise(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray] | None:
        """A Gaussian noise tile, as its positive and negative parts uint8 [H + 32, W + 32, 3]."""
        sigma = self.style.noise
        if sigma <= 0:
            return None
        cam = self.cam
        n = rng.normal(0, sigma, (cam.height + 32, cam.width + 32, 3)).astype(np.float32)
        return np.clip(n, 0, 255).astype(np.uint8), np.clip(-n, 0, 255).astype(np.uint8)

    def apply_weather(self, frame: np.ndarray, frame_index: int, rng: np.random.Generator) -> None:
        """Falling particles, camera blur and sensor noise on ``frame`` (uint8 BGR, in place); ``rng`` is
        the frame's own generator (rain textures and noise offsets)."""
        cam, st = self.cam, self.style
        h, w = cam.height, cam.width
        if self._particles:
            p = st.particles
            if p.kind == "snow":
                for depth, tex in zip((0.5, 1.0), self._particles, strict=True):
                    off = int(frame_index * p.speed * depth * self.scale) % h
                    dx = int(round(8 + 6 * math.sin(frame_index * 0.05 * (1 + depth))))
                    cv2.add(frame, tex[h - off : 2 * h - off, dx : dx + w], dst=frame)
            else:
                tex = self._particles[int(rng.integers(len(self._particles)))]
                oy, ox = int(rng.integers(h)), int(rng.integers(16))
                cv2.add(frame, tex[oy : oy + h, ox : ox + w], dst=frame)
        if st.blur > 0:
            cv2.GaussianBlur(frame, (0, 0), st.blur * self.scale, dst=frame)
        if self._noise is not None:
            pos, neg = self._noise
            oy, ox = int(rng.integers(32)), int(rng.integers(32))
            cv2.add(frame, pos[oy : oy + h, ox : ox + w], dst=frame)
            oy, ox = int(rng.integers(32)), int(rng.integers(32))
            cv2.subtract(frame, neg[oy : oy + h, ox : ox + w], dst=frame)
