"""save_pretrained / from_pretrained: round trips, no pickle, clear errors on mismatch."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn

from deepsets import (
    DeepSetsConditional,
    DeepSetsEquivariant,
    DeepSetsInvariant,
    PermutationEquivariantLayer,
)
from deepsets.serialization import (
    CONFIG_NAME,
    FORMAT_VERSION,
    WEIGHTS_NAME,
    PretrainedMixin,
    load_pretrained,
)

pytest.importorskip("safetensors")

FACTORIES: dict[str, Callable[[], nn.Module]] = {
    "invariant": lambda: DeepSetsInvariant(3, [8, 8], [6], 2, pool_type="mean", dropout=0.1),
    "equivariant": lambda: DeepSetsEquivariant(3, [5], 2, pool_type="sum", final_pool="max"),
    "conditional-film": lambda: DeepSetsConditional(3, 4, [8], [6], 2, fusion_type="film"),
    "conditional-add": lambda: DeepSetsConditional(
        3, 4, [], [6], 2, fusion_type="add", context_in_rho=False
    ),
    "layer": lambda: PermutationEquivariantLayer(3, 4, pool_type="mean"),
}


def _inputs(model: nn.Module) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(4, 6, 3, generator=generator)
    mask = torch.rand(4, 6, generator=generator) > 0.3
    if isinstance(model, DeepSetsConditional):
        return (x, torch.randn(4, 4, generator=generator)), mask
    return (x,), mask


@pytest.mark.parametrize("kind", sorted(FACTORIES))
def test_round_trip_same_outputs(kind: str, tmp_path: Path) -> None:
    model = FACTORIES[kind]().eval()
    with torch.no_grad():  # perturb every tensor so defaults cannot pass by accident
        for parameter in model.parameters():
            parameter.add_(0.5)
    model.save_pretrained(tmp_path)

    loaded = type(model).from_pretrained(tmp_path)
    assert type(loaded) is type(model)
    assert not loaded.training
    assert loaded.config == model.config
    for (name, a), (_, b) in zip(
        model.state_dict().items(), loaded.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name
    args, mask = _inputs(model)
    torch.testing.assert_close(loaded(*args, mask=mask), model(*args, mask=mask))

    generic = load_pretrained(tmp_path)
    assert type(generic) is type(model)


def test_files_and_config_layout(tmp_path: Path) -> None:
    model = FACTORIES["equivariant"]()
    returned = model.save_pretrained(tmp_path / "nested" / "dir")
    assert returned == tmp_path / "nested" / "dir"
    assert sorted(p.name for p in returned.iterdir()) == sorted([CONFIG_NAME, WEIGHTS_NAME])
    document = json.loads((returned / CONFIG_NAME).read_text())
    import deepsets

    assert document == {
        "class": "DeepSetsEquivariant",
        "format_version": FORMAT_VERSION,
        "deepsets_version": deepsets.__version__,
        "config": model.config,
    }
    assert DeepSetsEquivariant(**document["config"]).config == model.config


def test_loading_never_unpickles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    FACTORIES["invariant"]().save_pretrained(tmp_path)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("from_pretrained must not unpickle")

    import pickle

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    assert isinstance(DeepSetsInvariant.from_pretrained(tmp_path), DeepSetsInvariant)
    # The weights file is a safetensors file: an 8-byte header length, then JSON.
    raw = (tmp_path / WEIGHTS_NAME).read_bytes()
    header = int.from_bytes(raw[:8], "little")
    assert json.loads(raw[8 : 8 + header])["__metadata__"]["class"] == "DeepSetsInvariant"


def test_dtype_is_kept(tmp_path: Path) -> None:
    model = FACTORIES["layer"]().double()
    model.save_pretrained(tmp_path)
    loaded = PermutationEquivariantLayer.from_pretrained(tmp_path)
    assert all(p.dtype == torch.float64 for p in loaded.parameters())
    assert all(p.requires_grad for p in loaded.parameters())


def test_wrong_class_is_named(tmp_path: Path) -> None:
    FACTORIES["invariant"]().save_pretrained(tmp_path)
    with pytest.raises(ValueError, match=r"'DeepSetsInvariant', not a 'DeepSetsEquivariant'"):
        DeepSetsEquivariant.from_pretrained(tmp_path)


def _edit_config(tmp_path: Path, edit: Callable[[dict[str, object]], None]) -> None:
    path = tmp_path / CONFIG_NAME
    document = json.loads(path.read_text())
    edit(document)
    path.write_text(json.dumps(document))


def test_newer_format_version_is_refused(tmp_path: Path) -> None:
    FACTORIES["invariant"]().save_pretrained(tmp_path)
    _edit_config(tmp_path, lambda d: d.update(format_version=FORMAT_VERSION + 1))
    with pytest.raises(ValueError, match="format_version"):
        DeepSetsInvariant.from_pretrained(tmp_path)


def test_unknown_class_is_refused(tmp_path: Path) -> None:
    FACTORIES["invariant"]().save_pretrained(tmp_path)
    _edit_config(tmp_path, lambda d: d.update({"class": "os.system"}))
    with pytest.raises(ValueError, match=r"'os\.system'.*known classes"):
        load_pretrained(tmp_path)


@pytest.mark.parametrize(
    ("change", "pattern"),
    [
        ({"unknown_argument": 1}, "unknown_argument"),
        ({"pool_type": "median"}, "pool_type"),
        ({"input_dim": -3}, "input_dim"),
    ],
)
def test_config_not_fitting_the_class(
    tmp_path: Path, change: dict[str, object], pattern: str
) -> None:
    FACTORIES["invariant"]().save_pretrained(tmp_path)
    _edit_config(tmp_path, lambda d: d["config"].update(change))  # type: ignore[union-attr]
    with pytest.raises(ValueError, match=f"does not fit DeepSetsInvariant.*{pattern}"):
        DeepSetsInvariant.from_pretrained(tmp_path)


def test_weights_not_fitting_the_config(tmp_path: Path) -> None:
    FACTORIES["invariant"]().save_pretrained(tmp_path)
    _edit_config(tmp_path, lambda d: d["config"].update(phi_hidden_dims=[8, 16]))  # type: ignore[union-attr]
    with pytest.raises(ValueError, match=r"do not match.*wrong shapes: phi\.3\.weight"):
        DeepSetsInvariant.from_pretrained(tmp_path)

    _edit_config(tmp_path, lambda d: d["config"].update(phi_hidden_dims=[8, 8, 8]))  # type: ignore[union-attr]
    with pytest.raises(ValueError, match=r"missing \['phi\.6\.bias', 'phi\.6\.weight'\]"):
        DeepSetsInvariant.from_pretrained(tmp_path)


@pytest.mark.parametrize("broken", ["no-dir", "no-config", "no-weights", "not-json", "no-fields"])
def test_broken_directories(tmp_path: Path, broken: str) -> None:
    FACTORIES["layer"]().save_pretrained(tmp_path)
    expected: type[Exception] = ValueError
    if broken == "no-dir":
        tmp_path = tmp_path / "absent"
        expected = FileNotFoundError
    elif broken == "no-config":
        (tmp_path / CONFIG_NAME).unlink()
        expected = FileNotFoundError
    elif broken == "no-weights":
        (tmp_path / WEIGHTS_NAME).unlink()
        expected = FileNotFoundError
    elif broken == "not-json":
        (tmp_path / CONFIG_NAME).write_text("{not json")
    else:
        (tmp_path / CONFIG_NAME).write_text("{}")
    with pytest.raises(expected, match=r"absent|config\.json|model\.safetensors"):
        PermutationEquivariantLayer.from_pretrained(tmp_path)


def test_any_module_with_a_config_dict(tmp_path: Path) -> None:
    class Scaled(nn.Module, PretrainedMixin):
        def __init__(self, width: int, scale: float = 1.0) -> None:
            super().__init__()
            self.config = {"width": width, "scale": scale}
            self.linear = nn.Linear(width, width)
            self.linear2 = self.linear  # tied: the same tensors under two names
            self.register_buffer("offset", torch.full((width,), scale))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.linear2(self.linear(x)) + self.offset

    model = Scaled(3, scale=2.0)
    model.save_pretrained(tmp_path)
    loaded = Scaled.from_pretrained(tmp_path)
    x = torch.randn(2, 3)
    torch.testing.assert_close(loaded(x), model(x))


def test_config_must_be_plain_json(tmp_path: Path) -> None:
    class Opaque(nn.Module, PretrainedMixin):
        def __init__(self, action: object) -> None:
            super().__init__()
            self.config = {"action": action}

    with pytest.raises(TypeError, match=r"Opaque\.config\['action'\].*not plain JSON"):
        Opaque(object()).save_pretrained(tmp_path)


def test_weights_file_that_is_not_safetensors(tmp_path: Path) -> None:
    FACTORIES["layer"]().save_pretrained(tmp_path)
    (tmp_path / WEIGHTS_NAME).write_bytes(b"\x80\x04not a safetensors file")  # a pickle opcode
    with pytest.raises(ValueError, match=r"model\.safetensors is not a readable safetensors"):
        PermutationEquivariantLayer.from_pretrained(tmp_path)


def test_weights_of_the_wrong_kind(tmp_path: Path) -> None:
    import safetensors.torch

    model = FACTORIES["layer"]()
    model.save_pretrained(tmp_path)
    integers = {k: v.round().long() for k, v in model.state_dict().items()}
    safetensors.torch.save_file(integers, str(tmp_path / WEIGHTS_NAME))
    with pytest.raises(ValueError, match=r"wrong dtypes: lambda_net\.weight: saved torch\.int64"):
        PermutationEquivariantLayer.from_pretrained(tmp_path)


@pytest.mark.parametrize("version", [0, -1, "1", 1.0, True, None])
def test_malformed_format_version(tmp_path: Path, version: object) -> None:
    FACTORIES["layer"]().save_pretrained(tmp_path)
    _edit_config(tmp_path, lambda d: d.update(format_version=version))
    with pytest.raises(ValueError, match=r"format_version must be a positive int"):
        PermutationEquivariantLayer.from_pretrained(tmp_path)


def test_wrong_class_message_points_to_a_loader_that_exists(tmp_path: Path) -> None:
    FACTORIES["layer"]().save_pretrained(tmp_path)
    with pytest.raises(ValueError) as caught:
        DeepSetsInvariant.from_pretrained(tmp_path)
    message = str(caught.value)
    assert "PermutationEquivariantLayer.from_pretrained" in message
    assert "deepsets.serialization.load_pretrained" in message
    assert isinstance(load_pretrained(tmp_path), PermutationEquivariantLayer)
