r"""Group actions on feature vectors: who moves where when the symmetry acts.

An action :math:`\rho` of a group :math:`G` on :math:`\mathbb{R}^d` assigns to every group
element :math:`g` an invertible matrix :math:`\rho(g)`; a layer :math:`W` is *equivariant*
when :math:`W \rho_\text{in}(g) = \rho_\text{out}(g) W` for every :math:`g`. Every class here
describes one action and can produce, for any of its group elements, the representation
matrix, its application to a tensor, the generators of the group and a uniform random
element.

Group elements are plain Python/torch values:

* :class:`SymmetricAction` — a ``(n,)`` long tensor ``p``; on a vector it acts as
  :math:`(g \cdot x)_i = x_{p_i}` and on an order-:math:`k` tensor on every axis at once,
  :math:`(g \cdot x)_{i_1 \dots i_k} = x_{p_{i_1} \dots p_{i_k}}`.
* :class:`CyclicAction` — an ``int`` shift ``t``: :math:`(t \cdot x)_i = x_{(i - t) \bmod n}`.
* :class:`ReflectionAction` — ``0`` (identity) or ``1`` (the reflection).
* :class:`TrivialAction` — accepts any element of any group and does nothing.
* :class:`ProductAction` — a tuple with one element per factor.

Two actions can be compared by a layer only if they are actions of the *same* group
(:func:`common_group` checks it): ``SymmetricAction(5, order=1)`` and
``SymmetricAction(5, order=2)`` share :math:`S_5`; :class:`TrivialAction` matches any group,
also as a factor of a :class:`ProductAction` (an axis the output does not keep).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Hashable, Sequence
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "CyclicAction",
    "GroupAction",
    "ProductAction",
    "ReflectionAction",
    "SymmetricAction",
    "TrivialAction",
    "common_group",
]

GroupElement = Any


def _check_size(value: object, *, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}; got {value!r}")
    return value


class GroupAction(ABC):
    """A linear action of a finite group on :math:`\\mathbb{R}^{d}`, ``d = self.dim``.

    Vectors of the space are tensors whose axes :attr:`shape` are flattened row-major into
    one axis of length :attr:`dim`. Subclasses that act by permuting coordinates set
    :attr:`is_permutation` and implement :meth:`index`.
    """

    #: Whether every :meth:`matrix` is a permutation matrix.
    is_permutation: bool = True

    def to_config(self) -> dict[str, Any]:
        """This action as plain JSON data (see :mod:`~deepsets.equivariance.action_config`)."""
        from .action_config import action_to_config

        return action_to_config(self)

    @property
    @abstractmethod
    def shape(self) -> tuple[int, ...]:
        """The natural axes of a vector of this space (e.g. ``(n, n)`` for edges)."""

    @property
    def dim(self) -> int:
        """The dimension of the space, ``prod(shape)``."""
        return math.prod(self.shape)

    @property
    @abstractmethod
    def group_key(self) -> Hashable:
        """Identifies the group acting; ``None`` for an action that ignores the element."""

    @abstractmethod
    def identity(self) -> GroupElement:
        """The neutral element."""

    @abstractmethod
    def generators(self) -> list[GroupElement]:
        """Elements generating the group (empty for a trivial group)."""

    @abstractmethod
    def random_element(self, *, generator: torch.Generator | None = None) -> GroupElement:
        """A uniformly random element of the group."""

    def index(self, g: GroupElement) -> Tensor:
        """``(dim,)`` long ``p`` with :math:`(g \\cdot x)_i = x_{p_i}` (permutation actions)."""
        raise NotImplementedError(f"{self!r} does not act by permutations")

    def matrix(self, g: GroupElement, *, dtype: torch.dtype = torch.float64) -> Tensor:
        """The ``(dim, dim)`` representation matrix :math:`\\rho(g)`."""
        p = self.index(g)
        out = torch.zeros(self.dim, self.dim, dtype=dtype)
        out[torch.arange(self.dim), p] = 1
        return out

    def act(self, g: GroupElement, x: Tensor, *, dim: int = 1) -> Tensor:
        """Apply ``g`` to ``x`` along ``dim``.

        ``x`` holds the space either flattened (``x.shape[dim] == self.dim``) or in its
        natural axes (``x.shape[dim : dim + len(self.shape)] == self.shape``).
        """
        dim = dim % x.dim()
        if not self.shape:  # a scalar space: every element acts as the identity
            return x
        natural = tuple(x.shape[dim : dim + len(self.shape)]) == self.shape
        if not natural and x.shape[dim] != self.dim:
            raise ValueError(
                f"x must hold the {self!r} space at dim {dim}: {self.dim} entries or axes "
                f"{self.shape}; got shape {tuple(x.shape)}"
            )
        flat = x.flatten(dim, dim + len(self.shape) - 1) if natural else x
        out = self._act_flat(g, flat, dim)
        return out.unflatten(dim, self.shape) if natural else out

    def _act_flat(self, g: GroupElement, x: Tensor, dim: int) -> Tensor:
        return x.index_select(dim, self.index(g).to(x.device))


def _random_permutation(n: int, generator: torch.Generator | None) -> Tensor:
    return torch.randperm(n, generator=generator)


class SymmetricAction(GroupAction):
    r"""The symmetric group :math:`S_n` permuting every axis of an order-``k`` tensor.

    .. math::

        (\pi \cdot x)_{i_1 \dots i_k} = x_{\pi(i_1) \dots \pi(i_k)}

    Order 1 is a set of ``n`` elements (Deep Sets), order 2 the edges of a graph on ``n``
    nodes (Maron et al. 2019), order 0 a scalar (the trivial action of :math:`S_n`).

    Shapes:
        a vector of the space: ``(n,) * order``, flattened row-major to ``n ** order``.

    Args:
        n: number of elements permuted.
        order: number of axes permuted together.

    Reference:
        Maron et al., *Invariant and Equivariant Graph Networks*, ICLR 2019,
        https://arxiv.org/abs/1812.09902
    """

    def __init__(self, n: int, order: int = 1) -> None:
        self.n = _check_size(n, name="n")
        self.order = _check_size(order, name="order", minimum=0)

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.n,) * self.order

    @property
    def group_key(self) -> Hashable:
        return ("S", self.n)

    def identity(self) -> Tensor:
        return torch.arange(self.n)

    def generators(self) -> list[Tensor]:
        if self.n == 1:
            return []
        swap = torch.arange(self.n)
        swap[[0, 1]] = swap[[1, 0]]
        if self.n == 2:
            return [swap]
        return [swap, torch.roll(torch.arange(self.n), 1)]  # a transposition and an n-cycle

    def random_element(self, *, generator: torch.Generator | None = None) -> Tensor:
        return _random_permutation(self.n, generator)

    def index(self, g: GroupElement) -> Tensor:
        p = torch.as_tensor(g, dtype=torch.long)
        flat = torch.zeros((), dtype=torch.long)
        for axis in range(self.order):  # row-major: first axis has the largest stride
            view = [1] * self.order
            view[axis] = self.n
            flat = flat * self.n + p.view(view)
        return flat.reshape(-1)

    def __repr__(self) -> str:
        return f"SymmetricAction(n={self.n}, order={self.order})"


class CyclicAction(GroupAction):
    r"""The cyclic group :math:`C_n` shifting a periodic signal of length ``n``.

    .. math::

        (t \cdot x)_i = x_{(i - t) \bmod n}

    Its equivariant maps are the circulant matrices (circular convolutions).

    Shapes:
        a vector of the space: ``(n,)``.

    Args:
        n: length of the signal.
    """

    def __init__(self, n: int) -> None:
        self.n = _check_size(n, name="n")

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.n,)

    @property
    def group_key(self) -> Hashable:
        return ("C", self.n)

    def identity(self) -> int:
        return 0

    def generators(self) -> list[int]:
        return [1] if self.n > 1 else []

    def random_element(self, *, generator: torch.Generator | None = None) -> int:
        return int(torch.randint(self.n, (), generator=generator))

    def index(self, g: GroupElement) -> Tensor:
        return (torch.arange(self.n) - int(g)) % self.n

    def __repr__(self) -> str:
        return f"CyclicAction(n={self.n})"


class TrivialAction(GroupAction):
    r"""Any group acting on a scalar by doing nothing: :math:`g \cdot x = x`.

    The output action of an *invariant* map. It accepts the elements of any group, so it
    pairs with every other action (and stands for an axis that is pooled away inside a
    :class:`ProductAction`).

    Shapes:
        a vector of the space: ``()``, dimension 1.
    """

    @property
    def shape(self) -> tuple[int, ...]:
        return ()

    @property
    def group_key(self) -> Hashable:
        return None

    def identity(self) -> None:
        return None

    def generators(self) -> list[GroupElement]:
        return []

    def random_element(self, *, generator: torch.Generator | None = None) -> None:
        return None

    def index(self, g: GroupElement) -> Tensor:
        return torch.zeros(1, dtype=torch.long)

    def act(self, g: GroupElement, x: Tensor, *, dim: int = 1) -> Tensor:
        return x

    def __repr__(self) -> str:
        return "TrivialAction()"


class ReflectionAction(GroupAction):
    r"""The reflection group :math:`\{1, r\}`, :math:`r^2 = 1`, flipping chosen signs.

    .. math::

        r \cdot x = \operatorname{diag}(s)\, x, \qquad s_i \in \{+1, -1\}

    ``ReflectionAction()`` is :math:`x \mapsto -x` on the real line (the output of an
    antisymmetric function); :meth:`monomials` is the action on the features
    :math:`(1, x, x^2, \dots, x^N)` induced by :math:`x \mapsto -x`, i.e.
    :math:`s_n = (-1)^n`.

    Shapes:
        a vector of the space: ``(len(signs),)``.

    Args:
        signs: the diagonal :math:`s` of the reflection, entries ``+1`` or ``-1``.
    """

    is_permutation = False

    def __init__(self, signs: Sequence[int] = (-1,)) -> None:
        signs = list(signs)
        if not signs or any(s not in (1, -1) for s in signs):
            raise ValueError(f"signs must be a non-empty sequence of +1 and -1; got {signs!r}")
        self.signs = torch.tensor(signs, dtype=torch.long)

    @classmethod
    def monomials(cls, degree: int) -> ReflectionAction:
        """The action of :math:`x \\mapsto -x` on :math:`(x^0, x^1, \\dots, x^{degree})`."""
        _check_size(degree, name="degree", minimum=0)
        return cls([(-1) ** k for k in range(degree + 1)])

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.signs),)

    @property
    def group_key(self) -> Hashable:
        return ("Z2",)

    def identity(self) -> int:
        return 0

    def generators(self) -> list[int]:
        return [1]

    def random_element(self, *, generator: torch.Generator | None = None) -> int:
        return int(torch.randint(2, (), generator=generator))

    def matrix(self, g: GroupElement, *, dtype: torch.dtype = torch.float64) -> Tensor:
        signs = self.signs if int(g) % 2 else torch.ones_like(self.signs)
        return torch.diag(signs.to(dtype))

    def _act_flat(self, g: GroupElement, x: Tensor, dim: int) -> Tensor:
        if int(g) % 2 == 0:
            return x
        view = [1] * x.dim()
        view[dim] = self.dim
        return x * self.signs.to(device=x.device, dtype=x.dtype).view(view)

    def __repr__(self) -> str:
        return f"ReflectionAction(signs={self.signs.tolist()})"


class ProductAction(GroupAction):
    r"""Independent groups acting on separate axes: :math:`G_1 \times \dots \times G_m`.

    .. math::

        \rho(g_1, \dots, g_m) = \rho_1(g_1) \otimes \dots \otimes \rho_m(g_m)

    A user × movie rating matrix is ``ProductAction(SymmetricAction(users),
    SymmetricAction(movies))`` (Hartford et al. 2018): rows and columns are permuted
    independently. The axes of the factors are concatenated in order and flattened
    row-major, which is the Kronecker product above.

    Shapes:
        a vector of the space: ``factors[0].shape + factors[1].shape + ...``.

    Args:
        *factors: one action per group factor.

    Reference:
        Hartford et al., *Deep Models of Interactions Across Sets*, ICML 2018,
        https://arxiv.org/abs/1803.02879
    """

    def __init__(self, *factors: GroupAction) -> None:
        if not factors or not all(isinstance(f, GroupAction) for f in factors):
            raise TypeError(f"ProductAction needs one or more GroupAction factors; got {factors!r}")
        self.factors = tuple(factors)
        self.is_permutation = all(f.is_permutation for f in factors)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(axis for f in self.factors for axis in f.shape)

    @property
    def group_key(self) -> Hashable:
        return ("product", *(f.group_key for f in self.factors))

    def identity(self) -> tuple[GroupElement, ...]:
        return tuple(f.identity() for f in self.factors)

    def generators(self) -> list[tuple[GroupElement, ...]]:
        gens = []
        for position, factor in enumerate(self.factors):
            for g in factor.generators():
                element = list(self.identity())
                element[position] = g
                gens.append(tuple(element))
        return gens

    def random_element(self, *, generator: torch.Generator | None = None) -> tuple[Any, ...]:
        return tuple(f.random_element(generator=generator) for f in self.factors)

    def _check_element(self, g: GroupElement) -> tuple[Any, ...]:
        if not isinstance(g, tuple) or len(g) != len(self.factors):
            raise ValueError(
                f"an element of {self!r} is a tuple of {len(self.factors)} factor elements; "
                f"got {g!r}"
            )
        return g

    def index(self, g: GroupElement) -> Tensor:
        flat = torch.zeros(1, dtype=torch.long)
        for factor, element in zip(self.factors, self._check_element(g), strict=True):
            flat = (flat.unsqueeze(-1) * factor.dim + factor.index(element)).reshape(-1)
        return flat

    def matrix(self, g: GroupElement, *, dtype: torch.dtype = torch.float64) -> Tensor:
        out = torch.ones(1, 1, dtype=dtype)
        for factor, element in zip(self.factors, self._check_element(g), strict=True):
            out = torch.kron(out, factor.matrix(element, dtype=dtype))
        return out

    def _act_flat(self, g: GroupElement, x: Tensor, dim: int) -> Tensor:
        if self.is_permutation:
            return super()._act_flat(g, x, dim)
        out = x.unflatten(dim, [f.dim for f in self.factors])
        for position, (factor, element) in enumerate(
            zip(self.factors, self._check_element(g), strict=True)
        ):
            out = factor._act_flat(element, out, dim + position)
        return out.flatten(dim, dim + len(self.factors) - 1)

    def __repr__(self) -> str:
        return "ProductAction(" + ", ".join(repr(f) for f in self.factors) + ")"


def common_group(first: GroupAction, second: GroupAction) -> GroupAction:
    """An action whose group elements are valid for both ``first`` and ``second``.

    Equivariance compares both sides under the *same* group element, so the two actions
    must be actions of one group. :class:`TrivialAction` matches any group, also as a
    factor of a :class:`ProductAction`.

    Raises:
        ValueError: naming both actions when their groups differ.
    """
    if isinstance(first, TrivialAction):
        return second
    if isinstance(second, TrivialAction):
        return first
    if isinstance(first, ProductAction) and isinstance(second, ProductAction):
        if len(first.factors) == len(second.factors):
            return ProductAction(
                *(common_group(a, b) for a, b in zip(first.factors, second.factors, strict=True))
            )
    elif first.group_key == second.group_key:
        return first
    raise ValueError(
        f"in_action and out_action must be actions of the same group; got {first!r} and {second!r}"
    )
