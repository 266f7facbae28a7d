"""The network: ResNet(-IBN) backbone, upsampling neck, FairMOT heads, sparse IN control and folding."""

from ibntrack.nn.fold import fold_model
from ibntrack.nn.model import ARCHS, ModelConfig, TrackerNet, build_model, build_model_from_config
from ibntrack.nn.norm import IBN, StreamState
from ibntrack.nn.pretrained import PretrainedReport, load_pretrained
from ibntrack.nn.schedule import RefreshSchedule
from ibntrack.nn.sparse import (
    bind_schedule,
    force_refresh,
    get_stream_state,
    reset_stream,
    set_sparsity,
    set_stream_state,
    stream_schedule,
    stream_stats,
)

__all__ = [
    "ARCHS",
    "IBN",
    "ModelConfig",
    "PretrainedReport",
    "RefreshSchedule",
    "StreamState",
    "TrackerNet",
    "bind_schedule",
    "build_model",
    "build_model_from_config",
    "fold_model",
    "force_refresh",
    "get_stream_state",
    "load_pretrained",
    "reset_stream",
    "set_sparsity",
    "set_stream_state",
    "stream_schedule",
    "stream_stats",
]
