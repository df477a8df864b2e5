"""Pictures of weight sharing: the dense matrix coloured by which parameter fills each entry.

matplotlib is imported lazily (it is in the ``[train]`` extra); the core needs torch only.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .linear import EquivariantLinear

__all__ = ["parameter_ids", "plot_weight_sharing"]


def parameter_ids(layer_or_basis: EquivariantLinear | Tensor) -> Tensor:
    """``(rows, cols)`` long tensor: the parameter behind each dense entry, ``-1`` if none.

    For a layer the dense matrix is :meth:`EquivariantLinear.expand_parameters`'s, with
    parameter id ``(c_out · input_dim + c_in) · K + k``; for a basis ``(K, d_out, d_in)``
    it is the matrix :math:`\\sum_k w_k B_k` with id ``k``. Where several basis matrices
    overlap (a non-permutation basis), the one with the largest magnitude wins.

    Shapes:
        - layer: ``(d_out · output_dim, d_in · input_dim)``, the layout of
          :meth:`EquivariantLinear.expand_parameters`.
        - basis ``(K, d_out, d_in)``: ``(d_out, d_in)``.
    """
    if isinstance(layer_or_basis, EquivariantLinear):
        basis, c_out, c_in = (
            layer_or_basis.basis,
            layer_or_basis.output_dim,
            layer_or_basis.input_dim,
        )
    elif isinstance(layer_or_basis, Tensor) and layer_or_basis.dim() == 3:
        basis, c_out, c_in = layer_or_basis, 1, 1
    else:
        raise TypeError(
            "layer_or_basis must be an EquivariantLinear or a (K, d_out, d_in) basis tensor; "
            f"got {type(layer_or_basis).__name__}"
        )
    k = basis.shape[0]
    magnitude = basis.detach().abs()
    which = magnitude.argmax(dim=0)  # (d_out, d_in)
    which = torch.where(magnitude.amax(dim=0) > 0, which, torch.full_like(which, -1))
    channel = (torch.arange(c_out).view(-1, 1) * c_in + torch.arange(c_in).view(1, -1)) * k
    ids = which[:, None, :, None] + channel[None, :, None, :]  # (d_out, C_out, d_in, C_in)
    ids = torch.where(which[:, None, :, None] >= 0, ids, torch.full_like(ids, -1))
    return ids.reshape(basis.shape[1] * c_out, basis.shape[2] * c_in)


def plot_weight_sharing(
    layer_or_basis: EquivariantLinear | Tensor,
    *,
    ax: Any = None,
    title: str | None = None,
    cmap: str = "tab20",
) -> Any:
    """Draw the weight-sharing pattern of a layer or basis; one colour per parameter.

    Zero entries stay white. Reproduces the pictures of the weight-sharing explanation,
    e.g. ``EquivariantLinear(SymmetricAction(8), SymmetricAction(8))`` (2 colours) or
    ``SymmetricAction(5, 2)`` to itself (15 colours on a 25 × 25 grid).

    Shapes:
        draws the ``(rows, cols)`` matrix of :func:`parameter_ids`, one cell per entry.

    Args:
        layer_or_basis: an :class:`EquivariantLinear` or a ``(K, d_out, d_in)`` basis.
        ax: a matplotlib ``Axes`` to draw on (a new figure if ``None``).
        title: the axes title (default: the parameter counts).
        cmap: a qualitative matplotlib colormap name (cycled if there are more parameters).

    Returns:
        The matplotlib ``Axes``.

    Raises:
        ImportError: if matplotlib is not installed.
    """
    try:
        import matplotlib.pyplot as plt
        from matplotlib.colors import ListedColormap
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "plot_weight_sharing needs matplotlib: pip install 'deepsets[train]' "
            "(or pip install matplotlib)"
        ) from error

    ids = parameter_ids(layer_or_basis)
    count = int(ids.max()) + 1
    base = plt.get_cmap(cmap)
    palette = [base(i % base.N) for i in range(max(count, 1))]
    image = torch.where(ids >= 0, ids.double(), torch.tensor(float("nan"))).numpy()
    if ax is None:
        size = min(6.0, 1.5 + 0.12 * max(ids.shape))
        _, ax = plt.subplots(
            figsize=(size * ids.shape[1] / max(ids.shape), size * ids.shape[0] / max(ids.shape))
        )
    colormap = ListedColormap(palette).with_extremes(bad="white")
    ax.imshow(image, cmap=colormap, vmin=-0.5, vmax=count - 0.5, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title is None:
        title = f"{count} parameters, {ids.numel():,} entries"
    ax.set_title(title, fontsize=9)
    return ax
