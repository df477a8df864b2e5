r"""Bases of the equivariant linear maps between two actions (intertwiner spaces).

A matrix :math:`W` is equivariant when :math:`W \rho_\text{in}(g) = \rho_\text{out}(g) W`
for every group element, equivalently for every *generator* :math:`g`. These linear
constraints cut out a subspace; :func:`intertwiner_basis` returns a basis
:math:`B_1, \dots, B_K` of it, and an equivariant layer registers only the :math:`K`
coordinates :math:`w_k` of :math:`W = \sum_k w_k B_k` (weight sharing).

Three ways to find the basis:

* **closed forms** (``method="closed_form"``), never solving anything:
  :math:`S_n` on order-:math:`k` and order-:math:`l` tensors — one basis matrix per set
  partition of the :math:`l + k` index positions with at most :math:`n` blocks (the
  indicator of the index tuples whose equality pattern is that partition, Maron et al.
  2019), so :math:`B(k + l)` maps (a Bell number) once :math:`n \ge k + l`; cyclic
  shifts — the :math:`n` circulant diagonals; reflections — the entries whose signs
  agree; products of groups — Kronecker products of the factors' bases.
* **the numerical solver** (``method="nullspace"``), for any action: the null space of the
  stacked constraints :math:`I - \rho_\text{out}(g) \otimes \rho_\text{in}(g)^{-\top}`
  (the zero eigenspace of their Gram matrix) in float64, brought to reduced row-echelon
  form. For permutation actions that form is
  exactly the set of orbit indicators of the (output, input) index pairs, and is rounded
  to exact 0/1.
* **orbits** (``method="orbits"``), for any *permutation* action: those orbit indicators
  found directly, by joining every pair :math:`(i, j)` to :math:`(p^\text{out}_i,
  p^\text{in}_j)` for each generator (connected components, :math:`O(d_\text{out}
  d_\text{in})` memory, no linear algebra). Same matrices and order as ``"nullspace"``.

All return the same matrices for permutation actions (the tests check it); the closed
forms order them differently.
"""

from __future__ import annotations

import math
from enum import Enum

import torch
from torch import Tensor

from .._validation import resolve_option
from .actions import (
    CyclicAction,
    GroupAction,
    ProductAction,
    ReflectionAction,
    SymmetricAction,
    TrivialAction,
    common_group,
)
from .partitions import bell_number, set_partitions, stirling2

__all__ = [
    "DEFAULT_MAX_BYTES",
    "BasisMethod",
    "bell_number",
    "intertwiner_basis",
    "intertwiner_dim",
    "invariant_basis",
    "set_partitions",
    "stirling2",
]

#: Default memory cap of :func:`intertwiner_basis` (1 GiB).
DEFAULT_MAX_BYTES = 2**30


class BasisMethod(str, Enum):
    """How :func:`intertwiner_basis` finds the basis (see the module docstring)."""

    AUTO = "auto"
    CLOSED_FORM = "closed_form"
    ORBITS = "orbits"
    NULLSPACE = "nullspace"


# ----------------------------------------------------------------------- set partitions


# ----------------------------------------------------------------------- closed forms


def _as_order(action: GroupAction, n: int) -> int | None:
    """Order of ``action`` as an :math:`S_n` tensor action (``TrivialAction`` is order 0)."""
    if isinstance(action, TrivialAction):
        return 0
    if isinstance(action, SymmetricAction) and action.n == n:
        return action.order
    return None


def _symmetric_pair(in_action: GroupAction, out_action: GroupAction) -> tuple[int, int, int] | None:
    """``(n, order_in, order_out)`` when both actions are :math:`S_n` tensor actions."""
    for action in (in_action, out_action):
        if isinstance(action, SymmetricAction):
            k, ell = _as_order(in_action, action.n), _as_order(out_action, action.n)
            if k is None or ell is None:
                return None
            return action.n, k, ell
    return None


