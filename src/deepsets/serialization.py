"""Saving and loading models as a directory: ``config.json`` + ``model.safetensors``.

A saved model is two files in one local directory:

* ``config.json`` — ``{"class": ..., "format_version": 1, "deepsets_version": ...,
  "config": {...}}``, where ``config`` holds the constructor arguments (the model's
  ``config`` attribute) as plain JSON;
* ``model.safetensors`` — the ``state_dict``, in the `safetensors
  <https://huggingface.co/docs/safetensors>`_ format.

Loading rebuilds the model from its constructor arguments and reads the tensors back;
nothing is unpickled, so a saved model cannot run code on the machine that loads it.
Every check fails with a ``ValueError`` naming what does not match: another class, a newer
format, constructor arguments the class does not take, weights whose names or shapes do not
fit the configuration.

Any ``nn.Module`` whose constructor arguments live in a JSON-serialisable ``config`` dict
can inherit :class:`PretrainedMixin`. The weights need the ``safetensors`` package (the
``io`` extra: ``pip install "deepsets[io]"``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar, cast

import torch
from torch import Tensor, nn

__all__ = [
    "CONFIG_NAME",
    "FORMAT_VERSION",
    "WEIGHTS_NAME",
    "PretrainedMixin",
    "load_pretrained",
    "module_from_config",
]

#: The layout version written to ``config.json``; loading refuses newer ones.
FORMAT_VERSION = 1
#: File names inside a saved directory.
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"

M = TypeVar("M", bound="PretrainedMixin")

_REGISTRY: dict[str, type[PretrainedMixin]] = {}


def _safetensors_torch() -> Any:
    try:
        import safetensors.torch
    except ImportError as error:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            "save_pretrained / from_pretrained store weights with the 'safetensors' package; "
            'install it with: pip install "deepsets[io]"'
        ) from error
    return safetensors.torch


def _deepsets_version() -> str:
    from . import __version__

    return __version__


def _json_config(config: object, cls_name: str) -> dict[str, Any]:
    if not isinstance(config, dict):
        raise TypeError(
            f"{cls_name}.config must be a dict of constructor arguments to be saved; "
            f"got {type(config).__name__}"
        )
    for key, value in config.items():
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as error:
            raise TypeError(
                f"{cls_name}.config[{key!r}] = {value!r} is not plain JSON, so {cls_name} "
                f"cannot be saved with save_pretrained ({error})"
            ) from error
    return dict(config)


def _distinct_storage(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Contiguous, detached tensors; ones sharing storage with an earlier one are copied
    (safetensors refuses aliased tensors, e.g. tied weights)."""
    seen: set[tuple[str, int]] = set()
    tensors: dict[str, Tensor] = {}
    for key, value in state.items():
        tensor = value.detach().contiguous()
        storage = (str(tensor.device), tensor.untyped_storage().data_ptr())
        if storage in seen:
            tensor = tensor.clone()
        seen.add(storage)
        tensors[key] = tensor
    return tensors


def _read_config(directory: Path) -> dict[str, Any]:
    if not directory.is_dir():
        raise FileNotFoundError(
            f"directory {str(directory)!r} does not exist or is not a directory "
            f"(from_pretrained reads a local directory written by save_pretrained)"
        )
    path = directory / CONFIG_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{str(directory)!r} has no {CONFIG_NAME}; was it saved?")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from error
    if not isinstance(document, dict):
        raise ValueError(f"{path} must hold a JSON object; got {type(document).__name__}")
    missing = [k for k in ("class", "format_version", "config") if k not in document]
    if missing:
        raise ValueError(f"{path} lacks the field(s) {missing}; it was not written by deepsets")
    version = document["format_version"]
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"{path}: format_version must be a positive int; got {version!r}")
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{path} has format_version {version} (written by deepsets "
            f"{document.get('deepsets_version', '?')}), but this deepsets "
            f"({_deepsets_version()}) reads format_version <= {FORMAT_VERSION}; upgrade deepsets"
        )
    if not isinstance(document["config"], dict):
        raise ValueError(f"{path}: config must be a JSON object of constructor arguments")
    return document


