"""Atomic checkpoint writes and weights-only loads."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.testing import assert_close

from deepsets.training import AtomicCheckpointIO, load_checkpoint, save_checkpoint_atomic
from deepsets.training import checkpoint as checkpoint_module


class _Payload:
    """Unpickling this runs ``Path.touch(marker)``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


def _state(value: float) -> dict[str, Any]:
    return {"state_dict": {"w": torch.full((3, 2), value)}, "global_step": int(value), "n": "x"}


def test_round_trip(tmp_path: Path) -> None:
    path = save_checkpoint_atomic(_state(2.0), tmp_path / "deep" / "dir" / "a.ckpt")
    assert path == tmp_path / "deep" / "dir" / "a.ckpt"
    loaded = load_checkpoint(path)
    assert_close(loaded["state_dict"]["w"], torch.full((3, 2), 2.0))
    assert loaded["global_step"] == 2 and loaded["n"] == "x"
    assert [p.name for p in path.parent.iterdir()] == ["a.ckpt"]


def test_a_crash_mid_write_leaves_the_old_file_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = save_checkpoint_atomic(_state(1.0), tmp_path / "last.ckpt")
    before = path.read_bytes()

    def half_write(obj: Any, stream: Any) -> None:
        stream.write(b"PK\x03\x04 half a checkpoint")
        stream.flush()
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint_module.torch, "save", half_write)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint_atomic(_state(5.0), path)
    assert path.read_bytes() == before
    assert load_checkpoint(path)["global_step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no temp file left


def test_interrupt_during_rename_keeps_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = save_checkpoint_atomic(_state(1.0), tmp_path / "last.ckpt")

    def no_replace(src: Any, dst: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint_module.os, "replace", no_replace)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint_atomic(_state(7.0), path)
    assert load_checkpoint(path)["global_step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


def test_loading_refuses_pickled_objects_and_runs_no_code(tmp_path: Path) -> None:
    marker = tmp_path / "code-ran"
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "payload": _Payload(marker)}, path)
    with pytest.raises(pickle.UnpicklingError, match="refusing to load checkpoint"):
        load_checkpoint(path)
    with pytest.raises(pickle.UnpicklingError, match="refusing to load checkpoint"):
        # Lightning may ask for weights_only=False; the plugin loads safely anyway.
        AtomicCheckpointIO().load_checkpoint(path, weights_only=False)
    assert not marker.exists()
    torch.load(path, weights_only=False)  # the payload is real: an unsafe load runs it
    assert marker.exists()


def test_plugin_saves_atomically_and_loads(tmp_path: Path) -> None:
    io = AtomicCheckpointIO()
    io.save_checkpoint(_state(3.0), tmp_path / "c.ckpt")
    assert io.load_checkpoint(tmp_path / "c.ckpt", map_location="cpu")["global_step"] == 3
    with pytest.raises(TypeError, match="does not take storage_options; got dict"):
        io.save_checkpoint(_state(3.0), tmp_path / "d.ckpt", storage_options={})


def test_bad_contents(tmp_path: Path) -> None:
    torch.save([1, 2], tmp_path / "list.ckpt")
    with pytest.raises(ValueError, match="must hold a dict; got list"):
        load_checkpoint(tmp_path / "list.ckpt")
    with pytest.raises(TypeError, match="checkpoint must be a dict; got list"):
        save_checkpoint_atomic([1, 2], tmp_path / "x.ckpt")  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.ckpt")


@pytest.mark.filterwarnings("ignore:.*LeafSpec")
def test_lightning_resume_with_weights_only_false_still_loads_safely(tmp_path: Path) -> None:
    """Lightning's own ``fit(ckpt_path=…, weights_only=False)`` goes through the plugin."""
    from lightning.pytorch import Trainer

    from deepsets import DeepSetsInvariant
    from deepsets.training import SetModelModule, StreamDataModule

    def sample(step: int, rank: int, device: torch.device) -> tuple[torch.Tensor, ...]:
        x = torch.ones(2, 3, 1, device=device)
        return x, x.sum(1)

    def trainer(max_steps: int) -> Trainer:
        return Trainer(
            accelerator="cpu",
            devices=1,
            max_steps=max_steps,
            logger=False,
            enable_progress_bar=False,
            enable_checkpointing=False,
            enable_model_summary=False,
            plugins=[AtomicCheckpointIO()],
            default_root_dir=tmp_path,
        )

    module = SetModelModule(DeepSetsInvariant(1, [], [], 1), max_steps=4)
    first = trainer(2)
    first.fit(module, datamodule=StreamDataModule(sample, max_steps=2))
    path = tmp_path / "run.ckpt"
    first.save_checkpoint(path)
    assert load_checkpoint(path)["global_step"] == 2  # a genuine Lightning checkpoint
    marker = tmp_path / "code-ran"
    checkpoint = load_checkpoint(path)
    checkpoint["hyper_parameters"] = {"payload": _Payload(marker)}
    save_checkpoint_atomic(checkpoint, path)
    with pytest.raises(pickle.UnpicklingError, match="refusing to load checkpoint"):
        trainer(4).fit(
            module,
            datamodule=StreamDataModule(sample, max_steps=4),
            ckpt_path=path,
            weights_only=False,
        )
    assert not marker.exists()
