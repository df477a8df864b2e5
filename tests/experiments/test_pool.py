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


_ORPHAN = """
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor

from deepsets.experiments import _pool as pool_module


def job(_):
    return os.getpid()


if __name__ == "__main__":
    context = multiprocessing.get_context("spawn")
    init = pool_module._init_worker
    pool = ProcessPoolExecutor(1, mp_context=context, initializer=init, initargs=(None,))
    print(pool.submit(job, 0).result(), flush=True)
    pool.submit(time.sleep, 600)
    time.sleep(600)
"""


def _running(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (Linux ``/proc``)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal: Linux")
def test_workers_die_with_their_parent(tmp_path: Path) -> None:
    """Killing the command alone (not its process group) must not leave workers training."""
    import os
    import signal
    import time

    script = tmp_path / "orphan.py"
    script.write_text(_ORPHAN, encoding="utf-8")
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    worker = None
    try:
        assert parent.stdout is not None
        worker = int(parent.stdout.readline())
        assert _running(worker)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=30)
        deadline = time.monotonic() + 30
        while _running(worker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _running(worker), f"worker {worker} outlived its parent"
    finally:
        parent.kill()
        if worker is not None and _running(worker):
            os.kill(worker, signal.SIGKILL)  # the test failed: do not leave it running
