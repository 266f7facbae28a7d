"""The config loader every config tree shares: YAML mapping → nested frozen dataclasses, with dotted
overrides; every key checked against the dataclass fields, every value against its annotation.

:func:`build_config` is the one entry (``load_config`` for training, ``load_inference_config`` for
tracking); :func:`config_to_dict` and :func:`dump_config` go back to plain YAML.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml

from ibntrack.fileio import load_yaml

__all__ = ["build_config", "config_to_dict", "dump_config", "read_mapping"]


def read_mapping(path: str | Path, what: str = "config file") -> dict[str, Any]:
    """The mapping a YAML file holds (``{}`` for an empty file).

    Raises:
        FileNotFoundError: ``path`` does not exist. ValueError: not UTF-8, malformed YAML, or not a mapping
            (each message names the file).
    """
    source = str(path)
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{what} {source} does not exist")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{what} {source} is not a UTF-8 text file ({exc})") from None
    loaded = load_yaml(text, f"{what} {source}")
    if loaded is None:
        loaded = {}
    if not isinstance(loaded, dict):
        raise ValueError(f"{what} {source} must hold a mapping of sections, got {type(loaded).__name__}")
    return loaded


def build_config(root: type, raw: dict[str, Any], source: str, overrides: Sequence[str] = ()) -> Any:
    """``root`` (a frozen dataclass tree) from the raw mapping ``raw`` read from ``source``, after the
    ``"section.key=value"`` ``overrides`` (values parsed with ``yaml.safe_load``).

    Raises:
        ValueError: an unknown key (naming ``source`` or the override, the key and the allowed keys), a value
            of the wrong type, or an invalid combination of values.
    """
    try:
        _check_keys(root, raw, source, "")
        given: dict[str, str] = {}  # dotted key -> the override that set it
        for text in overrides:
            given[_apply_override(root, raw, text)] = text
        try:
            return _build(root, raw, source, "")
        except ValueError as exc:
            raise _blame_override(exc, source, given) from None
    except RecursionError:
        raise ValueError(f"config {source}: nested too deeply to be a config") from None


def dump_config(cfg: Any) -> str:
    """``cfg`` as YAML text (block mappings, one-line lists)."""
    return yaml.dump(config_to_dict(cfg), Dumper=_Dumper, sort_keys=False, default_flow_style=False)


def config_to_dict(cfg: Any) -> Any:
    """A dataclass tree as plain YAML/JSON values (dicts, lists, str, int, float, bool, None)."""
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        return {f.name: config_to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, Mapping):
        return {k: config_to_dict(v) for k, v in cfg.items()}
    if isinstance(cfg, (list, tuple)):
        return [config_to_dict(v) for v in cfg]
    if isinstance(cfg, Path):
        return str(cfg)
    return cfg


def _blame_override(exc: ValueError, source: str, given: Mapping[str, str]) -> ValueError:
    """An error about a key that an override set names that override, not the file."""
    message = str(exc)
    for key, text in given.items():
        section, _, name = key.rpartition(".")
        bare = (
            bool(section)
            and f"invalid {section}:" in message
            and re.search(rf"\b{re.escape(name)}\b", message)
        )
        if key in message or bare:
            rest = message[len(source) + 2 :] if message.startswith(f"{source}: ") else message
            where = f"override {text!r}" + (f" (on top of {source})" if source != "<defaults>" else "")
            return ValueError(f"{where}: {rest}")
    return exc


# ---------------------------------------------------------------------------------------------- helpers


class _Dumper(yaml.SafeDumper):
    """Safe YAML with block mappings and one-line lists (``input_size: [608, 1088]``)."""


_Dumper.add_representer(
    list, lambda dumper, data: dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True)
)


def _hints(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init}


def _is_section(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _check_keys(cls: type, raw: Mapping[str, Any], source: str, prefix: str) -> None:
    """Reject unknown keys anywhere in a raw mapping for ``cls`` (nested sections included)."""
    hints = _hints(cls)
    for key, value in raw.items():
        dotted = f"{prefix}{key}"
        if key not in hints:
            raise ValueError(
                f"{source}: unknown key {dotted!r}; allowed keys{_where(prefix)}: {', '.join(hints)}"
            )
        if _is_section(hints[key]) and isinstance(value, Mapping):
            _check_keys(hints[key], value, source, f"{dotted}.")


def _where(prefix: str) -> str:
    return f" in section {prefix[:-1]!r}" if prefix else ""


def _apply_override(root: type, raw: dict[str, Any], text: str) -> str:
    """Sets one ``section.key=value`` override in ``raw``; returns the dotted key."""
    key, sep, value_text = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ValueError(f"override {text!r} must look like section.key=value (e.g. train.lr=1e-3)")
    value = load_yaml(value_text, f"override {text!r}: value") if value_text.strip() else None
    parts = key.split(".")
    cls: type = root
    node = raw
    for i, part in enumerate(parts):
        hints = _hints(cls)
        prefix = ".".join(parts[:i])
        if part not in hints:
            raise ValueError(
                f"override {text!r}: unknown key {'.'.join(parts[: i + 1])!r}; allowed keys"
                f"{_where(prefix + '.' if prefix else '')}: {', '.join(hints)}"
            )
        tp = hints[part]
        if i == len(parts) - 1:
            if _is_section(tp) and isinstance(value, Mapping):
                _check_keys(tp, value, f"override {text!r}", f"{key}.")
            else:  # type errors name the override, not the file
                _coerce(value, tp, key, f"override {text!r}")
            node[part] = value
            return key
        if not _is_section(tp):
            raise ValueError(f"override {text!r}: {'.'.join(parts[: i + 1])!r} is a value, not a section")
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node, cls = child, tp
    raise ValueError(f"override {text!r} names no key")  # unreachable: the last part returns above


def _build(cls: type, raw: Mapping[str, Any], source: str, prefix: str) -> Any:
    hints = _hints(cls)
    kwargs = {}
    for key, value in raw.items():
        if key not in hints:  # already checked; kept for direct callers
            raise ValueError(f"{source}: unknown key {prefix}{key!r}; allowed: {', '.join(hints)}")
        kwargs[key] = _coerce(value, hints[key], f"{prefix}{key}", source)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{source}: invalid {prefix[:-1] or 'config'}: {exc}") from exc


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str, source: str) -> Any:
    """Check ``value`` against the annotation ``tp``; convert lists to tuples and numbers to float."""

    def fail() -> typing.NoReturn:
        raise ValueError(f"{source}: {key} must be {_type_name(tp)}, got {value!r} ({type(value).__name__})")

    if tp is Any:
        return value
    if _is_section(tp):
        if not isinstance(value, Mapping):
            fail()
        return _build(tp, value, source, f"{key}.")
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            if type(None) in args:
                return None
            fail()
        arms = [a for a in args if a is not type(None)]
        if isinstance(value, Mapping) and any(_is_section(a) for a in arms):  # name the bad key inside
            return _coerce(value, next(a for a in arms if _is_section(a)), key, source)
        for arm in arms:
            try:
                return _coerce(value, arm, key, source)
            except ValueError:
                continue
        fail()
    if origin is Literal:
        if value not in args:
            raise ValueError(f"{source}: {key} must be one of {list(args)}, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            fail()
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            fail()
        return value
    if tp is float:
        if isinstance(value, bool):
            fail()
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" as a string
            try:
                value = float(value)
            except ValueError:
                fail()
        if not isinstance(value, (int, float)):
            fail()
        if not math.isfinite(value):
            raise ValueError(f"{source}: {key} must be a finite number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            fail()
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            fail()
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            items = [_coerce(v, args[0], f"{key}[{i}]", source) for i, v in enumerate(value)]
        elif origin is tuple and args:
            if len(value) != len(args):
                raise ValueError(f"{source}: {key} must have {len(args)} items, got {value!r}")
            items = [
                _coerce(v, a, f"{key}[{i}]", source) for i, (v, a) in enumerate(zip(value, args, strict=True))
            ]
        else:
            arg = args[0] if args else Any
            items = [_coerce(v, arg, f"{key}[{i}]", source) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, Mapping):
            fail()
        kt, vt = args if args else (Any, Any)
        return {
            _coerce(k, kt, f"{key} key", source): _coerce(v, vt, f"{key}[{k!r}]", source)
            for k, v in value.items()
        }
    if isinstance(tp, type):
        if not isinstance(value, tp):
            fail()
        return value
    return value
