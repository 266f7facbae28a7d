"""The output folder of a batch run (a local path or any fsspec URL) and its done-markers (resume).

A source is *finished* when ``<out>/_done/<name>.json`` exists, its ``fingerprint`` equals the run's
(:func:`fingerprint`: the weights' bytes and every tracking option) and every file it lists exists.
Workers publish a source's result files first, then its marker, each written under a temporary name
and renamed into place, so a crash leaves either no marker (the source is tracked again) or a complete
set of files. A marker with another fingerprint (new weights, other flags) does not count: the source is
tracked again and its files replaced.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["OutputStore", "done_marker", "fingerprint", "MARKER_DIR"]

MARKER_DIR = "_done"


def fingerprint(weights: Mapping[str, bytes], options: Any) -> str:
    """sha256 over the weights files' bytes and ``options`` (a dataclass or dict, as sorted JSON)."""
    import dataclasses

    h = hashlib.sha256()
    for name, data in weights.items():
        h.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    is_instance = dataclasses.is_dataclass(options) and not isinstance(options, type)
    opts = dataclasses.asdict(options) if is_instance else dict(options)
    h.update(json.dumps(opts, sort_keys=True, default=str).encode())
    return h.hexdigest()


def done_marker(name: str, fp: str, files: Sequence[Path], record: Mapping[str, Any]) -> dict[str, Any]:
    """The marker of a finished source: its name, the run's fingerprint, its files (names) and ``record``."""
    return {"name": name, "fingerprint": fp, "files": [Path(f).name for f in files], **record}


class OutputStore:
    """An output folder reached through fsspec (plain paths use the local filesystem).

    Args:
        url: a folder path or URL (``s3://bucket/run``, ``gs://…``, ``file:///…``); the filesystem's
            fsspec implementation must be installed wherever workers run.
    """

    def __init__(self, url: str | os.PathLike) -> None:
        import fsspec

        self.url = os.fspath(url)
        self.fs, self.root = fsspec.core.url_to_fs(self.url)
        self.root = self.root.rstrip("/") or "/"

    def path(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def prepare(self) -> None:
        """Creates the folder and the marker folder; checks that a file can be written there.

        Raises:
            ibntrack.fileio.OutputError: the folder cannot be created or written (names ``--out``).
        """
        from ibntrack.fileio import OutputError

        probe = self.path(MARKER_DIR, f".probe.{os.getpid()}.{secrets.token_hex(4)}")
        try:
            self.fs.makedirs(self.path(MARKER_DIR), exist_ok=True)
            self.fs.pipe_file(probe, b"")
            self.fs.rm_file(probe)
        except OSError as exc:
            raise OutputError(f"--out {self.url}: cannot write there ({exc})") from None

    def finished(self, name: str, fp: str) -> bool:
        """Whether source ``name`` was finished by a run with fingerprint ``fp`` (see the module doc)."""
        try:
            marker = json.loads(self.fs.cat_file(self.path(MARKER_DIR, f"{name}.json")))
        except (OSError, ValueError):
            return False
        if not isinstance(marker, dict) or marker.get("fingerprint") != fp:
            return False
        return all(self.fs.exists(self.path(f)) for f in marker.get("files", []))

    def _put(self, local: Path, dest: str) -> None:
        """Copies ``local`` to ``dest`` under a temporary name, then renames it into place."""
        head, _, tail = dest.rpartition("/")
        tmp = f"{head}/.{tail}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        self.fs.put_file(os.fspath(local), tmp)
        try:
            self.fs.mv(tmp, dest)
        except BaseException:
            if self.fs.exists(tmp):
                self.fs.rm_file(tmp)
            raise

    def publish(self, name: str, files: Sequence[Path], marker: Mapping[str, Any]) -> None:
        """Publishes a source's files, then its done-marker (last: its presence means complete)."""
        self.fs.makedirs(self.path(MARKER_DIR), exist_ok=True)
        for f in files:
            self._put(Path(f), self.path(Path(f).name))
        staged = Path(files[0]).with_name(f".{name}.done.json")
        staged.write_text(json.dumps(dict(marker), indent=1, default=str) + "\n")
        self._put(staged, self.path(MARKER_DIR, f"{name}.json"))
