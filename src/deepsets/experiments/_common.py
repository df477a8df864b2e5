"""What every experiment repeats besides its settings: seeding, torch threads, the run
directory, and the malloc restart of the command line.

* :func:`generator_for` / :func:`mix_seed`: counter-based seeding. Resuming training
  mid-stream, or drawing on another rank, must not depend on how many numbers were drawn
  before, so every batch gets its own generator seeded by a hash of
  ``(seed, stream, rank, step)``.
* :func:`torch_threads`: run a block with a given number of torch CPU threads.
* :class:`RunDirectory`: ``config.json``, ``metrics.json``, ``report.md``, ``figures/``,
  ``checkpoints/`` and ``logs/`` of one run, every file written atomically.
* :func:`restart_with_malloc_settings`: re-execute the command once with glibc malloc
  settings (see :data:`MALLOC_SETTINGS`).
* :func:`quiet_torch_notices`: hide a notice torch logs about its own code.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "MALLOC_SETTINGS",
    "RunDirectory",
    "generator_for",
    "machine_info",
    "mix_seed",
    "quiet_torch_notices",
    "restart_with_malloc_settings",
    "save_figure",
    "torch_threads",
]

_MASK_63 = (1 << 63) - 1

#: glibc malloc settings exported before the training process starts (bytes; the mmap
#: threshold must stay at or below glibc's 32 MiB maximum on 64-bit systems).
MALLOC_SETTINGS = {
    "MALLOC_MMAP_THRESHOLD_": str(16 * 1024 * 1024),
    "MALLOC_TRIM_THRESHOLD_": str(64 * 1024 * 1024),
}


def mix_seed(*parts: int) -> int:
    """A 63-bit seed from integers, well mixed (SHA-256), stable across runs and platforms."""
    text = ",".join(str(int(p)) for p in parts).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "little") & _MASK_63


def generator_for(*parts: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A fresh ``torch.Generator`` on ``device`` seeded by :func:`mix_seed` of ``parts``."""
    generator = torch.Generator(device=device)
    generator.manual_seed(mix_seed(*parts))
    return generator


def machine_info(*, workers: int, threads: int | None) -> dict[str, Any]:
    """Where a run ran, for its ``metrics.json``: platform, CPU count, worker processes,
    torch threads per process (``None``: torch's current number) and torch's version."""
    return {
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "workers": workers,
        "torch_threads": threads or torch.get_num_threads(),
        "torch": torch.__version__,
    }


def save_figure(plt: Any, figure: Any, directory: Path, stem: str, *, dpi: int = 110) -> str:
    """Lay out ``figure``, write ``directory/stem.png`` and ``.svg``, close it, and return
    the PNG's path relative to the run directory (``figures/stem.png``)."""
    figure.tight_layout()
    for suffix in ("png", "svg"):
        figure.savefig(directory / f"{stem}.{suffix}", dpi=dpi)
    plt.close(figure)
    return f"{directory.name}/{stem}.png"


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``threads`` torch CPU threads (``None``: leave torch's choice);
    the previous number is restored afterwards."""
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class RunDirectory:
    """The run directory of one experiment: where its files go, each written atomically
    (to a temporary file first, then renamed), so a crash never leaves half a file.

    Layout: ``config.json`` (the resolved settings: pass it back with ``--config`` to
    repeat the run), ``metrics.json``, ``report.md``, ``figures/``, and the engine's
    ``checkpoints/<run>/last.ckpt`` and ``logs/<run>/``.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    @classmethod
    def for_config(cls, config: Any) -> RunDirectory:
        """The run directory ``config.out``, with ``config.json`` written first (so even a
        crashed run says how it was started)."""
        run_dir = cls(config.out)
        run_dir.write_json("config.json", config.to_dict())
        return run_dir

    @property
    def figures(self) -> Path:
        """``figures/`` (not created until something is drawn)."""
        return self.path / "figures"

    def write_text(self, name: str, text: str) -> Path:
        """Write ``text`` to ``name`` inside the directory (created if needed)."""
        target = self.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, target)
        return target

    def write_json(self, name: str, data: Any) -> Path:
        """Write ``data`` as indented JSON to ``name``."""
        return self.write_text(name, json.dumps(data, indent=2) + "\n")

    def __repr__(self) -> str:
        return f"RunDirectory({str(self.path)!r})"


def restart_with_malloc_settings() -> None:
    """Re-exec this command once with :data:`MALLOC_SETTINGS` in the environment.

    On Linux with glibc, unless the variables are already set or
    ``DEEPSETS_MALLOC_TUNING=0``: glibc then stops returning the larger activation buffers
    of a training step to the system after every step (measurements in
    ``docs/study/power-spectrum.md``). The variables must be set before the process starts,
    hence the restart.
    """
    if os.environ.get("DEEPSETS_MALLOC_TUNING", "1") == "0":
        return
    if sys.platform != "linux" or platform.libc_ver()[0] != "glibc":
        return
    missing = {k: v for k, v in MALLOC_SETTINGS.items() if k not in os.environ}
    if not missing:
        return
    env = {**os.environ, **missing}
    os.execve(sys.executable, [sys.executable, "-m", "deepsets", *sys.argv[1:]], env)


def quiet_torch_notices() -> None:
    """Hide torch's ``is_fx_tracing will return true for both ...`` warning in this process.

    ``torch.nested.nested_tensor_from_jagged`` (torch 2.13) calls torch.fx's deprecated
    ``is_fx_tracing`` itself, so every process that packs a batch logged a warning about
    torch's own code, which the user can neither act on nor fix. The command line and its
    worker processes call this; the library leaves the user's logging alone.
    """
    logging.getLogger("torch.fx._symbolic_trace").setLevel(logging.ERROR)
