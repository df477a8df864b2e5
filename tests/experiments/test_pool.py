"""Training runs in worker processes: a failing job must not hang the pool."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

_FAILING_POOL = """
import multiprocessing
from concurrent.futures import ProcessPoolExecutor

from deepsets.experiments import _pool as pool_module


def job(i):
    for _ in range(20_000):  # far more progress reports than a pipe holds unread
        pool_module._STEP_QUEUE.put(20)
    if i == 0:
        raise RuntimeError("job 0 failed")
    return i


if __name__ == "__main__":
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    try:
        with ProcessPoolExecutor(
            2, mp_context=context, initializer=pool_module._init_worker, initargs=(queue,)
        ) as pool:
            futures = [pool.submit(job, i) for i in range(3)]
            futures[0].result()
    except RuntimeError as error:
        print(error)
"""


@pytest.mark.slow
def test_a_failing_job_does_not_hang_the_workers_on_unread_progress(tmp_path: Path) -> None:
    """When a job fails the parent stops reading progress reports; workers must still exit
    (without cancel_join_thread they wait for the pipe forever and the pool never shuts down)."""
    script = tmp_path / "failing_pool.py"
    script.write_text(_FAILING_POOL, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=True
    )
    assert "job 0 failed" in done.stdout
