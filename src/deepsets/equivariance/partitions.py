r"""Set partitions: the combinatorics behind the bases of the symmetric group's actions.

A set partition of ``range(m)`` is an equality pattern of ``m`` indices; the equivariant
maps between order-:math:`k` and order-:math:`l` tensors of :math:`S_n` have one basis
matrix per partition of the :math:`k + l` index positions (Maron et al., *Invariant and
Equivariant Graph Networks*, ICLR 2019, https://arxiv.org/abs/1812.09902).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

__all__ = ["bell_number", "pattern_to_orbit_matrix", "set_partitions", "stirling2"]


def set_partitions(size: int) -> Iterator[tuple[int, ...]]:
    """All set partitions of ``range(size)`` as restricted growth strings, in lexicographic order.

    A partition is the tuple ``labels`` with ``labels[i]`` the block of position ``i``;
    blocks are numbered by first appearance, so ``labels[0] == 0`` and every label is at
    most one more than the largest before it.

    Example:
        >>> list(set_partitions(3))
        [(0, 0, 0), (0, 0, 1), (0, 1, 0), (0, 1, 1), (0, 1, 2)]
    """
    if size == 0:
        yield ()
        return

    def extend(prefix: list[int], top: int) -> Iterator[tuple[int, ...]]:
        if len(prefix) == size:
            yield tuple(prefix)
            return
        for label in range(top + 2):
            yield from extend([*prefix, label], max(top, label))

    yield from extend([0], 0)


def stirling2(size: int, blocks: int) -> int:
    """Stirling number of the second kind: partitions of ``size`` items into ``blocks`` blocks."""
    row = [1] + [0] * blocks  # S(0, j)
    for _n in range(1, size + 1):
        row = [0] + [j * row[j] + row[j - 1] for j in range(1, blocks + 1)]
    return row[blocks]


def bell_number(size: int) -> int:
    """The number of set partitions of ``size`` items, :math:`B(m) = \\sum_j S(m, j)`."""
    return sum(stirling2(size, blocks) for blocks in range(size + 1))


def _refines(fine: tuple[int, ...], coarse: tuple[int, ...]) -> bool:
    """Whether every block of ``fine`` lies inside a block of ``coarse``."""
    block_of: dict[int, int] = {}
    return all(block_of.setdefault(f, c) == c for f, c in zip(fine, coarse, strict=True))


def pattern_to_orbit_matrix(partitions: list[tuple[int, ...]]) -> Tensor:
    r"""``Z`` with :math:`E_\pi = \sum_\sigma Z_{\sigma\pi} O_\sigma` (float64, unitriangular).

    :math:`O_\sigma` is the orbit indicator (equality pattern exactly :math:`\sigma`),
    :math:`E_\pi` the pattern indicator (positions in one block of :math:`\pi` equal, no
    other condition): :math:`E_\pi` is the sum of the :math:`O_\sigma` coarser than
    :math:`\pi`. Coordinates convert as :math:`a = Z c`, :math:`c = Z^{-1} a`.
    """
    size = len(partitions)
    out = torch.zeros(size, size, dtype=torch.float64)
    for s, sigma in enumerate(partitions):
        for p, pi in enumerate(partitions):
            out[s, p] = float(_refines(pi, sigma))
    return out
