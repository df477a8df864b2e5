"""Training runs in worker processes, with one progress bar over the steps of all of them.

:func:`run_jobs` calls ``execute(values, job)`` for every job, longest first, either one
after the other in this process or in ``workers`` spawned processes. Several workers'
step bars would overwrite each other on one terminal line, so the workers train quietly
and report their steps into a queue (:func:`step_callbacks`), and this process draws one
bar over the steps of all jobs.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["run_jobs", "step_callbacks"]

# In a worker process: where to report training steps (set by the pool's initializer).
_STEP_QUEUE: Any = None


def _die_with_parent() -> None:
    """On Linux, have the kernel kill this worker when the process that started it dies.

    A worker whose parent was killed (``kill PID``, an out-of-memory kill) would otherwise
    train on for hours as an orphan, competing for the cores with whatever runs next.
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    pr_set_pdeathsig = 1  # from <sys/prctl.h>
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGKILL))


def _init_worker(queue: Any) -> None:
    from ._common import quiet_torch_notices

    global _STEP_QUEUE
    _die_with_parent()
    quiet_torch_notices()
    _STEP_QUEUE = queue
    if queue is not None:
        # Progress reports are expendable: a worker must never hang at exit waiting for the
        # parent to read them (it stops reading when another job fails).
        queue.cancel_join_thread()


def step_callbacks() -> list[Any]:
    """The Lightning callbacks a job adds to report its steps to the parent's bar (none
    outside a worker, or when the bar is hidden)."""
    if _STEP_QUEUE is None:
        return []
    from ..training import StepReporter

    return [StepReporter(_STEP_QUEUE.put)]


def run_jobs(
    execute: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]],
    values: dict[str, Any],
    jobs: Sequence[dict[str, Any]],
    *,
    workers: int,
    progress: bool,
    cost: Callable[[dict[str, Any]], float],
) -> list[dict[str, Any]]:
    """``[execute(values, job) for job in jobs]``, in ``workers`` processes.

    Args:
        execute: a module-level function (workers import it by name) of the run's plain
            config values and one job (a dict with at least ``steps``).
        values: the configuration as plain values; with several workers its ``engine``
            table gets ``progress: False``.
        jobs: the jobs, each a dict with ``steps``.
        workers: processes at once (``1``: in this process).
        progress: draw one bar over the steps of all jobs (several workers only; one
            worker shows the engine's own bar).
        cost: a job's relative cost; the longest jobs start first.

    Returns:
        The results in job order.
    """
    order = sorted(range(len(jobs)), key=lambda i: -cost(jobs[i]))
    results: dict[int, dict[str, Any]] = {}
    if workers == 1 or len(jobs) == 1:
        for i in order:
            results[i] = execute(values, jobs[i])
        return [results[i] for i in range(len(jobs))]

    import multiprocessing
    import queue as queues
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    from tqdm import tqdm

    quiet = {**values, "engine": {**values.get("engine", {}), "progress": False}}
    context = multiprocessing.get_context("spawn")
    steps = context.Queue() if progress else None
    with (
        ProcessPoolExecutor(
            workers, mp_context=context, initializer=_init_worker, initargs=(steps,)
        ) as pool,
        tqdm(
            total=sum(job["steps"] for job in jobs),
            desc=f"{len(jobs)} models in {workers} processes",
            unit="step",
            disable=not progress,
            file=sys.stdout,
            dynamic_ncols=True,
            smoothing=0.1,
        ) as bar,
    ):

        def drain(wait_s: float) -> None:
            """Move the queued step reports onto the bar (wait up to wait_s for each)."""
            while steps is not None and bar.n < bar.total:
                try:
                    bar.update(steps.get(timeout=wait_s) if wait_s else steps.get_nowait())
                except queues.Empty:
                    return

        pending = {pool.submit(execute, quiet, jobs[i]): i for i in order}
        while pending:
            done, _ = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            drain(0)
            for future in done:
                results[pending.pop(future)] = future.result()
                bar.set_postfix_str(f"{len(results)}/{len(jobs)} models done")
        drain(2)  # reports still in the pipe
    return [results[i] for i in range(len(jobs))]
