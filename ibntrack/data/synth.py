"""A synthetic cross-domain world: MOTChallenge sequences with exact ground truth, in several visual domains.

A street seen by a surveillance camera — fixed, or moving with ``camera="pan" | "shake" | "drone"``
(:mod:`ibntrack.data.synth_camera`) — (horizon, perspective, textured road, pavement, grass,
façades, lane markings, lamp posts) with pedestrians (head, torso, legs; clothing colours and patterns;
bags and hats) and vehicles (body, windows, wheels, lights) that enter, move with turns and speed changes,
occlude each other by depth (with a visibility value per box) and leave. The same scene can be rendered in
the domains of :data:`DOMAINS` (``summer``, ``winter``, ``night``, ``fog``, ``rain``) or a user style
(:func:`load_style`); a style changes appearance, never geometry: the same seed gives the same boxes in
every domain (geometry, identity looks and per-frame weather use separate random streams).

Written layout (MOTChallenge, see :mod:`ibntrack.data.mot`)::

    <out_dir>/<name>/img1/000001.jpg ...    JPEG quality 90
    <out_dir>/<name>/gt/gt.txt              frame,id,x,y,w,h,1,class,visibility  (class 1 pedestrian, 3 car)
    <out_dir>/<name>/seqinfo.ini            + sceneKeywords (the domain's keywords), classNames

Speed: ``benchmarks/bench_synth.py`` times it (frames per second, per stage).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import cv2
import numpy as np

from ibntrack.data.mot import write_gt, write_seqinfo
from ibntrack.data.styles import DOMAINS, Particles, Style, StyleError, load_style
from ibntrack.data.synth_camera import CAMERAS, camera_path, warp_frame, warp_gt_rows
from ibntrack.data.synth_motion import simulate_world
from ibntrack.data.synth_render import Renderer
from ibntrack.data.synth_world import PEDESTRIAN, VEHICLE, World
from ibntrack.sizes import parse_size

__all__ = [
    "CLASS_NAMES",
    "DOMAINS",
    "Particles",
    "Style",
    "StyleError",
    "SynthScene",
    "generate_dataset",
    "generate_sequence",
    "load_style",
    "resolve_style",
]

_LOG = logging.getLogger(__name__)

#: Class names the generator knows, with their agent classes.
CLASS_NAMES = {"pedestrian": PEDESTRIAN, "vehicle": VEHICLE}
_JPEG_QUALITY = 90


def resolve_style(domain: str = "summer", style: Style | str | os.PathLike | None = None) -> Style:
    """The style to render: ``style`` (a :class:`Style` or a YAML path) if given, else ``DOMAINS[domain]``.

    Raises:
        ValueError: unknown ``domain``.
        StyleError: a bad style file.
    """
    if isinstance(style, Style):
        return style
    if style is not None:
        return load_style(style)
    if domain not in DOMAINS:
        raise ValueError(f"domain must be one of {sorted(DOMAINS)} (or pass style=FILE.yaml), got {domain!r}")
    return DOMAINS[domain]


class SynthScene:
    """One synthetic sequence in memory: geometry, ground truth and frame rendering.

    Args:
        domain: a key of :data:`DOMAINS` (ignored when ``style`` is given).
        frames: number of frames.
        objects: number of agents present at once (pedestrians and vehicles); 30+ is a dense scene.
        size: image ``(width, height)`` in pixels.
        seed: scene seed; geometry depends on it (and on size, frames, objects, frame rate, classes) only.
        style: a :class:`Style` or a path to a YAML style file.
        frame_rate: frames per second.
        classes: which classes appear, in model-class order: names from ``CLASS_NAMES``.

    Attributes:
        world: the simulated :class:`~ibntrack.data.synth_world.World`.
        style: the :class:`Style` rendered.
    """

    def __init__(
        self,
        domain: str = "summer",
        frames: int = 300,
        objects: int = 20,
        size: tuple[int, int] = (640, 360),
        seed: int = 0,
        style: Style | str | os.PathLike | None = None,
        frame_rate: float = 30,
        classes: Sequence[str] = ("pedestrian", "vehicle"),
        camera: str = "static",
    ) -> None:
        _check_args(frames, objects, size, seed, frame_rate, classes)
        if camera not in CAMERAS:
            raise ValueError(f"camera must be one of {CAMERAS}, got {camera!r}")
        self.camera = camera
        self.style = resolve_style(domain, style)
        self.classes = tuple(classes)
        self.size = (int(size[0]), int(size[1]))
        self.seed = int(seed)
        self.frames = int(frames)
        geometry_rng = np.random.default_rng([self.seed, 1])
        agent_classes = tuple(CLASS_NAMES[c] for c in self.classes)
        self.world: World = simulate_world(
            self.size, self.frames, int(objects), float(frame_rate), agent_classes, geometry_rng
        )
        self._renderer: Renderer | None = None
        #: ``[frames, 3]`` view window ``(x0, y0, zoom)`` per frame (:mod:`ibntrack.data.synth_camera`).
        self.camera_path = camera_path(camera, self.frames, self.size, float(frame_rate), self.seed)

    @property
    def renderer(self) -> Renderer:
        if self._renderer is None:
            self._renderer = Renderer(self.world, self.style, self.seed)
        return self._renderer

    def gt_rows(self) -> np.ndarray:
        """Ground truth float64 [N, 9] ``frame, id, x, y, w, h, 1, class, visibility`` (MOT class ids),
        as the (possibly moving) camera sees it."""
        rows = self.world.gt_rows()
        if self.camera == "static":
            return rows
        return warp_gt_rows(rows, self.camera_path, self.size)

    def render(self, frame: int, out: np.ndarray | None = None) -> np.ndarray:
        """Image uint8 BGR [H, W, 3] of 1-based ``frame`` (drawn into ``out`` when given)."""
        if not 1 <= frame <= self.frames:
            raise ValueError(f"frame must be in 1..{self.frames}, got {frame}")
        if out is not None and (out.shape != (self.size[1], self.size[0], 3) or out.dtype != np.uint8):
            raise ValueError(
                f"out must be uint8 [{self.size[1]}, {self.size[0]}, 3], got {out.dtype} {out.shape}"
            )
        if self.camera == "static":
            return self.renderer.render(frame, out)
        x0, y0, z = self.camera_path[frame - 1].tolist()
        view = warp_frame(self.renderer.render(frame), x0, y0, z)
        if out is not None:
            out[...] = view
            return out
        return view


def _check_args(frames: int, objects: int, size, seed: int, frame_rate: float, classes) -> None:
    if int(frames) < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    if int(objects) < 1:
        raise ValueError(f"objects must be >= 1, got {objects}")
    if len(size) != 2 or int(size[0]) < 32 or int(size[1]) < 32:
        raise ValueError(f"size must be (width, height) with both >= 32, got {size}")
    if int(seed) < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    if not float(frame_rate) > 0:
        raise ValueError(f"frame_rate must be > 0, got {frame_rate}")
    classes = tuple(classes)
    if not classes or len(set(classes)) != len(classes) or any(c not in CLASS_NAMES for c in classes):
        raise ValueError(f"classes must be distinct names from {sorted(CLASS_NAMES)}, got {classes}")


def _parse_size(size: tuple[int, int] | str) -> tuple[int, int]:
    if isinstance(size, str):
        try:
            return parse_size(size)
        except ValueError as exc:
            raise ValueError(f"size: {exc}") from None
    return int(size[0]), int(size[1])


def generate_sequence(
    out_dir: str | os.PathLike,
    domain: str = "summer",
    frames: int = 300,
    objects: int = 20,
    size: tuple[int, int] | str = (640, 360),
    seed: int = 0,
    style: Style | str | os.PathLike | None = None,
    name: str | None = None,
    frame_rate: float = 30,
    classes: Sequence[str] = ("pedestrian", "vehicle"),
    camera: str = "static",
) -> Path:
    """Writes one synthetic MOTChallenge sequence to ``<out_dir>/<name>``.

    Args:
        out_dir: parent directory (created).
        domain: a key of :data:`DOMAINS`; ignored when ``style`` is given.
        frames: number of frames.
        objects: agents present at once.
        size: ``(width, height)`` or ``"640x360"``.
        seed: scene seed (the same seed gives the same boxes in every domain).
        style: a :class:`Style` or a YAML style file (its ``keywords`` become the scene keywords).
        name: sequence name; default ``synth-<domain>-<seed>``.
        frame_rate: frames per second.
        classes: classes to generate, in model-class order (``classNames`` of the sequence).
        camera: ``static | pan | shake | drone`` (:mod:`ibntrack.data.synth_camera`; boxes stay exact).

    Returns:
        The sequence directory. Frames, ``gt/gt.txt`` and ``seqinfo.ini`` of an earlier sequence at the
        same place are replaced (``seqinfo.ini`` is written last).
    """
    scene = SynthScene(domain, frames, objects, _parse_size(size), seed, style, frame_rate, classes, camera)
    name = name or f"synth-{scene.style.name}-{int(seed):04d}"
    seq_dir = Path(out_dir) / name
    img_dir = seq_dir / "img1"
    img_dir.mkdir(parents=True, exist_ok=True)
    for old in img_dir.glob("*.jpg"):
        if old.stem.isdigit() and int(old.stem) > scene.frames:
            old.unlink()
    t0 = time.perf_counter()
    params = [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY]
    buffer = np.empty((scene.size[1], scene.size[0], 3), np.uint8)
    for frame in range(1, scene.frames + 1):
        path = img_dir / f"{frame:06d}.jpg"
        if not cv2.imwrite(str(path), scene.render(frame, buffer), params):
            raise OSError(f"cannot write {path}")
    write_gt(seq_dir / "gt" / "gt.txt", scene.gt_rows())
    write_seqinfo(
        seq_dir,
        name=name,
        frame_rate=frame_rate,
        length=scene.frames,
        width=scene.size[0],
        height=scene.size[1],
        image_ext=".jpg",
        scene=scene.style.keywords,
        class_names=scene.classes,
    )
    elapsed = time.perf_counter() - t0
    _LOG.info(
        "wrote %s: %d frames %dx%d, domain %s, %d identities (%.1f frames/s)",
        seq_dir, scene.frames, *scene.size, scene.style.name, len(scene.world.agents),
        scene.frames / max(elapsed, 1e-9),
    )  # fmt: skip
    return seq_dir


def generate_dataset(
    root: str | os.PathLike,
    domains: Iterable[str | Style] = ("summer",),
    sequences_per_domain: int = 2,
    frames: int = 300,
    objects: int = 20,
    size: tuple[int, int] | str = (640, 360),
    seed: int = 0,
    shared_geometry: bool = False,
    frame_rate: float = 30,
    classes: Sequence[str] = ("pedestrian", "vehicle"),
) -> list[Path]:
    """Writes ``sequences_per_domain`` sequences per domain to ``<root>/<domain>/<name>``.

    Args:
        root: output root.
        domains: domain names or :class:`Style` objects.
        sequences_per_domain: sequences in each domain.
        shared_geometry: if True, sequence ``i`` has seed ``seed + i`` in every domain (the same scenes
            seen in each domain); otherwise every sequence of every domain has its own seed.
        frames, objects, size, frame_rate, classes: as in :func:`generate_sequence`.

    Returns:
        The sequence directories, domain by domain.
    """
    if sequences_per_domain < 1:
        raise ValueError(f"sequences_per_domain must be >= 1, got {sequences_per_domain}")
    paths = []
    for d, domain in enumerate(domains):
        style = resolve_style(domain) if isinstance(domain, str) else domain
        for i in range(sequences_per_domain):
            s = seed + i if shared_geometry else seed + d * sequences_per_domain + i
            paths.append(
                generate_sequence(
                    Path(root) / style.name,
                    frames=frames,
                    objects=objects,
                    size=size,
                    seed=s,
                    style=style,
                    name=f"synth-{style.name}-{s:04d}",
                    frame_rate=frame_rate,
                    classes=classes,
                )  # fmt: skip
            )
    return paths
