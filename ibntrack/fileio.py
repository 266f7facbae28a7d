"""Atomic writes: a result, checkpoint or config file is either complete or absent, never half-written.

Temporary files live beside their destination and carry the writing process's id in their name
(``.<name>.<pid>.<random>.tmp``, see :func:`temp_path`), so a later run can tell the leftovers of a
killed process (``kill -9``) from the files of a live one and remove them (:func:`remove_stale_temps`,
called by every atomic write). :func:`check_writable_dir` / :func:`check_writable_file` let a command
refuse an unusable output location *before* it starts work.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = [
    "OutputError",
    "YAMLInputError",
    "atomic_open",
    "atomic_write_text",
    "atomic_write_bytes",
    "check_writable_dir",
    "check_writable_file",
    "load_yaml",
    "remove_stale_temps",
    "temp_path",
]


class OutputError(ValueError):
    """An output location that cannot be written: names the path, the option it came from and why."""


def temp_path(path: str | os.PathLike, suffix: str = ".tmp") -> Path:
    """A fresh temporary name beside ``path``: ``.<name>.<pid>.<random><suffix>`` (not created)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}{suffix}")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # another user's live process, or not ours to judge: keep its file
    return True


def remove_stale_temps(path: str | os.PathLike) -> list[Path]:
    """Deletes the temporary files of ``path`` (see :func:`temp_path`) left by processes that no longer run.

    Returns:
        The removed paths. Files of live processes (a concurrent writer) are kept.
    """
    path = Path(path)
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.(\d+)\.[0-9a-f]+\.")
    removed: list[Path] = []
    try:
        candidates = list(path.parent.iterdir())
    except OSError:
        return removed
    for cand in candidates:
        m = pattern.match(cand.name)
        if m and not _pid_alive(int(m.group(1))):
            with contextlib.suppress(OSError):
                cand.unlink()
                removed.append(cand)
    return removed


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", fsync: bool = True) -> Iterator[IO]:
    """Opens a temporary file beside ``path``; on a clean exit it is flushed, fsynced and renamed over
    ``path`` (``os.replace``), on an exception it is deleted.

    Args:
        path: the destination (its folder is created).
        mode: ``"w"`` (text, UTF-8, ``\\n`` line ends) or ``"wb"``.
        fsync: also fsync the file and its folder (durability across a power cut).
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    tmp = temp_path(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies
    try:
        kwargs: dict[str, Any] = {"encoding": "utf-8", "newline": "\n"} if mode == "w" else {}
        with os.fdopen(fd, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if fsync:
        with contextlib.suppress(OSError):
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Writes ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    with atomic_open(path, "w") as fh:
        fh.write(text)
    return Path(path)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Writes ``data`` to ``path`` atomically; returns the path."""
    with atomic_open(path, "wb") as fh:
        fh.write(data)
    return Path(path)


def check_writable_dir(path: str | os.PathLike, what: str) -> Path:
    """Makes sure ``path`` is (or can be made) a folder this process can write into.

    Creates the folder, then creates and deletes a probe file in it.

    Args:
        path: the output folder.
        what: where the path came from, for the message (``"--out"``, ``"train.out_dir"``).

    Raises:
        OutputError: the path (or a parent) is a file, or the folder is not writable.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{what}: {path} is a file, not a folder; give a folder for the outputs")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = temp_path(path / "write-check")
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        os.unlink(probe)
    except FileExistsError as exc:
        raise OutputError(f"{what}: cannot create the folder {path}: a parent is a file ({exc})") from None
    except NotADirectoryError as exc:
        raise OutputError(f"{what}: cannot create the folder {path}: a parent is a file ({exc})") from None
    except OSError as exc:
        raise OutputError(f"{what}: the folder {path} is not writable ({exc.strerror or exc})") from None
    return path


def check_writable_file(path: str | os.PathLike, what: str) -> Path:
    """Makes sure ``path`` can be written as a file: not a folder, and its folder writable (an atomic
    write replaces the file by a rename, so the folder's permission is what counts).

    Raises:
        OutputError: ``path`` is a folder, or its folder cannot be created or written.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{what}: {path} is a folder; the output must be a file path")
    check_writable_dir(path.parent, what)
    remove_stale_temps(path)  # leftovers of a killed earlier run
    return path


class YAMLInputError(ValueError):
    """YAML text that cannot be read: names where it came from and what is wrong."""


def load_yaml(text: str, where: str):
    """``yaml.safe_load`` with every failure as a :class:`YAMLInputError` naming ``where``.

    Besides malformed YAML this covers input nested too deeply for the parser (a ``RecursionError``
    inside PyYAML) and text that is not valid UTF-8 once decoded by the caller.
    """
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise YAMLInputError(f"{where}: not valid YAML: {exc}") from None
    except RecursionError:
        raise YAMLInputError(f"{where}: nested too deeply to be a config (YAML depth over ~900)") from None
