"""Image and network-input sizes: the one ``W×H`` parser and the one "multiple of 32" check.

Sizes written by people (flags, arguments) are always ``WIDTHxHEIGHT`` (``640x360``; ``×`` and ``X`` are
accepted too); sizes inside the package are tuples whose order the name says (``input_size`` is
``(H, W)`` as in tensors, ``size`` of a frame ``(W, H)`` as OpenCV).
"""

from __future__ import annotations

__all__ = ["INPUT_MULTIPLE", "check_input_size", "check_multiple", "parse_size"]

INPUT_MULTIPLE = 32
"""Network input height and width must be multiples of the backbone's coarsest stride."""


def parse_size(text: str, multiple: int = 1) -> tuple[int, int]:
    """``"640x360"`` → ``(640, 360)``: width then height, both positive (and multiples of ``multiple``).

    Raises:
        ValueError: not two positive integers joined by ``x``, or not multiples of ``multiple``.
    """
    parts = str(text).strip().lower().replace("×", "x").split("x")
    try:
        w, h = (int(v) for v in parts)
    except ValueError:
        raise ValueError(f"expected WIDTHxHEIGHT such as 640x360, got {text!r}") from None
    if w <= 0 or h <= 0:
        raise ValueError(f"width and height must be positive, got {text!r}")
    if w % multiple or h % multiple:
        raise ValueError(f"width and height must be multiples of {multiple}, got {text!r}")
    return w, h


def check_multiple(height: int, width: int, what: str = "images") -> None:
    """Raise unless ``height`` and ``width`` are multiples of :data:`INPUT_MULTIPLE`.

    Raises:
        ValueError: ``"{what} height and width must be multiples of 32, got H=…, W=…"``.
    """
    if height % INPUT_MULTIPLE or width % INPUT_MULTIPLE:
        raise ValueError(
            f"{what} height and width must be multiples of {INPUT_MULTIPLE}, got H={height}, W={width}"
        )


def check_input_size(input_size: object, what: str = "input_size") -> tuple[int, int]:
    """A network input size ``(H, W)`` as two positive ints, multiples of :data:`INPUT_MULTIPLE`.

    Raises:
        ValueError: naming ``what``: not a pair of ints, not positive, or not multiples of 32.
    """
    try:
        h, w = (int(v) for v in input_size)  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be (H, W), got {input_size!r}") from None
    if h <= 0 or w <= 0 or h % INPUT_MULTIPLE or w % INPUT_MULTIPLE:
        raise ValueError(
            f"{what} must be positive multiples of {INPUT_MULTIPLE} (H, W), got {(h, w)}"
        )
    return h, w