class PretrainedMixin:
    """``save_pretrained`` / ``from_pretrained`` for an ``nn.Module`` with a ``config`` dict.

    The class must be constructible as ``cls(**config)``. Subclasses are registered by
    class name, so :func:`load_pretrained` (or ``PretrainedMixin.from_pretrained``) can
    rebuild a saved model without knowing its class in advance.

    Example:
        >>> import tempfile
        >>> from deepsets import DeepSetsInvariant
        >>> model = DeepSetsInvariant(3, [8], [8], 1)
        >>> with tempfile.TemporaryDirectory() as directory:
        ...     _ = model.save_pretrained(directory)
        ...     again = DeepSetsInvariant.from_pretrained(directory)
        >>> again.config == model.config
        True
    """

    config: dict[str, Any]
    #: The name written to and checked in ``config.json``'s ``class`` field.
    _pretrained_name: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._pretrained_name = cls.__name__
        _REGISTRY.setdefault(cls.__name__, cls)

    def save_pretrained(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``config.json`` and ``model.safetensors`` into ``directory`` (created if needed).

        Returns:
            The directory, as a :class:`~pathlib.Path`.

        Raises:
            TypeError: if the model's ``config`` is not plain JSON.
        """
        if not isinstance(self, nn.Module):
            raise TypeError(f"{type(self).__name__} must be an nn.Module to be saved")
        name = type(self).__name__
        config = _json_config(getattr(self, "config", None), name)
        safetensors_torch = _safetensors_torch()
        target = Path(directory)
        target.mkdir(parents=True, exist_ok=True)
        document = {
            "class": name,
            "format_version": FORMAT_VERSION,
            "deepsets_version": _deepsets_version(),
            "config": config,
        }
        (target / CONFIG_NAME).write_text(
            json.dumps(document, indent=2, sort_keys=False) + "\n", encoding="utf-8"
        )
        tensors = _distinct_storage(self.state_dict())
        safetensors_torch.save_file(
            tensors, str(target / WEIGHTS_NAME), metadata={"format": "pt", "class": name}
        )
        return target

    @classmethod
    def from_pretrained(
        cls: type[M],
        directory: str | os.PathLike[str],
        *,
        map_location: str | torch.device = "cpu",
    ) -> M:
        """Rebuild a model saved by :meth:`save_pretrained`, in ``eval()`` mode.

        Called on :class:`PretrainedMixin` itself, it builds whichever registered class
        ``config.json`` names. The weights keep their saved dtype and are placed on
        ``map_location``.

        Raises:
            FileNotFoundError: ``directory`` or one of its two files is missing.
            ValueError: ``config.json`` names another class, a newer ``format_version``,
                or arguments the class does not take; the weights file is not safetensors;
                or the weights' names, shapes or kinds (floating or not) do not match the
                model the configuration builds.
        """
        source = Path(directory)
        document = _read_config(source)
        saved_name = document["class"]
        if cls is PretrainedMixin:
            if saved_name not in _REGISTRY:
                known = ", ".join(sorted(_REGISTRY))
                raise ValueError(
                    f"{source / CONFIG_NAME} names class {saved_name!r}, which deepsets does "
                    f"not know; known classes: {known}"
                )
            target_cls: type[PretrainedMixin] = _REGISTRY[saved_name]
        elif saved_name != cls._pretrained_name:
            raise ValueError(
                f"{source / CONFIG_NAME} describes a {saved_name!r}, not a "
                f"{cls._pretrained_name!r}; load it with {saved_name}.from_pretrained "
                f"or deepsets.serialization.load_pretrained"
            )
        else:
            target_cls = cls
        weights_path = source / WEIGHTS_NAME
        if not weights_path.is_file():
            raise FileNotFoundError(f"{str(source)!r} has no {WEIGHTS_NAME}; was it saved?")

        try:
            model = target_cls(**document["config"])
        except (TypeError, ValueError) as error:
            raise ValueError(
                f"the config in {source / CONFIG_NAME} does not fit {saved_name}: {error}"
            ) from error
        if not isinstance(model, nn.Module):
            raise TypeError(f"{saved_name} must be an nn.Module to be loaded")

        safetensors_torch = _safetensors_torch()
        try:
            tensors = safetensors_torch.load_file(str(weights_path), device=str(map_location))
        except Exception as error:  # safetensors raises its own SafetensorError type
            raise ValueError(
                f"{weights_path} is not a readable safetensors file ({error}); "
                f"save the model again with save_pretrained"
            ) from error
        _check_weights(model, tensors, weights_path)
        model.load_state_dict(tensors, strict=True, assign=True)
        model.eval()
        return model  # type: ignore[return-value]


def _check_weights(model: nn.Module, tensors: Mapping[str, Tensor], path: Path) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong_shape = [
        f"{key}: saved {tuple(tensors[key].shape)}, config builds {tuple(value.shape)}"
        for key, value in expected.items()
        if key in tensors and tensors[key].shape != value.shape
    ]
    wrong_kind = [
        f"{key}: saved {tensors[key].dtype}, config builds {value.dtype}"
        for key, value in expected.items()
        if key in tensors and tensors[key].is_floating_point() != value.is_floating_point()
    ]
    problems = []
    if missing:
        problems.append(f"missing {missing}")
    if unexpected:
        problems.append(f"unexpected {unexpected}")
    if wrong_shape:
        problems.append("wrong shapes: " + "; ".join(wrong_shape))
    if wrong_kind:
        problems.append("wrong dtypes: " + "; ".join(wrong_kind))
    if problems:
        raise ValueError(
            f"the weights in {path} do not match the model its config builds "
            f"({type(model).__name__}): " + ", ".join(problems)
        )


def module_from_config(document: Mapping[str, Any], *, name: str) -> nn.Module:
    """Rebuild a registered module from ``{"class": ..., "config": {...}}``, the form a
    module given as a constructor argument is saved in (e.g. an attention pooling as a
    model's ``pool_type``); ``name`` is that argument's name, for the errors. The class
    comes from the registry of :class:`PretrainedMixin` subclasses, never imported by name.

    Raises:
        ValueError: the document lacks ``class`` or ``config``, names a class deepsets does
            not know, or holds arguments the class does not take.
    """
    if set(document) != {"class", "config"} or not isinstance(document["config"], Mapping):
        raise ValueError(
            f"{name} as a dict must be a saved module {{'class': name, 'config': {{...}}}}; "
            f"got keys {sorted(document)}"
        )
    saved_name = document["class"]
    cls = _REGISTRY.get(saved_name) if isinstance(saved_name, str) else None
    if cls is None or not issubclass(cls, nn.Module):
        known = ", ".join(sorted(k for k, v in _REGISTRY.items() if issubclass(v, nn.Module)))
        raise ValueError(
            f"{name} names class {saved_name!r}, which deepsets does not know; known: {known}"
        )
    try:
        return cast(nn.Module, cls(**document["config"]))
    except TypeError as error:
        raise ValueError(f"the config of {name} does not fit {saved_name}: {error}") from error


def load_pretrained(
    directory: str | os.PathLike[str], *, map_location: str | torch.device = "cpu"
) -> nn.Module:
    """Load any deepsets model saved with ``save_pretrained``; its class comes from
    ``config.json`` (one of the registered deepsets classes, never imported by name)."""
    model = PretrainedMixin.from_pretrained(directory, map_location=map_location)
    return cast(nn.Module, model)  # from_pretrained checked it is a module
