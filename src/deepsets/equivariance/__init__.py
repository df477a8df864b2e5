"""Equivariance as weight sharing: group actions, intertwiner bases and equivariant layers.

For input and output actions of one group, the equivariant linear maps form a subspace;
a layer registers only the coordinates in that subspace and expands them
(:class:`EquivariantLinear`), or computes the same map without the dense matrix
(:class:`SecondOrderEquivariantLayer`, :class:`ExchangeableLayer`, :class:`CyclicConvLayer`,
and :class:`deepsets.PermutationEquivariantLayer` for sets).

Example:
    >>> from deepsets.equivariance import EquivariantLinear, SymmetricAction
    >>> layer = EquivariantLinear(SymmetricAction(512), SymmetricAction(512), 2, 4)
    >>> layer.weight_numel, layer.export().weight.numel() + layer.export().bias.numel()
    (20, 2099200)
"""

from .actions import (
    CyclicAction,
    GroupAction,
    ProductAction,
    ReflectionAction,
    SymmetricAction,
    TrivialAction,
    common_group,
)
from .basis import (
    bell_number,
    intertwiner_basis,
    intertwiner_dim,
    invariant_basis,
    set_partitions,
)
from .layers import CyclicConvLayer, ExchangeableLayer, SecondOrderEquivariantLayer
from .linear import EquivariantLinear
from .plot import parameter_ids, plot_weight_sharing

__all__ = [
    "CyclicAction",
    "CyclicConvLayer",
    "EquivariantLinear",
    "ExchangeableLayer",
    "GroupAction",
    "ProductAction",
    "ReflectionAction",
    "SecondOrderEquivariantLayer",
    "SymmetricAction",
    "TrivialAction",
    "bell_number",
    "common_group",
    "intertwiner_basis",
    "intertwiner_dim",
    "invariant_basis",
    "parameter_ids",
    "plot_weight_sharing",
    "set_partitions",
]
