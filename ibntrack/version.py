"""The package version (one place; ``ibntrack.__version__`` and the export metadata read it)."""

__version__ = "0.1.0"
