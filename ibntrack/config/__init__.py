"""Configuration trees (nested frozen dataclasses), loaded from YAML by one loader.

* :mod:`~ibntrack.config.training` — :class:`Config` (``ibntrack train``), :func:`load_config`,
  :func:`save_config`;
* :mod:`~ibntrack.config.inference` — :class:`InferenceConfig` (``track``, ``tune``, ``demo``,
  ``eval --weights``), :func:`load_inference_config`;
* :mod:`~ibntrack.config.loader` — the loader both use: unknown keys and wrong types are a ``ValueError``
  naming the file (or override) and the key.
"""

from ibntrack.config.inference import (
    DecodeConfig,
    InferenceConfig,
    StreamConfig,
    load_inference_config,
)
from ibntrack.config.loader import config_to_dict
from ibntrack.config.training import Config, DataConfig, TrainConfig, load_config, save_config

__all__ = [
    "Config",
    "DataConfig",
    "DecodeConfig",
    "InferenceConfig",
    "StreamConfig",
    "TrainConfig",
    "config_to_dict",
    "load_config",
    "load_inference_config",
    "save_config",
]