def _signs(action: GroupAction) -> Tensor | None:
    if isinstance(action, TrivialAction):
        return torch.ones(1, dtype=torch.long)
    if isinstance(action, ReflectionAction):
        return action.signs
    return None


def _factors(action: GroupAction, count: int) -> tuple[GroupAction, ...] | None:
    if isinstance(action, ProductAction) and len(action.factors) == count:
        return action.factors
    if isinstance(action, TrivialAction):
        return (TrivialAction(),) * count
    return None


def _product_pair(
    in_action: GroupAction, out_action: GroupAction
) -> list[tuple[GroupAction, GroupAction]] | None:
    for action in (in_action, out_action):
        if isinstance(action, ProductAction):
            count = len(action.factors)
            ins, outs = _factors(in_action, count), _factors(out_action, count)
            if ins is None or outs is None:
                return None
            return list(zip(ins, outs, strict=True))
    return None


def _symmetric_partitions(n: int, order_in: int, order_out: int) -> list[tuple[int, ...]]:
    """Partitions of the ``order_out + order_in`` positions with at most ``n`` blocks."""
    return [p for p in set_partitions(order_out + order_in) if max(p, default=-1) < n]


def _closed_form_dim(in_action: GroupAction, out_action: GroupAction) -> int | None:
    """:math:`K` without building anything, or ``None`` if no closed form applies."""
    sym = _symmetric_pair(in_action, out_action)
    if sym is not None:
        n, k, ell = sym
        return sum(stirling2(k + ell, blocks) for blocks in range(min(n, k + ell) + 1))
    if isinstance(in_action, TrivialAction) and isinstance(out_action, TrivialAction):
        return 1
    if isinstance(in_action, CyclicAction) or isinstance(out_action, CyclicAction):
        if isinstance(in_action, CyclicAction) and isinstance(out_action, CyclicAction):
            return in_action.n if in_action.n == out_action.n else None
        return 1 if TrivialAction in (type(in_action), type(out_action)) else None
    signs_in, signs_out = _signs(in_action), _signs(out_action)
    if signs_in is not None and signs_out is not None:
        return int((signs_out.view(-1, 1) == signs_in.view(1, -1)).sum())
    pairs = _product_pair(in_action, out_action)
    if pairs is not None:
        dims = [_closed_form_dim(a, b) for a, b in pairs]
        return None if None in dims else math.prod(d for d in dims if d is not None)
    return None


