"""Batch tracking of many sources on one machine or a Ray cluster (``ibntrack track --engine ray``).

Not :mod:`ibntrack.training.distributed` (DDP training). :func:`track_many` plans the sources
(:mod:`~ibntrack.distributed.plan`), skips the finished ones (:mod:`~ibntrack.distributed.store`), runs one
:class:`~ibntrack.distributed.worker.SourceWorker` per worker (:mod:`~ibntrack.distributed.engines`) and
stitches chunked sources (:mod:`~ibntrack.distributed.stitch`). Ray is optional (``ibntrack[ray]``) and
imported only when ``engine="ray"``.
"""

from ibntrack.distributed.api import ENGINES, RunReport, SourceOutcome, track_many
from ibntrack.distributed.tune_pass import cache_sequences_many

__all__ = ["track_many", "RunReport", "SourceOutcome", "ENGINES", "cache_sequences_many"]
