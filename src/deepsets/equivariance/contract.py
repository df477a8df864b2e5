r"""The contract every equivariant layer meets.

* ``weight_numel`` — the trainable parameters it registers (the reduced, weight-shared set);
* ``export(size)`` — a plain ``nn.Linear`` computing the same affine map on the flattened
  input ``x.flatten(1)`` for one fixed size (where the layer is affine);
* ``save_pretrained`` / ``from_pretrained`` — constructor arguments recorded automatically
  (``config.json``) and weights as safetensors;
* the widths are named ``input_dim`` / ``output_dim``, as in the Deep Sets paper's API
  (``in_channels`` / ``out_channels`` still work, with a ``DeprecationWarning``).

``deepsets.testing.equivariance_error`` checks the symmetry itself.
"""

from __future__ import annotations

import copy
import math
import warnings
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from .._base import ConfigRecorder
from .._validation import PoolType, check_dim, check_like
from .._validation import resolve_option as _resolve

__all__ = ["EquivariantModule", "affine_to_linear"]

#: The deprecated keyword names of the widths, and their names now.
CHANNEL_ALIASES = {"in_channels": "input_dim", "out_channels": "output_dim"}


class EquivariantModule(ConfigRecorder):
    """Base of the equivariant layers: ``weight_numel``, ``export``, save/load.

    Subclasses are ``nn.Module`` s whose constructor arguments are plain data (recorded in
    ``config`` when the layer is built) and whose forward is affine in ``x`` when
    :meth:`export` is meaningful; they implement :meth:`example_shape`.
    """

    _deprecated_arguments: ClassVar[dict[str, str]] = CHANNEL_ALIASES
    input_dim: int
    output_dim: int

    def _set_widths(self, input_dim: object, output_dim: object) -> None:
        """Check and set ``input_dim`` and ``output_dim`` (positive ints)."""
        self.input_dim = check_dim(input_dim, name="input_dim")
        self.output_dim = check_dim(output_dim, name="output_dim")

    @property
    def weight_numel(self) -> int:
        """Registered trainable parameters (weight and bias coordinates)."""
        if not isinstance(self, nn.Module):  # pragma: no cover - every subclass is a module
            raise TypeError(f"{type(self).__name__} must be an nn.Module")
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    @property
    def in_channels(self) -> int:
        """Deprecated name of :attr:`input_dim`."""
        warnings.warn("in_channels is deprecated; use input_dim", DeprecationWarning, stacklevel=2)
        return self.input_dim

    @property
    def out_channels(self) -> int:
        """Deprecated name of :attr:`output_dim`."""
        warnings.warn(
            "out_channels is deprecated; use output_dim", DeprecationWarning, stacklevel=2
        )
        return self.output_dim

    def example_shape(self, size: int | tuple[int, ...] | None = None) -> tuple[int, ...]:
        """The shape of one input (without the batch axis) at ``size``."""
        raise NotImplementedError

    def export(self, size: int | tuple[int, ...] | None = None) -> nn.Linear:
        """A plain ``nn.Linear`` equal to this layer on ``x.flatten(1)`` at ``size``.

        ``layer(x).flatten(1) == layer.export(size)(x.flatten(1))`` for inputs of shape
        ``(B, *example_shape(size))``. The dense matrix is read off the layer's affine map
        (applied, in float64, to the zero input and the basis vectors).
        """
        return affine_to_linear(self, self.example_shape(size))


def affine_to_linear(layer: Any, shape: tuple[int, ...]) -> nn.Linear:
    r"""The ``nn.Linear`` of an affine module on inputs ``(B, *shape)``, flattened.

    .. math:: W_{:, j} = f(e_j) - f(0), \qquad b = f(0)

    computed in float64 on a copy of ``layer``, then cast to the layer's dtype.
    """
    reference = next(layer.parameters())
    probe = copy.deepcopy(layer).to(torch.float64)
    d_in = math.prod(shape)
    with torch.no_grad():
        zero = probe(torch.zeros(1, *shape, dtype=torch.float64, device=reference.device))
        zero = zero.flatten(1)  # (1, d_out)
        eye = torch.eye(d_in, dtype=torch.float64, device=reference.device).view(d_in, *shape)
        columns = probe(eye).flatten(1) - zero  # (d_in, d_out)
    has_bias = getattr(layer, "bias", True) is not None  # a layer without .bias: keep f(0)
    linear = nn.Linear(
        d_in, zero.shape[1], bias=has_bias, dtype=reference.dtype, device=reference.device
    )
    with torch.no_grad():
        linear.weight.copy_(columns.T)
        if linear.bias is not None:
            linear.bias.copy_(zero[0])
    return linear


def reset_uniform(weight: Tensor, bias: Tensor | None, fan_in: int) -> None:
    """Weight :math:`U(-b, b)` with :math:`b = 1/\\sqrt{\\text{fan\\_in}}`; zero bias."""
    bound = fan_in**-0.5
    with torch.no_grad():
        weight.uniform_(-bound, bound)
        if bias is not None:
            bias.zero_()


def fixed_size(size: object, count: int, *, what: str) -> tuple[int, ...]:
    """``size`` as a tuple of ``count`` positive ints; ``what`` says what they measure."""
    sizes = (size,) if isinstance(size, int) else size
    if (
        not isinstance(sizes, tuple)
        or len(sizes) != count
        or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in sizes)
    ):
        raise ValueError(
            f"size must be {count} positive int(s), {what}, to export at one fixed size; "
            f"got {size!r}"
        )
    return sizes


def linear_pool(pool_type: object) -> PoolType:
    """``"sum"`` or ``"mean"`` (a linear layer cannot pool by max)."""
    pool = _resolve(pool_type, PoolType, name="pool_type")
    if pool is PoolType.MAX:
        raise ValueError("pool_type must be 'sum' or 'mean' for a linear layer; got 'max'")
    return pool


def check_float_like(x: Tensor, weight: Tensor) -> None:
    """Floating ``x`` on the layer's device and (outside autocast) of its dtype."""
    if not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor; got dtype {x.dtype}")
    check_like(x, weight, name="x", what="the layer")


def check_grid_input(x: object, weight: Tensor, input_dim: int, *, layout: str) -> Tensor:
    """A floating 4-D ``x`` with ``input_dim`` channels last."""
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a torch.Tensor of shape {layout}; got {type(x).__name__}")
    if x.dim() != 4 or x.shape[-1] != input_dim:
        raise ValueError(
            f"x must have shape {layout} with C = input_dim = {input_dim}; got {tuple(x.shape)}"
        )
    check_float_like(x, weight)
    return x
