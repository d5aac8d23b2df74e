"""The evaluator pool: a local Ray instance by default, an existing cluster by address.

The pool is generic: it knows nothing of circuits. A factory builds one evaluator per
worker from a payload (SuperCircuit weights, validation data, calibration), which goes
to the object store once and is read by every worker once; each item then costs only
its own (small) pickle.
"""

from __future__ import annotations

import logging
import os
import traceback
from collections import deque
from collections.abc import Callable, Hashable, Iterator, Sequence
from typing import Any

import ray
from ray.exceptions import RayActorError, RayError

__all__ = ["EvaluatorPool"]


def _evaluate_safely(evaluator: Any, item: Any) -> dict:
    """Return the evaluator's result for `item`, or an error record if it raised."""
    try:
        return evaluator.evaluate(item)
    except Exception as error:
        return {"error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()}


class _Worker:
    """One Ray actor holding one evaluator, built once from the shared payload."""

    def __init__(self, factory: Callable[..., Any], payload: dict) -> None:
        import torch

        # Workers share the machine's cores; torch's own thread pool would oversubscribe them.
        torch.set_num_threads(1)
        self._evaluator = factory(**payload)

    def ready(self) -> bool:
        """Return True once the evaluator is built."""
        return True

    def evaluate(self, item: Any) -> dict:
        """Return the evaluator's result for `item`, or an error record if it raised."""
        return _evaluate_safely(self._evaluator, item)


def _connect_ray(workers: int, address: str | None) -> bool:
    """Return True if this call initialised Ray (so the caller must shut it down), False if reused."""
    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # "local" rather than None: with no address ray.init would join any cluster a
    # `ray start` left on this machine, which is not what an unconfigured run means.
    address = address or os.environ.get("RAY_ADDRESS") or "local"
    options: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
    if address == "local":
        options["num_cpus"] = max(workers, os.cpu_count() or 1)
        options["include_dashboard"] = False
    ray.init(address=address, **options)
    return True


class EvaluatorPool:
    """Evaluates items on a pool of workers, each holding one evaluator built once.

    `factory(**payload)` must build an object with a method `evaluate(item) -> dict`.
    With `workers=0` one evaluator is built in this process and no Ray is used. With
    `workers>=1` each worker is a Ray actor with one CPU, on a local Ray instance or on
    the cluster at `address` (or the `RAY_ADDRESS` environment variable); if Ray is
    already initialised in this process it is reused. The factory and its module must
    be importable on every node.

    An item whose evaluation raises yields `{"error": ..., "traceback": ...}`. An item
    whose worker dies is retried on a fresh worker up to `max_retries` times, then
    yields `{"error": "worker died: ..."}`. Either way the pool goes on.
    """

    def __init__(
        self,
        factory: Callable[..., Any],
        payload: dict,
        workers: int = 2,
        address: str | None = None,
        max_retries: int = 2,
    ) -> None:
        if workers < 0:
            raise ValueError(f"workers must be >= 0 (0 runs in-process), got {workers}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        self.workers = workers
        self.max_retries = max_retries
        self._local_evaluator: Any = None
        self._actors: list[Any] = []
        self._started_ray = False
        if workers == 0:
            self._local_evaluator = factory(**payload)
            return
        self._started_ray = _connect_ray(workers, address)
        try:
            self._factory = factory
            # One copy in the object store; restarted workers read the same copy.
            self._payload_ref = ray.put(payload)
            # Ray's own restarts are off: the pool replaces a dead worker itself, so it
            # knows which item was lost and can count that item's retries.
            self._actor_class = ray.remote(num_cpus=1, max_restarts=0, max_task_retries=0)(_Worker)
            self._actors = [self._start_worker() for _ in range(workers)]
            # Fail here, with the factory's own error, rather than on every item.
            ray.get([actor.ready.remote() for actor in self._actors])
        except RayActorError as error:
            self.close()
            raise RuntimeError(f"a worker could not build its evaluator with {factory!r}: {error}") from error
        except BaseException:
            self.close()
            raise

    def _start_worker(self) -> Any:
        """Return a new actor building its evaluator from the shared payload."""
        return self._actor_class.remote(self._factory, self._payload_ref)

    def evaluate(self, items: Sequence[tuple[Hashable, Any]]) -> Iterator[tuple[Hashable, dict]]:
        """Yield (key, result) for every (key, item), in the order results arrive.

        Items are handed out one per idle worker, so every worker stays busy while
        items remain. Each key is yielded exactly once, retries included. Stopping the
        iteration early discards the results of the items still running.
        """
        if self._local_evaluator is not None:
            for key, item in items:
                yield key, _evaluate_safely(self._local_evaluator, item)
            return
        if not self._actors:
            raise RuntimeError("the pool is closed")
        fresh = iter(items)
        retries: deque[tuple[Hashable, Any, int]] = deque()
        idle = list(range(len(self._actors)))
        running: dict[ray.ObjectRef, tuple[int, Hashable, Any, int]] = {}
        exhausted = False
        while True:
            while idle:
                if retries:
                    key, item, deaths = retries.popleft()
                elif not exhausted and (pair := next(fresh, None)) is not None:
                    (key, item), deaths = pair, 0
                else:
                    exhausted = True
                    break
                slot = idle.pop()
                running[self._actors[slot].evaluate.remote(item)] = (slot, key, item, deaths)
            if not running:
                return
            (ref,), _ = ray.wait(list(running), num_returns=1)
            slot, key, item, deaths = running.pop(ref)
            idle.append(slot)
            try:
                result = ray.get(ref)
            except RayActorError as death:
                self._replace_worker(slot)
                if deaths < self.max_retries:
                    retries.append((key, item, deaths + 1))
                    continue
                result = {"error": f"worker died: {death}"}
            except RayError as error:
                # E.g. a result that cannot be unpickled here: the item fails, the worker lives.
                result = {"error": f"{type(error).__name__}: {error}", "traceback": ""}
            yield key, result

    def _replace_worker(self, slot: int) -> None:
        """Replace the dead actor in `slot` with a fresh one."""
        ray.kill(self._actors[slot], no_restart=True)
        self._actors[slot] = self._start_worker()

    def close(self) -> None:
        """Kill the workers; shut Ray down only if this pool started it."""
        for actor in self._actors:
            ray.kill(actor, no_restart=True)
        self._actors = []
        self._local_evaluator = None
        if self._started_ray:
            ray.shutdown()
            self._started_ray = False

    def __enter__(self) -> EvaluatorPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
