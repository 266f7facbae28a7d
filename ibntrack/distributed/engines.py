"""Where the workers run: in this process (``local``) or as Ray actors (``ray``).

Both engines take a list of calls ``(method name, arguments)`` of
:class:`~ibntrack.distributed.worker.SourceWorker` and yield ``(index, outcome)`` as calls finish, each
worker taking the next call when it is free.

Ray: one actor per worker (``num_cpus`` / ``num_gpus`` each), created with ``max_restarts=-1`` and
``max_task_retries=3``: when a worker process dies (killed, out of memory, its machine lost), Ray restarts
the actor — which rebuilds its tracker from the weights still held in the object store — and runs the
call again. A call whose retries are spent, or that raised an unexpected error, is a ``failed`` outcome;
the other calls go on.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any

from ibntrack.distributed.worker import SourceWorker, TrackOptions

__all__ = ["LocalEngine", "RayEngine", "require_ray", "check_engine_args", "RAY_INSTALL_HINT"]

log = logging.getLogger(__name__)

RAY_INSTALL_HINT = "pip install 'ibntrack[ray]'  (or: pip install 'ray>=2.9')"
MAX_RESTARTS = -1  # Ray restarts a worker that died, always (a lost node's actors move elsewhere) ...
MAX_TASK_RETRIES = 3  # ... and runs its call again this many times, so one source cannot loop forever


def require_ray() -> Any:
    """The ``ray`` module.

    Raises:
        ImportError: Ray is not installed; the message says how to install it.
    """
    try:
        import ray
    except ImportError:
        raise ImportError(f"--engine ray needs Ray, which is not installed: {RAY_INSTALL_HINT}") from None
    return ray


def check_engine_args(engine: str, workers: int | None, address: str | None, num_gpus: float) -> None:
    """Refuses Ray-only settings on the local engine.

    Raises:
        ValueError: ``--address``, ``--workers`` or ``--num-gpus`` given with ``--engine local``.
    """
    if engine != "local":
        return
    given = [f for f, v in (("--address", address), ("--workers", workers), ("--num-gpus", num_gpus)) if v]
    if given:
        raise ValueError(
            f"{', '.join(given)}: Ray flag(s); add --engine ray (the local engine is one process)"
        )


def _check_reachable(address: str | None, timeout: float = 5.0) -> None:
    """Fails fast on a ``HOST:PORT`` / ``ray://HOST:PORT`` nobody listens on (Ray itself retries for
    minutes). ``auto`` and ``None`` are Ray's to resolve.

    Raises:
        ValueError: naming ``--address``.
    """
    import socket

    if not address or address == "auto":
        return
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"--address {address}: expected auto, HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise ValueError(f"--address {address}: no Ray cluster answers there ({exc})") from None


def _failed(call: tuple[str, Sequence[Any]], error: str) -> dict[str, Any]:
    job = call[1][0] if call[1] else None
    name = getattr(job, "name", str(job))
    return {"name": name, "chunk": getattr(job, "chunk", None), "status": "failed", "error": error}


class LocalEngine:
    """Runs one :class:`SourceWorker` in this process (calls one after another)."""

    name = "local"

    def __init__(self, weights: dict[str, bytes], options: TrackOptions, out: str, **_: Any) -> None:
        self.worker = SourceWorker(weights, options, out)
        self.workers = 1

    def map(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> Iterator[tuple[int, dict[str, Any]]]:
        for i, (method, args) in enumerate(calls):
            yield i, getattr(self.worker, method)(*args)

    def close(self) -> None:
        self.worker.close()


class RayEngine:
    """``workers`` Ray actors, each a :class:`SourceWorker` holding the model once.

    Args:
        weights, options, out: as :class:`SourceWorker`; the weights are put into the object store once.
        workers: actors (default: the cluster's CPUs divided by ``num_cpus``, at least 1).
        address: the cluster (``"auto"``, ``"ray://host:10001"``, ``"host:6379"``); ``None`` connects to a
            running ``ray.init()`` of this process, else starts a local cluster.
        num_cpus, num_gpus: resources of each actor (torch threads = ``num_cpus`` unless ``options.threads``).
        fault: test hook of :class:`SourceWorker`.

    Raises:
        ImportError: Ray is not installed (with the install command).
        ValueError: the cluster has fewer CPUs/GPUs than ``workers`` actors need (names the flags).
    """

    name = "ray"

    def __init__(
        self,
        weights: dict[str, bytes],
        options: TrackOptions,
        out: str,
        workers: int | None = None,
        address: str | None = None,
        num_cpus: float = 1.0,
        num_gpus: float = 0.0,
        fault: tuple[str, str] | None = None,
    ) -> None:
        ray = require_ray()
        self._ray = ray
        self._owns = not ray.is_initialized()
        if self._owns:
            _check_reachable(address)
            try:
                ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING)
            except (ConnectionError, RuntimeError) as exc:  # no cluster at that address
                where = f"--address {address}" if address else "a local Ray cluster"
                raise ValueError(f"{where}: cannot start or join Ray: {exc}") from None
        total = ray.cluster_resources()
        cpus, gpus = float(total.get("CPU", 0)), float(total.get("GPU", 0))
        if workers is None:
            workers = max(1, int(cpus // max(num_cpus, 1e-9))) if num_cpus else 1
        need_cpu, need_gpu = workers * num_cpus, workers * num_gpus
        if need_cpu > cpus or need_gpu > gpus:
            self.close()
            raise ValueError(
                f"--workers {workers} x (--num-cpus {num_cpus:g}, --num-gpus {num_gpus:g}) needs "
                f"{need_cpu:g} CPUs and {need_gpu:g} GPUs; the Ray cluster has {cpus:g} CPUs, {gpus:g} GPUs"
            )
        if options.threads is None and num_cpus >= 1:
            from dataclasses import replace

            options = replace(options, threads=int(num_cpus))
        self.workers = workers
        actor = ray.remote(SourceWorker).options(
            num_cpus=num_cpus, num_gpus=num_gpus, max_restarts=MAX_RESTARTS, max_task_retries=MAX_TASK_RETRIES
        )
        # one copy in the object store, read by every actor and every restart (held until close; Ray logs
        # once that a restart needs it alive, which this reference ensures)
        self._blob = ray.put(weights)
        self._actors = [actor.remote(self._blob, options, out, fault) for _ in range(workers)]

    def map(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> Iterator[tuple[int, dict[str, Any]]]:
        ray = self._ray
        from ray.exceptions import RayActorError, RayTaskError

        idle = list(self._actors)
        queue = deque(enumerate(calls))
        pending: dict[Any, tuple[int, Any]] = {}
        while queue or pending:
            while idle and queue:
                a = idle.pop()
                i, (method, args) = queue.popleft()
                pending[getattr(a, method).remote(*args)] = (i, a)
            if not pending:  # every worker is dead
                for i, call in queue:
                    yield i, _failed(call, "no Ray worker left (all died)")
                return
            ready, _ = ray.wait(list(pending), num_returns=1)
            i, a = pending.pop(ready[0])
            try:
                outcome = ray.get(ready[0])
                idle.append(a)
            except RayActorError as exc:  # the worker died and its retries are spent
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                outcome = _failed(
                    calls[i], f"its Ray worker died (run {MAX_TASK_RETRIES + 1} times): {first}"
                )
            except RayTaskError as exc:
                idle.append(a)
                last = str(exc).strip().splitlines()[-1]
                outcome = _failed(calls[i], f"unexpected error in the worker: {last}")
            yield i, outcome

    def close(self) -> None:
        """Lets idle actors remove their temporary folders (5 s at most: a busy one, after Ctrl-C, is
        not waited for — the next worker on that machine removes it), then ends them."""
        ray = self._ray
        actors = getattr(self, "_actors", [])
        if actors:
            refs = [a.close.remote() for a in actors]
            ray.wait(refs, num_returns=len(refs), timeout=5)
        for a in actors:
            try:
                ray.kill(a)
            except Exception:  # already dead
                pass
        if self._owns:
            self._ray.shutdown()
