"""``argparse`` value types shared by the subcommands (``cli.py``, ``data/convert.py``, ``tune.py``).

Each turns a flag's text into a value or raises ``argparse.ArgumentTypeError`` naming what is allowed.
"""

from __future__ import annotations

import argparse

from ibntrack.sizes import INPUT_MULTIPLE, parse_size

__all__ = ["input_size_wh", "non_negative_int", "positive_int", "size_wh", "unit_float"]


def size_wh(text: str) -> tuple[int, int]:
    """``WxH`` (e.g. ``640x360``) → ``(W, H)``."""
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def input_size_wh(text: str) -> tuple[int, int]:
    """A network input ``WxH`` (multiples of 32, e.g. ``1088x608``) → ``(H, W)`` as the network takes it."""
    try:
        w, h = parse_size(text, multiple=INPUT_MULTIPLE)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return h, w


def _int_at_least(text: str, low: int, what: str) -> int:
    try:
        v = int(text)
    except ValueError:
        v = low - 1
    if v < low:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    return v


def positive_int(text: str) -> int:
    return _int_at_least(text, 1, "a positive integer")


def non_negative_int(text: str) -> int:
    return _int_at_least(text, 0, "an integer >= 0")


def unit_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}") from None
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}")
    return v
