"""The ``ibntrack`` command line. The only package that reads ``sys.argv``.

Subcommands: ``demo``, ``synth``, ``train``, ``eval`` (:mod:`~ibntrack.cli.commands`), ``track``
(:mod:`~ibntrack.cli.track`), ``export`` (:mod:`~ibntrack.cli.export`), ``convert``
(``ibntrack.data.convert``) and ``tune`` (``ibntrack.tune``), which add their own parsers.
``ibntrack CMD --help`` explains each flag.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys

from ibntrack.cli.adapt import _add_adapt
from ibntrack.cli.commands import _add_demo, _add_eval, _add_synth, _add_train
from ibntrack.cli.engine_flags import add_engine_flags
from ibntrack.cli.export import _add_export
from ibntrack.cli.info import _add_info
from ibntrack.cli.track import _add_track

__all__ = ["main", "build_parser"]

log = logging.getLogger("ibntrack")


# ---------------------------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    """The ``ibntrack`` argument parser (all subcommands)."""
    from ibntrack.version import __version__

    parser = argparse.ArgumentParser(
        prog="ibntrack",
        description="One-shot multi-object tracking (detection + ReID in one network) with instance-batch "
        "normalization, built to keep its accuracy in scenes it was not trained on.",
    )
    parser.add_argument("--version", action="version", version=f"ibntrack {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in (_add_demo, _add_synth, _add_train, _add_track, _add_eval, _add_export, _add_adapt, _add_info):
        add(sub)
    from ibntrack.cli.tune import add_tune_parser
    from ibntrack.data.convert import add_convert_parser

    add_convert_parser(sub)
    add_tune_parser(sub)
    add_engine_flags(sub.choices["tune"], chunking=False)  # tune's network pass on Ray (issue 24)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``ibntrack`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    previous = _interrupt_on_sigterm()
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, NotADirectoryError, ImportError) as exc:
        if args.verbose:
            raise
        print(f"ibntrack {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except RecursionError:
        print(f"ibntrack {args.command}: error: input nested too deeply to process", file=sys.stderr)
        return 2
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _interrupt_on_sigterm():
    """SIGTERM raises KeyboardInterrupt like Ctrl-C, so commands finalise and clean up the same way.

    Returns the previous handler (``None`` when not in the main thread, where handlers cannot be set).
    """

    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        return signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        return None


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