def _symmetric_basis(n: int, order_in: int, order_out: int, dtype: torch.dtype) -> Tensor:
    """Orbit indicators of :math:`S_n` on ``(out tuple, in tuple)``, one per set partition."""
    size = order_out + order_in
    partitions = _symmetric_partitions(n, order_in, order_out)
    d_out, d_in = n**order_out, n**order_in
    flat = torch.arange(d_out * d_in)
    coords = [(flat // n ** (size - 1 - p)) % n for p in range(size)]  # position p's index
    labels: list[Tensor] = []
    code = torch.zeros_like(flat)
    for p in range(size):  # restricted growth string of each tuple, then its base-`size` code
        label = (torch.stack(labels).amax(dim=0) + 1) if labels else torch.zeros_like(flat)
        for q in reversed(range(p)):
            label = torch.where(coords[q] == coords[p], labels[q], label)
        labels.append(label)
        code = code * size + label
    codes = torch.tensor(
        [sum(lab * size ** (size - 1 - p) for p, lab in enumerate(part)) for part in partitions]
    )
    order = codes.argsort()
    which = order[torch.searchsorted(codes[order], code)]
    out = torch.zeros(len(partitions), d_out * d_in, dtype=dtype)
    out[which, flat] = 1
    return out.view(len(partitions), d_out, d_in)


def _closed_form(in_action: GroupAction, out_action: GroupAction, dtype: torch.dtype) -> Tensor:
    sym = _symmetric_pair(in_action, out_action)
    if sym is not None:
        return _symmetric_basis(*sym, dtype=dtype)
    if isinstance(in_action, TrivialAction) and isinstance(out_action, TrivialAction):
        return torch.ones(1, 1, 1, dtype=dtype)
    if isinstance(in_action, CyclicAction) and isinstance(out_action, CyclicAction):
        n = in_action.n
        lag = (torch.arange(n).view(-1, 1) - torch.arange(n).view(1, -1)) % n  # (i - j) mod n
        return (lag.unsqueeze(0) == torch.arange(n).view(-1, 1, 1)).to(dtype)
    if isinstance(in_action, CyclicAction):
        return torch.ones(1, 1, in_action.n, dtype=dtype)
    if isinstance(out_action, CyclicAction):
        return torch.ones(1, out_action.n, 1, dtype=dtype)
    signs_in, signs_out = _signs(in_action), _signs(out_action)
    if signs_in is not None and signs_out is not None:
        rows, cols = torch.nonzero(signs_out.view(-1, 1) == signs_in.view(1, -1), as_tuple=True)
        out = torch.zeros(len(rows), len(signs_out), len(signs_in), dtype=dtype)
        out[torch.arange(len(rows)), rows, cols] = 1
        return out
    pairs = _product_pair(in_action, out_action) or []  # admitted by _closed_form_dim
    out = torch.ones(1, 1, 1, dtype=dtype)
    for factor_in, factor_out in pairs:
        factor = _closed_form(factor_in, factor_out, dtype)
        # Kronecker product of every pair of basis matrices, basis index row-major.
        out = torch.einsum("aij,bkl->abikjl", out, factor)
        k, do, di = out.shape[0] * out.shape[1], out.shape[2] * out.shape[3], out.shape[4:]
        out = out.reshape(k, do, di[0] * di[1])
    return out


# ----------------------------------------------------------------------- numerical solver


def _nullspace(in_action: GroupAction, out_action: GroupAction, dtype: torch.dtype) -> Tensor:
    group = common_group(in_action, out_action)
    d_out, d_in = out_action.dim, in_action.dim
    size = d_out * d_in
    generators = group.generators()
    if generators:
        # Null space of the stacked C_g = I - rho_out(g) ⊗ rho_in(g)^{-T} (vec(W) row-major)
        # as the zero eigenspace of the Gram matrix Σ_g C_gᵀ C_g: one size × size
        # symmetric eigenproblem instead of an SVD of the (G·size, size) stack.
        gram = torch.zeros(size, size, dtype=torch.float64)
        for g in generators:
            rho_in_inv_t = torch.linalg.inv(in_action.matrix(g)).T
            constraint = torch.eye(size, dtype=torch.float64) - torch.kron(
                out_action.matrix(g), rho_in_inv_t
            )
            gram += constraint.T @ constraint
        eigenvalues, eigenvectors = torch.linalg.eigh(gram)
        # Eigenvalues are squared singular values: zero ones come out at ~eps·λ_max.
        tol = math.sqrt(torch.finfo(torch.float64).eps) * max(float(eigenvalues[-1]), 1.0)
        null = eigenvectors[:, eigenvalues <= tol].T  # (K, size)
    else:
        null = torch.eye(size, dtype=torch.float64)
    basis = _reduced_row_echelon(null)
    if in_action.is_permutation and out_action.is_permutation:
        rounded = basis.round()
        if not torch.allclose(basis, rounded, atol=1e-6):
            raise RuntimeError("the null space of a permutation action is not 0/1; please report")
        basis = rounded
    else:  # snap round-off next to integers (the usual entries of a signed-permutation basis)
        rounded = basis.round()
        basis = torch.where((basis - rounded).abs() < 1e-9, rounded, basis)
    return basis.to(dtype).view(-1, d_out, d_in)


def _reduced_row_echelon(rows: Tensor, tol: float = 1e-9) -> Tensor:
    """Gauss–Jordan with partial pivoting on ``(K, size)`` rows of full rank."""
    out = rows.clone()
    rank = out.shape[0]
    pivot_row = 0
    for col in range(out.shape[1]):
        if pivot_row == rank:
            break
        candidates = out[pivot_row:, col].abs()
        best = int(candidates.argmax())
        if float(candidates[best]) <= tol:
            continue
        best += pivot_row
        out[[pivot_row, best]] = out[[best, pivot_row]]
        out[pivot_row] /= out[pivot_row, col].clone()
        others = torch.arange(rank) != pivot_row
        out[others] -= out[others, col : col + 1] * out[pivot_row]
        pivot_row += 1
    return out


def _orbit_labels(in_action: GroupAction, out_action: GroupAction) -> Tensor:
    """``(d_out · d_in,)`` long: the smallest flat index of each pair's orbit."""
    group = common_group(in_action, out_action)
    d_in = in_action.dim
    size = out_action.dim * d_in
    flat = torch.arange(size)
    moves = []
    for g in group.generators():  # pair (i, j) is tied to (p_out[i], p_in[j])
        p_out, p_in = out_action.index(g), in_action.index(g)
        moves.append(p_out[flat // d_in] * d_in + p_in[flat % d_in])
    labels = flat.clone()
    while True:  # min-label propagation along the moves and back, with pointer jumping
        new = labels
        for move in moves:
            new = torch.minimum(new, new[move])
            new = new.scatter_reduce(0, move, new, reduce="amin")
        new = new[new]
        if torch.equal(new, labels):
            return labels
        labels = new


def _orbits(labels: Tensor, shape: tuple[int, int], dtype: torch.dtype) -> Tensor:
    """One 0/1 indicator per orbit, ordered by each orbit's first flat index."""
    roots, which = torch.unique(labels, return_inverse=True)  # unique sorts: first index order
    out = torch.zeros(len(roots), labels.numel(), dtype=dtype)
    out[which, torch.arange(labels.numel())] = 1
    return out.view(-1, *shape)


# ----------------------------------------------------------------------- public entry points


def intertwiner_dim(in_action: GroupAction, out_action: GroupAction) -> int:
    """The number :math:`K` of independent equivariant maps (closed forms only, no solve).

    Raises:
        ValueError: if the actions belong to different groups, or no closed form applies
            (then build :func:`intertwiner_basis` and read its length).
    """
    common_group(in_action, out_action)
    dim = _closed_form_dim(in_action, out_action)
    if dim is None:
        raise ValueError(
            f"no closed form for {in_action!r} -> {out_action!r}; "
            "use len(intertwiner_basis(in_action, out_action))"
        )
    return dim


def _human_bytes(count: float) -> str:
    """Decimal units, as disk and memory sizes are quoted: ``6.0 GB``."""
    unit = "B"
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if count < 1000 or unit == "TB":
            break
        count /= 1000
    return f"{count:.1f} {unit}"


def intertwiner_basis(
    in_action: GroupAction,
    out_action: GroupAction,
    *,
    method: str = "auto",
    dtype: torch.dtype = torch.float32,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Tensor:
    r"""A basis of all linear maps :math:`W` with :math:`W\rho_\text{in}(g) = \rho_\text{out}(g)W`.

    Args:
        in_action: the action on the layer's input space.
        out_action: the action on the layer's output space (same group).
        method: ``"closed_form"`` (set partitions, circulants, Kronecker products),
            ``"orbits"`` (permutation actions), ``"nullspace"`` (numerical, any action) or
            ``"auto"`` (the first of these that applies).
        dtype: dtype of the result; the solver itself works in float64.
        max_bytes: refuse to build anything larger (the dense basis, the orbit labels or
            the solver's constraint matrix); the structured layers never need it.

    Returns:
        ``(K, d_out, d_in)``; for permutation actions the orbit indicators of the
        (output, input) index pairs, exact 0/1 and disjoint.

    Shapes:
        ``(K, out_action.dim, in_action.dim)``

    Raises:
        ValueError: for actions of different groups, an unknown ``method``, a method that
            does not apply, or a result that would exceed ``max_bytes`` (naming its size).

    Example:
        >>> from deepsets.equivariance import SymmetricAction, intertwiner_basis
        >>> intertwiner_basis(SymmetricAction(5, 2), SymmetricAction(5, 2)).shape
        torch.Size([15, 25, 25])
    """
    how = resolve_option(method, BasisMethod, name="method")
    common_group(in_action, out_action)
    d_out, d_in = out_action.dim, in_action.dim
    closed_dim = _closed_form_dim(in_action, out_action)
    permutation = in_action.is_permutation and out_action.is_permutation
    if how is BasisMethod.CLOSED_FORM and closed_dim is None:
        raise ValueError(
            f"method='closed_form' has no closed form for {in_action!r} -> {out_action!r}; "
            "use 'orbits' (permutation actions) or 'nullspace'"
        )
    if how is BasisMethod.ORBITS and not permutation:
        raise ValueError(
            f"method='orbits' needs permutation actions; got {in_action!r} -> {out_action!r}, "
            "use 'nullspace'"
        )
    if how is BasisMethod.AUTO:
        if closed_dim is not None:
            how = BasisMethod.CLOSED_FORM
        else:
            how = BasisMethod.ORBITS if permutation else BasisMethod.NULLSPACE
    size = d_out * d_in
    if how is BasisMethod.CLOSED_FORM and closed_dim is not None:
        _check_bytes(
            closed_dim * size * torch.finfo(dtype).bits // 8,
            f"{closed_dim} x {d_out} x {d_in} {str(dtype).removeprefix('torch.')} basis",
            in_action,
            out_action,
            max_bytes,
        )
        return _closed_form(in_action, out_action, dtype)
    generators = max(1, len(common_group(in_action, out_action).generators()))
    if how is BasisMethod.ORBITS:
        labels_bytes = (generators + 4) * size * 8
        _check_bytes(labels_bytes, f"{size}-pair orbit labelling", in_action, out_action, max_bytes)
        labels = _orbit_labels(in_action, out_action)
        count = int(torch.unique(labels).numel())
        _check_bytes(
            count * size * torch.finfo(dtype).bits // 8,
            f"{count} x {d_out} x {d_in} {str(dtype).removeprefix('torch.')} basis",
            in_action,
            out_action,
            max_bytes,
        )
        return _orbits(labels, (d_out, d_in), dtype)
    _check_bytes(
        4 * size**2 * 8,
        f"{size} x {size} float64 constraint system (x4 working copies)",
        in_action,
        out_action,
        max_bytes,
    )
    return _nullspace(in_action, out_action, dtype)


def _check_bytes(
    needed: int, what: str, in_action: GroupAction, out_action: GroupAction, max_bytes: int
) -> None:
    if needed > max_bytes:
        raise ValueError(
            f"intertwiner_basis({in_action!r} -> {out_action!r}) would need a {what} = "
            f"{_human_bytes(needed)}, above max_bytes={_human_bytes(max_bytes)}. Layers that "
            "never build the dense basis: deepsets.equivariance.SecondOrderEquivariantLayer "
            "(S_n edges -> edges), ExchangeableLayer (S_N1 x S_N2 matrices), CyclicConvLayer, "
            "deepsets.PermutationEquivariantLayer (sets); or raise max_bytes."
        )


def invariant_basis(
    action: GroupAction, *, dtype: torch.dtype = torch.float32, max_bytes: int = DEFAULT_MAX_BYTES
) -> Tensor:
    r"""A basis of the vectors every group element fixes: :math:`\rho(g) u = u` (e.g. biases).

    It is the intertwiner basis from the trivial action, ``intertwiner_basis(TrivialAction(),
    action)``; for :math:`S_n` on order-:math:`k` tensors one vector per equality pattern of
    the :math:`k` indices (diagonal and off-diagonal for edges).

    Shapes:
        ``(K, action.dim)``
    """
    basis = intertwiner_basis(TrivialAction(), action, dtype=dtype, max_bytes=max_bytes)
    return basis[:, :, 0]
